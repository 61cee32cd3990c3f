"""One block-size policy for the CPU and the GPU, decided once per run and stored with its output.

A block is a multiple of the output's chunks. On the CPU it grows up to what the operation
declares it may take of host memory, while every worker still gets two blocks. On the GPU it
is the largest whose working set fits :data:`IN_FLIGHT` times (per process sharing the device)
into the device's free memory. For an operation whose result depends on the blocking the
block ignores device and workers, so every run gives the same bytes. The plan is stored in
the unfinished output; a resume reuses it whatever its own workers, memory or device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError
from .blocks import Shape, count_blocks
from .operation import Bound

DEFAULT_BLOCK_VOXELS = 256**3
HOST_BLOCK_BYTES = 2**28  # a block's declared host working set stays under 256 MiB
GPU_MEMORY_SHARE = 0.6  # of free device memory, split between the blocks in flight (rest: FFT plans, kernels)
GPU_MAX_BLOCK_VOXELS = 512**3
IN_FLIGHT = 3  # blocks on one device at once: one copied in, one computing, one copied out


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a run is blocked and where its bytes come from.

    Attributes
    ----------
    block_shape : (z, y, x)
        The work block, a multiple of the chunk shape.
    device : {"cpu", "gpu"} or None
        The device whose bytes the output holds; None for an operation that gives the same
        bytes on every device.
    """

    block_shape: Shape
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"block_shape": list(self.block_shape), "device": self.device}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(tuple(int(b) for b in data["block_shape"]), data.get("device"))


def grow(shape: Sequence[int], chunk_shape: Sequence[int], max_voxels: int, min_blocks: int = 1,
         halo: Sequence[int] = (0, 0, 0)) -> Shape:
    """The largest multiple of ``chunk_shape`` (grown evenly, no larger than needed) with at most ``max_voxels``
    padded voxels, stopping before the volume would split into fewer than ``min_blocks`` blocks.

    Examples
    --------
    >>> grow((1024, 1024, 1024), (128, 128, 128), 256**3)
    (256, 256, 256)
    >>> grow((100, 2048, 2048), (128, 128, 128), 128 * 512 * 512)
    (128, 512, 512)
    >>> grow((256, 256, 256), (128, 128, 128), 256**3, min_blocks=4)
    (256, 128, 128)
    """
    block = list(chunk_shape)
    while True:
        growable = [a for a in range(len(block)) if block[a] < shape[a]]
        if not growable:
            return tuple(block)
        axis = min(growable, key=lambda a: block[a])
        grown = [b * 2 if a == axis else b for a, b in enumerate(block)]
        padded = [min(g, n) + 2 * h for g, n, h in zip(grown, shape, halo)]
        if np.prod(padded) > max_voxels or count_blocks(shape, grown) < min_blocks:
            return tuple(block)
        block = grown


def gpu_block_voxels(bytes_per_voxel: int, free: int, sharing: int = 1) -> int:
    """Padded voxels of the largest block whose working set fits :data:`IN_FLIGHT` × ``sharing`` times in ``free``.

    Examples
    --------
    >>> gpu_block_voxels(100, free=80 * 2**30) == GPU_MAX_BLOCK_VOXELS
    True
    >>> gpu_block_voxels(100, free=2**30), gpu_block_voxels(100, free=2**30, sharing=2)
    (2147483, 1073741)
    """
    return max(1, min(GPU_MAX_BLOCK_VOXELS, int(free * GPU_MEMORY_SHARE / (IN_FLIGHT * sharing) / bytes_per_voxel)))


def make(bound: Bound, shape: Sequence[int], chunk_shape: Sequence[int], *, device: str, workers: int,
         free_device_memory: int | None = None, sharing: int = 1, block_shape: Sequence[int] | None = None) -> Plan:
    """The plan of a run of ``bound`` over ``shape``.

    Parameters
    ----------
    device : {"cpu", "gpu"}
        Where the blocks run (decided once, by the caller).
    workers : int
        Parallel workers (the CPU plan gives each two blocks at least).
    free_device_memory : int
        Free bytes of the device (GPU only).
    sharing : int
        Processes that share one GPU (each keeps :data:`IN_FLIGHT` blocks on it).
    block_shape : (z, y, x), optional
        An explicit block; must be a multiple of the chunks.
    """
    source = None if bound.op.same_on_every_device else device
    if block_shape is not None:
        block = tuple(int(b) for b in block_shape)
        if len(block) != len(chunk_shape) or any(b < 1 or b % c for b, c in zip(block, chunk_shape)):
            raise ParameterError(f"block shape {block} must be a multiple of the chunk shape {tuple(chunk_shape)}")
        return Plan(block, source)
    cap = bound.max_block_voxels or DEFAULT_BLOCK_VOXELS
    if not bound.op.blocking_invariant:  # the same block wherever and however it runs; the cap bounds its core
        return Plan(grow(shape, chunk_shape, cap), source)
    if device == "gpu":
        budget = gpu_block_voxels(bound.device_bytes_per_voxel, int(free_device_memory or 0), sharing)
        if bound.max_block_voxels:
            budget = min(budget, bound.max_block_voxels)
        return Plan(grow(shape, chunk_shape, budget, IN_FLIGHT, bound.halo), source)
    budget = min(cap, max(1, HOST_BLOCK_BYTES // max(1, bound.host_bytes_per_voxel)))
    return Plan(grow(shape, chunk_shape, budget, 2 * workers), source)
