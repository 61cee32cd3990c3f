"""Sparse annotations (scribbles): read from volumes or ilastik projects, merged, checked, kept as voxel lists.

An annotation is a uint8 volume of the tomogram's shape, 0 = unlabelled, k = class k (a
TIFF stack, zarr, HDF5 or .npy; or a numpy array), or an ilastik project (``.ilp``) whose
painted label blocks are read. Only labelled voxels are kept: their flat indices into the
tomogram and their values, so memory follows the number of scribbled voxels, never the
volume; volumes are scanned slab by slab.

Several annotations are merged in order: a later one adds its voxels and overrides the
earlier ones where both label a voxel (0 never erases).

Examples
--------
>>> import numpy as np
>>> a = np.zeros((2, 3, 3), np.uint8); a[0, 0, 0] = 1; a[1, 2, 2] = 2
>>> b = np.zeros((2, 3, 3), np.uint8); b[0, 0, 0] = 2; b[0, 1, 1] = 1
>>> s = read([a, b], (2, 3, 3))
>>> s.index.tolist(), s.merged(2).tolist(), s.merged(1).tolist()
([0, 4, 17], [2, 1, 2], [1, 0, 2])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import ilastik, volume

MAX_CLASS = 255  # segmentations are uint8


@dataclasses.dataclass(frozen=True)
class Scribbles:
    """Labelled voxels of one or more annotations.

    Attributes
    ----------
    shape : tuple of int
        The tomogram's shape (z, y, x).
    index : (N,) int64
        Sorted flat indices of every voxel any annotation labels.
    values : (A, N) uint8
        Each annotation's label at those voxels (0 where it has none).
    names : tuple of str
        Where each annotation came from.
    """

    shape: tuple[int, ...]  # (z, y, x)
    index: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]

    def merged(self, upto: int | None = None) -> np.ndarray:
        """Labels at ``index`` after merging the first ``upto`` annotations (all by default)."""
        upto = len(self.values) if upto is None else upto
        out = np.zeros(len(self.index), np.uint8)
        for v in self.values[:upto]:
            out = np.where(v > 0, v, out)
        return out

    def coords(self) -> np.ndarray:
        """(N, 3) z, y, x of ``index``."""
        return np.stack(np.unravel_index(self.index, self.shape), axis=1)


def _describe(source: Any, i: int) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"annotation array #{i + 1}"


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype.kind not in "iub":
        raise InputError(f"{name}: annotations must hold integer class values, not {values.dtype}; save them as uint8")
    if values.size and (values.min() < 0 or values.max() > MAX_CLASS):
        raise InputError(f"{name}: class values must lie in 1..{MAX_CLASS} (0 = unlabelled), found {values.min()}..{values.max()}")
    return values.astype(np.uint8)


def _from_array(array: np.ndarray, shape, name: str) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise InputError(f"{name}: annotation shape {array.shape} differs from the tomogram's {tuple(shape)}; annotate the same volume")
    flat = np.flatnonzero(array)
    return flat.astype(np.int64), _check_values(array.reshape(-1)[flat], name)


def _from_volume(path: str, shape, depth: int = 32) -> tuple[np.ndarray, np.ndarray]:
    vol = volume.info(path)
    if tuple(vol.shape) != tuple(shape):
        raise InputError(f"{path}: annotation shape {tuple(vol.shape)} differs from the tomogram's {tuple(shape)}; annotate the same volume")
    if np.dtype(vol.dtype).kind not in "iub":
        raise InputError(f"{path}: annotations must hold integer class values, not {vol.dtype}; save them as uint8")
    plane = int(shape[1]) * int(shape[2])
    index, values = [], []
    for z0, slab in volume.iter_slabs(path, depth):
        flat = np.flatnonzero(slab)
        index.append(flat.astype(np.int64) + z0 * plane)
        values.append(_check_values(slab.reshape(-1)[flat], path))
    return np.concatenate(index), np.concatenate(values)


def _from_ilp(path: str, shape) -> tuple[np.ndarray, np.ndarray]:
    index, values = [], []
    for region, data in ilastik.iter_label_blocks(path):
        if any(s.stop > n for s, n in zip(region, shape)):
            raise InputError(f"{path}: label block {tuple((s.start, s.stop) for s in region)} reaches beyond the tomogram's "
                             f"shape {tuple(shape)}; use the image the project was labelled on")
        local = np.nonzero(data)
        glob = tuple(c + s.start for c, s in zip(local, region))
        index.append(np.ravel_multi_index(glob, shape).astype(np.int64))
        values.append(data[local])
    if not index:
        return np.zeros(0, np.int64), np.zeros(0, np.uint8)
    index_all, values_all = np.concatenate(index), np.concatenate(values)
    # blocks should not overlap; if they do, the later block wins, as when ilastik reloads them in order
    last = len(index_all) - 1 - np.unique(index_all[::-1], return_index=True)[1]
    return index_all[last], values_all[last]


def read_one(source: Any, shape: Sequence[int], i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and values of the labelled voxels of one annotation."""
    name = _describe(source, i)
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source).lower().endswith(".ilp"):
            return _from_ilp(os.fspath(source), shape)
        return _from_volume(os.fspath(source), shape)
    return _from_array(source, shape, name)


