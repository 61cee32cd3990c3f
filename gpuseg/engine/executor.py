"""The only path between host and device: a block's inputs in, the kernel, its results out.

On the GPU at most :data:`~gpuseg.engine.plan.IN_FLIGHT` blocks of this process hold the
device at once (:func:`device_slot`), each slot with its own non-blocking stream, so one
block's copies overlap another's kernels while other threads decode and encode chunks. An
out-of-memory error releases the failed attempt (its arrays are unreachable once the
exception is gone, and only then can the pool give their memory back), retries once, then —
for an operation whose result does not depend on the blocking — retries on the two halves
of the block, down to an eighth of it, before stopping with one line.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from .. import backend
from ..errors import DeviceError
from . import timing
from .blocks import Block, crop, extent, split
from .operation import Bound
from .plan import IN_FLIGHT

T = TypeVar("T")
MAX_SPLITS = 3  # an out-of-memory block is halved at most this often (down to 1/8 of its voxels)

_slot_lock = threading.Lock()
_slot_streams: Any = None  # a queue of IN_FLIGHT cupy streams, made on first use


@contextlib.contextmanager
def device_slot(be: backend.Backend) -> Iterator[None]:
    """Hold one of :data:`IN_FLIGHT` device slots, each with its own non-blocking CUDA stream.

    Streams belong to the slots, not to the (many) threads: cupy's memory pool reuses a freed
    allocation only on the stream that freed it, so the pool caches at most one working set
    per slot. Does nothing on the CPU.
    """
    if be.name != "gpu":
        yield
        return
    global _slot_streams
    with _slot_lock:
        if _slot_streams is None:
            streams: queue.SimpleQueue[Any] = queue.SimpleQueue()
            for _ in range(IN_FLIGHT):
                streams.put(be.xp.cuda.Stream(non_blocking=True))
            _slot_streams = streams
    stream = _slot_streams.get()  # waits for a free slot
    try:
        with stream:
            yield
    finally:
        _slot_streams.put(stream)


def reset() -> None:
    """Forget the slots' streams (after the GPU modules were swapped, e.g. by a test)."""
    global _slot_streams
    with _slot_lock:
        _slot_streams = None


def call_kernel(bound: Bound, parts: Sequence[Any], block: Block) -> Any:
    kwargs = {**bound.params, "block": block} if bound.op.takes_block else bound.params
    return bound.op.kernel(*parts, **kwargs)


def _as_results(bound: Bound, value: Any) -> dict[str, Any]:
    if bound.multi:
        return {name: value[name] for name in bound.names}
    return {bound.names[0]: value}


def _round_trip(bound: Bound, parts: Sequence[Any], block: Block, be: backend.Backend,
                clock: timing.BlockClock) -> dict[str, Any]:
    """Inputs to the device, the kernel, crop, results to the host: one round trip."""
    on_device = [be.asarray(p) for p in parts]
    clock.lap("to_device")
    results = _as_results(bound, call_kernel(bound, on_device, block))
    if bound.op.finish is None:  # else the host step needs the padded block; it crops after
        results = {k: crop(v, block) for k, v in results.items()}
    del on_device
    clock.lap("compute")
    host = {k: _to_host(v) for k, v in results.items()}
    clock.lap("to_host")
    return host


def _to_host(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(backend.to_host(v) for v in value)
    return backend.to_host(value)


def _attempt(call: Callable[[], T], be: backend.Backend) -> T | None:
    """``call()``; None after an out-of-memory error on the GPU (with the failed attempt already released)."""
    try:
        return call()
    except Exception as exc:
        if be.name != "gpu" or not backend.is_out_of_memory(exc):
            raise
    # Outside the except clause the exception, its traceback and the frames holding the
    # failed attempt's device arrays are gone; only now can the pool hand their memory back.
    backend.release_cached_memory()
    return None


def _on_device(bound: Bound, parts: Sequence[Any], block: Block, be: backend.Backend,
               clock: timing.BlockClock, depth: int) -> dict[str, Any]:
    for _ in range(2):
        result = _attempt(lambda: _round_trip(bound, parts, block, be, clock), be)
        if result is not None:
            return result
    splittable = bound.op.blocking_invariant and bound.op.finish is None
    if not splittable or depth >= MAX_SPLITS or max(extent(block.core)) < 2:
        raise DeviceError(f"GPU out of memory on a block of {extent(block.padded)} voxels: lower --workers or "
                          "--chunks, or free the device")
    return _stitch(bound, parts, block, be, clock, depth)


def _stitch(bound: Bound, parts: Sequence[Any], block: Block, be: backend.Backend,
            clock: timing.BlockClock, depth: int) -> dict[str, Any]:
    """The block computed as two halves (each padded inside the block's own read region)."""
    out: dict[str, Any] = {}
    for half in split(block, bound.halo):
        rel = tuple(slice(p.start - q.start, p.stop - q.start) for p, q in zip(half.padded, block.padded))
        sub = [p[(Ellipsis, *rel)] for p in parts]
        where = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(half.core, block.core))
        for name, value in _on_device(bound, sub, half.local(), be, clock, depth + 1).items():
            if name not in out:
                out[name] = np.empty((*value.shape[:-3], *extent(block.core)), value.dtype)
            out[name][(Ellipsis, *where)] = value
    return out


def run_block(bound: Bound, parts: Sequence[Any], block: Block, be: backend.Backend,
              clock: timing.BlockClock | None = None) -> dict[str, Any]:
    """Results (host arrays of the core, by name) of ``bound`` on one block.

    Parameters
    ----------
    parts : sequence of arrays (host or device)
        Each input's padded region (``block.padded`` of the volume).
    block : Block
        Its ``padded`` must be counted from 0 (see :meth:`Block.local`).
    """
    clock = clock or timing.BlockClock()
    with device_slot(be):
        clock.lap("wait")
        results = _on_device(bound, parts, block, be, clock, 0)
    if bound.op.finish is not None:  # host work outside the device slot, then the crop
        results = {k: crop(bound.op.finish(v, **bound.params), block) for k, v in results.items()}
        clock.lap("compute")
    return results


def run_on_device(func: Callable[..., Any], parts: Sequence[Any], be: backend.Backend,
                  kwargs: dict[str, Any]) -> Any:
    """``func(*parts_on_device, **kwargs)`` brought back to the host: a result that is not a block
    (a reduction's counts, feature vectors at a few voxels), with the slot and out-of-memory recovery."""

    def call() -> Any:
        on_device = [be.asarray(p) for p in parts]
        return _to_host(func(*on_device, **kwargs))

    with device_slot(be):
        for _ in range(2):
            result = _attempt(call, be)
            if result is not None:
                return result
    shape = tuple(parts[0].shape) if parts else ()
    raise DeviceError(f"GPU out of memory on a region of {shape} voxels: use smaller --chunks, or free the device")
