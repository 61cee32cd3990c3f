"""Training samples: feature vectors of the labelled voxels, computed around them only.

The labelled voxels are grouped by a grid of blocks; each group's bounding box is grown by
the features' halo, read, filtered, and the labelled voxels' vectors are taken. Scribbles
on a few slices therefore cost a few slabs of ``1 + 2·halo`` slices, never the volume's
feature stack.

Examples
--------
>>> import numpy as np
>>> from gpuseg import features
>>> from gpuseg.classify.scribbles import read
>>> image = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
>>> scribbles = np.zeros((12, 12, 12), np.uint8); scribbles[6, 2:5, 3] = 1
>>> spec = features.parse_features("gaussian:1.0")
>>> X = gather(image, read(scribbles, image.shape), spec, block=4, device="cpu")
>>> bool(np.allclose(X[:, 0], features.compute_block(image, spec)[0, 6, 2:5, 3]))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, validate
from .. import features as feat
from ..engine import blocks, cluster, executor
from ..io import zarrio
from .scribbles import Scribbles

GATHER_BLOCK = 64


def _read(image, padded: tuple[slice, ...], name: str) -> Any:
    """One halo'd region of the grey volume, refused if it holds NaN or infinite values."""
    region = zarrio.read(image, padded)
    validate.finite(region, name, [s.start for s in padded])
    return region


def _features_at(image, padded, inner, local, spec, device: str, name: str) -> np.ndarray:
    """Feature vectors (n, C) at ``local`` (z, y, x index arrays inside ``inner``) of one halo'd region."""
    return executor.run_on_device(_pick, [_read(image, padded, name), *local], backend.resolve(device),
                                  {"spec": spec, "inner": inner}).T.copy()


def _pick(region: Any, z: Any, y: Any, x: Any, *, spec, inner) -> Any:
    """Feature vectors (C, n) at voxels (z, y, x) of ``inner`` of one padded region, on its device."""
    return feat.compute_block(region, spec, inner=inner)[:, z, y, x]


def gather(image, scribbles: Scribbles, spec, *, block: int | Sequence[int] = GATHER_BLOCK,
           device: str = "auto", scheduler: str | None = None, workers: int | None = None,
           progress: bool = False, name: str = "the image") -> np.ndarray:
    """Feature vectors ``(N, C)`` float32 of every labelled voxel, computed block by block around the labels only.

    ``name`` names the image in errors (e.g. its NaN voxels).
    """
    shape = scribbles.shape
    whole = tuple(slice(0, n) for n in shape)
    device = backend.resolve(device).name  # decided once, not per task
    coords = scribbles.coords()
    block_shape = zarrio.normalize_chunks(block, shape)
    keys = np.ravel_multi_index(tuple((coords // block_shape).T), [-(-n // b) for n, b in zip(shape, block_shape)])
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    groups = np.split(order, bounds)
    import uuid

    import dask

    source = dask.delayed(image, name=f"training-image-{uuid.uuid4().hex}")  # named: never hashed or copied per task
    tasks = []
    for rows in groups:
        c = coords[rows]
        lo, hi = c.min(axis=0), c.max(axis=0) + 1
        where = blocks.pad(tuple(slice(int(a), int(b)) for a, b in zip(lo, hi)), spec.halo, whole)
        local = tuple((c[:, ax] - lo[ax]).astype(np.intp) for ax in range(3))
        tasks.append(dask.delayed(_features_at, pure=False)(source, where.padded, where.inner, local, spec, device,
                                                                  name))
    results = cluster.compute(tasks, scheduler=scheduler, workers=workers, progress=progress, desc="training features")
    out = np.empty((len(coords), spec.channels), np.float32)
    for rows, values in zip(groups, results):
        out[rows] = values
    return out


def region_features(image, region, spec, device: str, name: str = "the image") -> np.ndarray:
    """Feature vectors ``(N, C)`` of every voxel of ``region`` (a small crop), read with the halo."""
    where = blocks.pad(tuple(region), spec.halo, tuple(slice(0, n) for n in image.shape))
    stack = executor.run_on_device(feat.compute_block, [_read(image, where.padded, name)], backend.resolve(device),
                                   {"spec": spec, "inner": where.inner})
    return stack.reshape(spec.channels, -1).T.copy()
