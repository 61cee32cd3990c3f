"""The few slices a figure draws, read from a volume of any size without reading the rest.

zarr, HDF5 and ``.npy`` volumes are sliced where they lie; a TIFF stack is streamed slab by
slab, keeping only the rows its y and x slices need.

Examples
--------
>>> import numpy as np
>>> s = read_slices(np.arange(24).reshape(2, 3, 4), axes=(0,), indices=(1,))
>>> s.indices, s.images[0].shape
((1,), (3, 4))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backend import to_host
from ..errors import ParameterError
from . import metadata
from .paths import parse
from .volume import _open_hdf5, _open_npy, info, iter_slabs
from .zarrio import open_array


def volume_name(volume: Any) -> str:
    """A path's text, or a short description of an array."""
    if isinstance(volume, (str, os.PathLike)):
        return os.fspath(volume)
    return f"array {tuple(getattr(volume, 'shape', ()))}"


def volume_attrs(volume: Any) -> dict[str, Any]:
    """The attributes of a volume (a path or an array with ``.attrs``); ``{}`` where there are none."""
    if isinstance(volume, (str, os.PathLike)):
        return dict(info(volume).attrs)
    attrs = getattr(volume, "attrs", None)
    if attrs is None:
        return {}
    try:
        return dict(attrs.asdict() if hasattr(attrs, "asdict") else attrs)
    except (TypeError, ValueError):
        return {}


def voxel_size_of(attrs: Mapping[str, Any]) -> list[float] | None:
    """Voxel size (z, y, x) in nm from a volume's attributes, or None."""
    try:
        return metadata.voxel_size(attrs)
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass
class Slices:
    """Slices through a volume: ``images[k]`` is the slice at ``indices[k]`` along ``axes[k]``."""

    name: str
    shape: tuple[int, ...]
    axes: tuple[int, ...]
    indices: tuple[int, ...]
    images: list[np.ndarray]
    attrs: dict[str, Any]

    @property
    def voxel_size(self) -> list[float] | None:
        return voxel_size_of(self.attrs)

    def values(self) -> list[int]:
        """The label values the slices hold (for a label volume)."""
        return sorted(set().union(*(np.unique(im).tolist() for im in self.images)))


def _take(volume: Any, axis: int, index: int) -> np.ndarray:
    key = (slice(None),) * axis + (index,)
    return to_host(volume[key])


def _tiff_slices(path: Any, shape: tuple[int, ...], dtype: Any, axes: Sequence[int],
                 indices: Sequence[int]) -> list[np.ndarray]:
    """Slices of a TIFF stack: a z slice is one page; y and x slices are gathered while streaming slabs."""
    out: dict[int, np.ndarray] = {}
    across = [(k, a, i) for k, (a, i) in enumerate(zip(axes, indices)) if a != 0]
    for k, a, _ in across:
        out[k] = np.empty((shape[0], shape[2] if a == 1 else shape[1]), dtype)
    if across:
        for z0, slab in iter_slabs(path, 16):
            for k, a, i in across:
                out[k][z0 : z0 + len(slab)] = slab[:, i, :] if a == 1 else slab[:, :, i]
    for k, (a, i) in enumerate(zip(axes, indices)):
        if a == 0:
            out[k] = next(iter_slabs(path, 1, i, i + 1))[1][0].copy()
    return [out[k] for k in range(len(axes))]


def read_slices(volume: Any, axes: Sequence[int] = (0, 1, 2), indices: Sequence[int | None] | None = None) -> Slices:
    """The slices of ``volume`` (a path or an array: numpy, zarr, dask, cupy) along ``axes``, reading only those.

    ``indices`` default to the centre (``n // 2``) of each axis. zarr, HDF5 and ``.npy`` volumes are
    sliced where they lie; a TIFF stack is streamed slab by slab for its y and x slices.
    """
    axes = tuple(int(a) for a in axes)
    name = volume_name(volume)
    if isinstance(volume, (str, os.PathLike)):
        kind = parse(volume).kind
        head = info(volume)
        shape, attrs = tuple(head.shape), dict(head.attrs)
        _check_3d(name, shape)
        if kind == "zarr":
            volume = open_array(volume)
        elif kind in ("tiff", "tiff-folder"):
            picked = _indices(shape, axes, indices)
            return Slices(name, shape, axes, picked, _tiff_slices(volume, shape, head.dtype, axes, picked), attrs)
        elif kind == "hdf5":
            f, ds = _open_hdf5(parse(volume))
            with f:
                picked = _indices(shape, axes, indices)
                return Slices(name, shape, axes, picked, [np.asarray(ds[(slice(None),) * a + (i,)])
                                                          for a, i in zip(axes, picked)], attrs)
        else:
            volume = _open_npy(parse(volume))
    else:
        attrs = volume_attrs(volume)
    shape = tuple(volume.shape)
    _check_3d(name, shape)
    picked = _indices(shape, axes, indices)
    return Slices(name, shape, axes, picked, [np.asarray(_take(volume, a, i)) for a, i in zip(axes, picked)], attrs)


def _check_3d(name: str, shape: Sequence[int]) -> None:
    if len(shape) != 3:
        raise ParameterError(f"{name}: expected a 3-D volume (z, y, x), found shape {tuple(shape)}")


def _indices(shape: Sequence[int], axes: Sequence[int], indices: Sequence[int | None] | None) -> tuple[int, ...]:
    chosen = list(indices) if indices is not None else [None] * len(axes)
    out = []
    for a, i in zip(axes, chosen):
        n = int(shape[a])
        i = n // 2 if i is None else int(i)
        if not 0 <= i < n:
            raise ParameterError(f"slice {'zyx'[a]} = {i} is outside the volume (0 … {n - 1})")
        out.append(i)
    return tuple(out)