def read(sources: Any, shape: Sequence[int]) -> Scribbles:
    """Read and merge annotations (one, or a sequence; later ones override earlier ones).

    Raises
    ------
    InputError
        Shape differing from the tomogram's, non-integer or out-of-range values.
    """
    if isinstance(sources, (str, os.PathLike, np.ndarray)):
        sources = [sources]
    shape = tuple(int(s) for s in shape)
    parts = [read_one(s, shape, i) for i, s in enumerate(sources)]
    index = np.unique(np.concatenate([p[0] for p in parts])) if parts else np.zeros(0, np.int64)
    values = np.zeros((len(parts), len(index)), np.uint8)
    for row, (idx, val) in zip(values, parts):
        row[np.searchsorted(index, idx)] = val
    return Scribbles(shape, index, values, tuple(_describe(s, i) for i, s in enumerate(sources)))


def check_classes(labels: np.ndarray, names: Sequence[str]) -> list[int]:
    """The distinct class values in ``labels``; raise unless there are at least two.

    Raises
    ------
    InputError
        No labelled voxel, or a single class.
    """
    classes = np.unique(labels[labels > 0]).tolist()
    where = ", ".join(names)
    if not classes:
        raise InputError(f"{where}: no labelled voxels (all 0); paint scribbles of at least two classes")
    if len(classes) == 1:
        raise InputError(f"{where}: only class {classes[0]} is labelled; paint scribbles of at least two classes")
    return classes


def study_slices(depth: int) -> np.ndarray:
    """The study's annotated z slices of a volume ``depth`` deep: the central one and six more, equally spaced.

    Examples
    --------
    >>> study_slices(64).tolist()
    [8, 16, 24, 32, 39, 47, 55]
    """
    return np.linspace(0, depth - 1, 9).round().astype(int)[1:-1]


def random_scribbles(truth: np.ndarray, fraction: float = 0.10, seed: int = 0) -> np.ndarray:
    """Scribbles drawn from a ``truth``: a random ``fraction`` of the voxels of each of the :func:`study_slices`,
    labelled as the truth labels them. Random voxels, not a person's strokes: for tests and benchmarks.

    Examples
    --------
    >>> truth = np.ones((16, 8, 8), np.uint8)
    >>> s = random_scribbles(truth, 0.5)
    >>> sorted(np.flatnonzero(s.any(axis=(1, 2))).tolist()) == study_slices(16).tolist(), set(np.unique(s)) == {0, 1}
    (True, True)
    """
    rng = np.random.default_rng(seed)
    out = np.zeros_like(truth)
    for z in study_slices(truth.shape[0]):
        mask = rng.random(truth.shape[1:]) < fraction
        out[z][mask] = truth[z][mask]
    return out
