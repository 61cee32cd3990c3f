"""``cupy.cuda.memory``: the out-of-memory error, the pools' public faces and memory pointers."""

from __future__ import annotations

from typing import Any

from ..._model import MODEL


class OutOfMemoryError(MemoryError):
    """cupy's out-of-memory error, with cupy's message (cupy/cuda/memory.pyx)."""

    def __init__(self, size: int, total: int, limit: int = 0) -> None:
        self._size, self._total, self._limit = size, total, limit
        if limit == 0:
            msg = f"Out of memory allocating {size:,} bytes"
            if total != -1:
                msg += f" (allocated so far: {total:,} bytes)."
        else:
            msg = (f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes, "
                   f"limit set to: {limit:,} bytes).")
        super().__init__(msg)

    def __reduce__(self):
        return type(self), (self._size, self._total, self._limit)


OutOfMemoryError.__module__ = "cupy.cuda.memory"


class MemoryPool:
    """``cupy.get_default_memory_pool()``: the current device's pool (cupy keeps one per device)."""

    def _pool(self):
        return MODEL.pools[MODEL.current_device()]

    def malloc(self, size: int) -> Any:
        raise NotImplementedError("gpu_double: raw pool allocations are not modelled; allocate arrays")

    def free_all_blocks(self, stream: Any = None) -> None:
        self._pool().free_all_blocks(stream)

    def free_all_free(self) -> None:
        import warnings

        warnings.warn("free_all_free is deprecated. Use free_all_blocks instead.", DeprecationWarning, stacklevel=2)
        self.free_all_blocks()

    def n_free_blocks(self) -> int:
        return self._pool().n_free_blocks()

    def used_bytes(self) -> int:
        return self._pool().used_bytes()

    def free_bytes(self) -> int:
        return self._pool().free_bytes()

    def total_bytes(self) -> int:
        return self._pool().total_bytes()

    def set_limit(self, size: int | None = None, fraction: float | None = None) -> None:
        self._pool().set_limit(size, fraction)

    def get_limit(self) -> int:
        return self._pool().get_limit()


class PinnedMemoryPool:
    """``cupy.get_default_pinned_memory_pool()`` (nothing is pinned in the double)."""

    def free_all_blocks(self) -> None:
        MODEL.pinned.free_all_blocks()

    def n_free_blocks(self) -> int:
        return MODEL.pinned.n_free_blocks()


MemoryPool.__module__ = PinnedMemoryPool.__module__ = "cupy.cuda.memory"


class MemoryPointer:
    """``ndarray.data``: where an array's first element lives (``ptr``) and on which device."""

    def __init__(self, ptr: int, device_id: int, owner: Any) -> None:
        self.ptr = ptr
        self.device_id = device_id
        self.mem = owner

    def __int__(self) -> int:
        return self.ptr

    @property
    def device(self):
        from .device import Device

        return Device(self.device_id)


MemoryPointer.__module__ = "cupy.cuda.memory"
_DEFAULT_POOL = MemoryPool()
_DEFAULT_PINNED_POOL = PinnedMemoryPool()
