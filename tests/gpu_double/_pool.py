"""cupy's device memory pool, modelled block for block (after cupy/cuda/memory.pyx).

What is kept from cupy, because code under test can observe it:

* sizes are rounded up to 512 bytes;
* freed blocks are cached per stream (an *arena* per stream): an allocation reuses only
  blocks freed on the stream that is current when it allocates;
* an allocation takes the smallest cached block that fits (best fit) and splits off the
  rest, which stays cached; a freed block merges with free neighbours split from the same
  driver allocation;
* ``free_all_blocks`` returns only *unsplit* free blocks to the driver;
* when the driver refuses (``cudaMalloc`` out of memory), the pool frees all blocks and
  retries, then runs ``gc.collect()`` twice, frees all blocks and retries once more, then
  raises ``OutOfMemoryError`` with cupy's message;
* frees that arrive while the pool is busy (another thread, or a finaliser run during an
  allocation) are staged and committed at the next allocation, as in cupy.

Only bytes are modelled: the arrays' data live in host memory owned by their numpy buffers.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import threading
from typing import Any

from ._model import ALLOCATION_UNIT, NULL_STREAM_PTR, DriverOutOfMemory

_seq = itertools.count()


def round_size(size: int) -> int:
    """cupy's ``_round_size``: up to a multiple of 512 bytes."""
    return (size + ALLOCATION_UNIT - 1) // ALLOCATION_UNIT * ALLOCATION_UNIT


class Chunk:
    """A piece of one driver allocation (``prev``/``next`` link the pieces of a split block)."""

    __slots__ = ("segment", "offset", "size", "arena", "prev", "next", "key")

    def __init__(self, segment: int, offset: int, size: int, arena: Arena | None) -> None:
        self.segment, self.offset, self.size, self.arena = segment, offset, size, arena
        self.prev: Chunk | None = None
        self.next: Chunk | None = None
        self.key = (size, next(_seq))

    def split(self, size: int) -> Chunk | None:
        if self.size == size:
            return None
        rest = Chunk(self.segment, self.offset + size, self.size - size, self.arena)
        self.size = size
        self.key = (size, next(_seq))
        if self.next is not None:
            rest.next = self.next
            self.next.prev = rest
        self.next = rest
        rest.prev = self
        return rest

    def merge_next(self) -> None:
        nxt = self.next
        assert nxt is not None
        self.size += nxt.size
        self.key = (self.size, next(_seq))
        self.next = nxt.next
        if nxt.next is not None:
            nxt.next.prev = self


