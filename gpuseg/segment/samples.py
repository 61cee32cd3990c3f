"""Training samples: feature vectors of the labelled voxels, computed around them only.

The labelled voxels are grouped by a grid of blocks; each group's bounding box is grown by
the features' halo, read, filtered, and the labelled voxels' vectors are taken. Scribbles
on a few slices therefore cost a few slabs of ``1 + 2·halo`` slices, never the volume's
feature stack.

Examples
--------
>>> import numpy as np
>>> from gpuseg import features
>>> from gpuseg.segment import annotations
>>> image = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
>>> scribbles = np.zeros((12, 12, 12), np.uint8); scribbles[6, 2:5, 3] = 1
>>> spec = features.parse_features("gaussian:1.0")
>>> X = gather(image, annotations.read(scribbles, image.shape), spec, block=4, device="cpu")
>>> bool(np.allclose(X[:, 0], features.compute_block(image, spec)[0, 6, 2:5, 3]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import backend, cluster
from .. import features as feat
from ..io import zarrio
from . import annotations

GATHER_BLOCK = 64


def _features_at(image, padded, inner, local, spec, device: str) -> np.ndarray:
    """Feature vectors (n, C) at ``local`` (z, y, x index arrays inside ``inner``) of one halo'd region."""
    be = backend.resolve(device)
    stack = feat.compute_block(be.asarray(image[padded]), spec, inner=inner)
    picked = stack[(slice(None), *(be.asarray(c) for c in local))]
    return backend.to_host(picked).T.copy()


def gather(image, scribbles: annotations.Scribbles, spec, *, block: int | Sequence[int] = GATHER_BLOCK,
           device: str = "auto", scheduler: str | None = None, workers: int | None = None,
           progress: bool = False) -> np.ndarray:
    """Feature vectors ``(N, C)`` float32 of every labelled voxel, computed block by block around the labels only."""
    shape = scribbles.shape
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
        padded = tuple(slice(max(int(a) - h, 0), min(int(b) + h, n)) for a, b, h, n in zip(lo, hi, spec.halo, shape))
        inner = tuple(slice(int(a) - p.start, int(b) - p.start) for a, b, p in zip(lo, hi, padded))
        local = tuple((c[:, ax] - lo[ax]).astype(np.intp) for ax in range(3))
        tasks.append(dask.delayed(_features_at, pure=False)(source, padded, inner, local, spec, device))
    results = cluster.compute(tasks, scheduler=scheduler, workers=workers, progress=progress, desc="training features")
    out = np.empty((len(coords), spec.channels), np.float32)
    for rows, values in zip(groups, results):
        out[rows] = values
    return out


def region_features(image, region, spec, device: str) -> np.ndarray:
    """Feature vectors ``(N, C)`` of every voxel of ``region`` (a small crop), read with the halo."""
    shape = image.shape
    padded = tuple(slice(max(r.start - h, 0), min(r.stop + h, n)) for r, h, n in zip(region, spec.halo, shape))
    inner = tuple(slice(r.start - p.start, r.stop - p.start) for r, p in zip(region, padded))
    be = backend.resolve(device)
    stack = feat.compute_block(be.asarray(image[padded]), spec, inner=inner)
    return backend.to_host(stack).reshape(spec.channels, -1).T.copy()
