"""Volumes in any supported format: header information, slab-wise reading, staged writing."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..validate import three_d
from . import metadata, ome, tiff, zarrio
from .paths import Location, parse

SUPPORTED_DTYPES = tuple(np.dtype(t) for t in ("uint8", "uint16", "int8", "int16", "uint32", "int32", "float32", "float64"))


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """What a volume's header says."""

    path: str
    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...] | None
    attrs: dict[str, Any]
    squeezed: int = 0
    """Leading axes of length 1 the zarr array has beyond ``shape`` (an OME-Zarr image's t and c): read
    through :func:`iter_slabs`, which leaves them out, not sliced as the array it is."""


def check_dtype(dtype: Any, name: str) -> np.dtype:
    """Raise :class:`InputError` unless ``dtype`` is one gpuseg computes on."""
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(t) for t in SUPPORTED_DTYPES)
        raise InputError(f"{name}: dtype {dtype} is not supported; convert it to one of {allowed}")
    return dtype


def _open_hdf5(loc: Location):
    import h5py

    if not Path(loc.container).is_file():
        raise InputError(f"{loc.container}: no such HDF5 file; check the path")
    try:
        f = h5py.File(loc.container, "r")
    except Exception as exc:
        raise InputError(f"{loc.container}: not a readable HDF5 file ({exc})") from exc
    if not loc.inner or loc.inner not in f or not isinstance(f[loc.inner], h5py.Dataset):
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        f.close()
        raise InputError(f"{loc}: name a dataset inside the file, e.g. {loc.container}/{names[0] if names else 'data'}")
    return f, f[loc.inner]


def _open_npy(loc: Location) -> np.ndarray:
    if not Path(loc.container).is_file():
        raise InputError(f"{loc.container}: no such file; check the path")
    try:
        return np.load(loc.container, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{loc.container}: not a readable .npy file ({exc})") from exc


def info(path: str | os.PathLike) -> VolumeInfo:
    """Read shape, dtype, chunks and attributes of the volume at ``path`` without reading its data."""
    loc = parse(path)
    if loc.kind == "zarr":
        arr = zarrio.open_array(path)
        attrs = arr.attrs.asdict()
        if metadata.voxel_size(attrs) is None:  # another tool's OME-Zarr: its voxel size is in the image's metadata
            size = _image_voxel_size(path)
            attrs.update({metadata.VOXEL_SIZE_KEY: size} if size else {})
        lead = singleton_lead(arr.shape)
        return VolumeInfo(str(path), "zarr", arr.shape[lead:], arr.dtype, arr.chunks[lead:], attrs, lead)
    if loc.kind == "hdf5":
        f, ds = _open_hdf5(loc)
        with f:
            return VolumeInfo(str(path), "hdf5", ds.shape, ds.dtype, ds.chunks, dict(ds.attrs))
    if loc.kind == "npy":
        npy = _open_npy(loc)
        return VolumeInfo(str(path), "npy", npy.shape, npy.dtype, None, {})
    shape, dtype = tiff.stack_info(loc.container)
    return VolumeInfo(str(path), loc.kind, shape, dtype, None, {})


def singleton_lead(shape: tuple[int, ...]) -> int:
    """How many leading axes of an array of ``shape`` a reader leaves out: the t and c of a 5-D (t, c, z, y, x)
    OME-Zarr image with one time point and one channel, as bioformats2raw and Fiji write every image.

    Examples
    --------
    >>> singleton_lead((1, 1, 64, 64, 64)), singleton_lead((1, 2, 64, 64, 64)), singleton_lead((2, 64, 64, 64))
    (2, 0, 0)
    """
    return 2 if len(shape) == 5 and tuple(shape[:2]) == (1, 1) else 0


def _image_voxel_size(path: str | os.PathLike) -> list[float] | None:
    """Level 0's voxel size (z, y, x) in nm from the NGFF metadata of the OME-Zarr image ``path`` names
    (the first image of a bioformats2raw collection); None for a plain array or an image without space units."""
    import zarr

    loc = parse(path)
    found: Any = zarr.open(store=loc.container, path=loc.inner, mode="r")
    while isinstance(found, zarr.Group):
        scales = ome.level_scales(found.attrs.asdict())
        if scales:
            return scales[0]
        found = found.get("0")  # a bioformats2raw collection: its first image
    return None


def check_volume(vol: VolumeInfo) -> None:
    """Raise :class:`InputError` unless ``vol`` is a 3-D volume of a supported dtype."""
    three_d(vol.shape, vol.path)
    check_dtype(vol.dtype, vol.path)


def iter_slabs(
    path: str | os.PathLike, depth: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(z0, slab)`` of at most ``depth`` z-slices from ``start`` to ``stop``; holds one slab at a time."""
    loc = parse(path)
    if loc.kind in ("tiff", "tiff-folder"):
        yield from tiff.iter_slabs(loc.container, depth, start, stop)
        return
    lead: tuple[int, ...] = ()
    if loc.kind == "zarr":
        arr: Any = zarrio.open_array(path)
        lead = (0,) * singleton_lead(arr.shape)
        closer: Any = contextlib.nullcontext()
    elif loc.kind == "hdf5":
        closer, arr = _open_hdf5(loc)
    else:
        arr, closer = _open_npy(loc), contextlib.nullcontext()
    with closer:
        stop = arr.shape[len(lead)] if stop is None else stop
        for z0 in range(start, stop, depth):
            yield z0, np.asarray(arr[(*lead, slice(z0, min(z0 + depth, stop)))])