class Arena:
    """The free blocks of one stream, ordered by size (cupy's std::set of (size, chunk))."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []
        self.chunks: dict[tuple[int, int], Chunk] = {}
        self.pending: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.keys)

    def _remove(self, chunk: Chunk) -> bool:
        if self.chunks.get(chunk.key) is not chunk:
            return False
        del self.chunks[chunk.key]
        self.keys.pop(bisect.bisect_left(self.keys, chunk.key))
        return True

    def insert(self, chunk: Chunk, merge: bool = True) -> None:
        if merge:
            while chunk.next is not None and self._remove(chunk.next):
                chunk.merge_next()
            while chunk.prev is not None and self._remove(chunk.prev):
                chunk = chunk.prev
                chunk.merge_next()
        bisect.insort(self.keys, chunk.key)
        self.chunks[chunk.key] = chunk

    def commit_pending(self) -> None:
        while self.pending:
            self.insert(self.pending.pop())

    def get(self, size: int) -> Chunk | None:
        """Best fit: the smallest free block of at least ``size``, split to ``size``."""
        self.commit_pending()
        i = bisect.bisect_left(self.keys, (size, -1))
        if i == len(self.keys):
            return None
        chunk = self.chunks.pop(self.keys.pop(i))
        rest = chunk.split(size)
        if rest is not None:
            self.insert(rest, merge=False)
        return chunk

    def free_all(self) -> list[Chunk]:
        """Remove and return the free blocks that are whole driver allocations."""
        self.commit_pending()
        whole = [c for c in self.chunks.values() if c.prev is None and c.next is None]
        for c in whole:
            self._remove(c)
            c.arena = None
        return whole


class SingleDeviceMemoryPool:
    """cupy's ``SingleDeviceMemoryPool`` for one modelled device."""

    def __init__(self, model: Any, device: int) -> None:
        self._model = model
        self._device = device
        self._lock = threading.Lock()  # not reentrant: a free during an allocation is staged
        self._arenas: dict[int, Arena] = {}
        self._used = 0
        self._total = 0
        self._limit = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ allocation

    def malloc(self, size: int, stream_ptr: int = NULL_STREAM_PTR) -> Chunk | None:
        """Allocate ``size`` bytes on the arena of ``stream_ptr``; None for 0 bytes (no memory)."""
        from .cupy.cuda.memory import OutOfMemoryError

        if size == 0:
            return None
        size = round_size(size)
        if self._model.take_injected_failure(size):
            self._model.count("oom_errors")
            raise OutOfMemoryError(size, self._total, self._limit)
        with self._lock:
            arena = self._arenas.setdefault(stream_ptr, Arena())
            chunk = arena.get(size)
        if chunk is None:
            self._try_malloc(size)
            chunk = Chunk(next(_seq), 0, size, arena)
        with self._count_lock:
            self._used += chunk.size
            used, total = self._used, self._total
        self._model.count("allocations")
        self._model.pool_watermarks(total, used)
        return chunk

    def _try_malloc(self, size: int) -> None:
        from .cupy.cuda.memory import OutOfMemoryError

        if self._limit and self._total + size > self._limit:
            self.free_all_blocks()
            if self._total + size > self._limit:
                gc.collect()
                self.free_all_blocks()
            if self._total + size > self._limit:
                self._model.count("oom_errors")
                raise OutOfMemoryError(size, self._total, self._limit)
        for attempt in range(3):
            try:
                self._model.driver_malloc(self._device, size)
                break
            except DriverOutOfMemory:
                if attempt == 2:
                    self._model.count("oom_errors")
                    raise OutOfMemoryError(size, self._total, self._limit) from None
                if attempt == 1:
                    gc.collect()
                    gc.collect()
                self.free_all_blocks()
        with self._count_lock:
            self._total += size

    def free(self, chunk: Chunk | None) -> None:
        """Return a block to its stream's cache (called when the last array on it dies)."""
        if chunk is None:
            return
        with self._count_lock:
            self._used -= chunk.size
        arena = chunk.arena
        if arena is None:
            return
        if self._lock.acquire(blocking=False):
            try:
                arena.insert(chunk)
            finally:
                self._lock.release()
        else:
            arena.pending.append(chunk)  # list.append is atomic; committed by the next allocation

    # ------------------------------------------------------------------ cupy's public methods

    def free_all_blocks(self, stream: Any = None) -> None:
        """Give every cached, unsplit block back to the driver (of one stream's arena, or all)."""
        with self._lock:
            if stream is None:
                arenas = list(self._arenas.values())
            else:
                arena = self._arenas.get(stream.ptr)
                arenas = [] if arena is None else [arena]
            freed = [c for a in arenas for c in a.free_all()]
        for c in freed:
            self._model.driver_free(self._device, c.size)
        with self._count_lock:
            self._total -= sum(c.size for c in freed)

    def n_free_blocks(self) -> int:
        with self._lock:
            return sum(len(a) + len(a.pending) for a in self._arenas.values())

    def used_bytes(self) -> int:
        return self._used

    def free_bytes(self) -> int:
        return self._total - self._used

    def total_bytes(self) -> int:
        return self._total

    def set_limit(self, size: int | None = None, fraction: float | None = None) -> None:
        if size is None:
            size = 0 if fraction is None else int(fraction * self._model.spec.total_memory)
        if size < 0:
            raise ValueError(f"memory limit size out of range: {size}")
        self._limit = int(size)

    def get_limit(self) -> int:
        return self._limit


class PinnedMemoryPool:
    """cupy's pinned (page-locked host) memory pool: the double never pins, so it only counts."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.free_all_calls = 0

    def free_all_blocks(self) -> None:
        self.free_all_calls += 1

    def n_free_blocks(self) -> int:
        return 0
