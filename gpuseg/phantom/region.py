"""A virtual input that tells a block operation where its block lies in the volume.

Phantom operations compute from global voxel positions, never from the chunking, so
they need the position of the block they are given. :class:`Region` is passed to
:func:`gpuseg.engine.run.run` like an array: slicing it with the block's (halo'd)
region returns that region's bounds ``[z0, y0, x0, z1, y1, x1]``.

Examples
--------
>>> r = Region((10, 20, 30))
>>> r.shape
(10, 20, 30)
>>> r[..., 2:5, 0:20, 7:9].tolist()
[2, 0, 7, 5, 20, 9]
>>> bounds(r[...])
((0, 0, 0), (10, 20, 30))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend


class Region:
    """Sliceable stand-in for a volume of ``shape``: a slice gives its own bounds."""

    def __init__(self, shape: Sequence[int]):
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.int64)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k for k in key if k is not Ellipsis)
        key = key + (slice(None),) * (self.ndim - len(key))
        starts, stops = [], []
        for k, n in zip(key, self.shape):
            start, stop, _ = k.indices(n)
            starts.append(start)
            stops.append(stop)
        return np.array(starts + stops, dtype=np.int64)

    def __repr__(self) -> str:
        return f"Region({self.shape})"


def bounds(region_block: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(start, stop)`` of a region block (numpy or cupy) as two tuples of int."""
    values = [int(v) for v in backend.to_host(region_block)]
    half = len(values) // 2
    return tuple(values[:half]), tuple(values[half:])
