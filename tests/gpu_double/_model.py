"""The modelled machine behind the double: device properties, driver memory, counters, fault injection.

One process-wide :data:`MODEL` holds everything that real CUDA keeps outside Python objects:
how much device memory the driver has handed out (``cudaMalloc``), which stream and device
each host thread has made current, and what happened so far (allocations, transfers,
synchronisations, kernel launches). Tests read and steer it through :mod:`gpu_double.control`.

Why a separate driver level under the memory pool: cupy's pool caches freed blocks and only
asks the driver for more when its cache has no fitting block; when the driver refuses, the
pool frees its cached (unsplit) blocks and retries. Code that sizes its work from
``memGetInfo`` or that recovers from ``OutOfMemoryError`` behaves differently depending on
both levels, so both are modelled.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

GiB = 1 << 30
ALLOCATION_UNIT = 512  # cupy rounds every pool allocation up to this (cupy/cuda/memory.pyx)
NULL_STREAM_PTR = 0


@dataclasses.dataclass
class DeviceSpec:
    """Properties of each modelled device (all devices are alike)."""

    name: bytes = b"gpu_double (modelled NVIDIA H100)"
    total_memory: int = 16 * GiB
    context_bytes: int = 0  # memory the CUDA context itself holds (not visible to the pool)
    multiprocessors: int = 132
    l2_cache_bytes: int = 50 * (1 << 20)
    major: int = 9
    minor: int = 0
    count: int = 1


@dataclasses.dataclass
class Counters:
    """What the code under test did to the modelled device since the last reset."""

    allocations: int = 0  # pool allocations of more than 0 bytes (cache hits included)
    driver_mallocs: int = 0  # cudaMalloc calls that succeeded
    driver_frees: int = 0  # blocks given back to the driver (free_all_blocks)
    failed_driver_mallocs: int = 0
    oom_errors: int = 0
    peak_pool_bytes: int = 0  # highest pool total_bytes (held from the driver)
    peak_used_bytes: int = 0  # highest pool used_bytes (held by live arrays)
    h2d_transfers: int = 0
    h2d_bytes: int = 0
    d2h_transfers: int = 0
    d2h_bytes: int = 0
    syncs: int = 0
    sync_reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    streams_created: int = 0
    kernel_launches: int = 0
    kernel_compiles: int = 0

    def snapshot(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sync_reasons"] = dict(self.sync_reasons)
        return d


class DriverOutOfMemory(Exception):
    """cudaMalloc returned cudaErrorMemoryAllocation (the pool reacts to it; users never see it)."""


class Model:
    """The process-wide state of the modelled devices."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tls = threading.local()
        self.reset()

    # ------------------------------------------------------------------ configuration

    def reset(self, spec: DeviceSpec | None = None) -> None:
        """Forget everything: new devices, empty pools, zero counters, no injected faults."""
        from . import _pool  # late: _pool imports this module

        with self._lock:
            self.spec = spec or DeviceSpec()
            self.counters = Counters()
            self.driver_used = [0] * self.spec.count
            self.fail_next = 0
            self.fail_above: int | None = None
            self.generation = getattr(self, "generation", 0) + 1
            self._next_stream_ptr = 0x7F00_0000
        self._tls = threading.local()
        self.pools = [_pool.SingleDeviceMemoryPool(self, d) for d in range(self.spec.count)]
        self.pinned = _pool.PinnedMemoryPool(self)

    # ------------------------------------------------------------------ per-thread context

    def current_device(self) -> int:
        return getattr(self._tls, "device", 0)

    def set_current_device(self, device: int) -> None:
        self._tls.device = device

    def stream_stack(self) -> list:
        """This thread's stack of current streams (cupy keeps one per thread and device)."""
        stack = getattr(self._tls, "streams", None)
        if stack is None:
            stack = self._tls.streams = []
        return stack

    def new_stream_ptr(self) -> int:
        with self._lock:
            self._next_stream_ptr += 0x100
            self.counters.streams_created += 1
            return self._next_stream_ptr

    # ------------------------------------------------------------------ driver memory

    def driver_malloc(self, device: int, size: int) -> None:
        """cudaMalloc: take ``size`` bytes from the device or raise :class:`DriverOutOfMemory`."""
        with self._lock:
            free = self.spec.total_memory - self.spec.context_bytes - self.driver_used[device]
            if size > free:
                self.counters.failed_driver_mallocs += 1
                raise DriverOutOfMemory(size)
            self.driver_used[device] += size
            self.counters.driver_mallocs += 1

    def driver_free(self, device: int, size: int) -> None:
        with self._lock:
            self.driver_used[device] -= size
            self.counters.driver_frees += 1

    def mem_get_info(self, device: int) -> tuple[int, int]:
        total = self.spec.total_memory
        return max(0, total - self.spec.context_bytes - self.driver_used[device]), total

    # ------------------------------------------------------------------ events

    def take_injected_failure(self, size: int) -> bool:
        """Whether an injected out-of-memory fault hits this allocation (consumes one)."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return self.fail_above is not None and size > self.fail_above

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self.counters, name, getattr(self.counters, name) + amount)

    def transfer(self, direction: str, nbytes: int) -> None:
        """Count one host<->device copy (``direction`` is ``"h2d"`` or ``"d2h"``)."""
        with self._lock:
            c = self.counters
            if direction == "h2d":
                c.h2d_transfers += 1
                c.h2d_bytes += int(nbytes)
            else:
                c.d2h_transfers += 1
                c.d2h_bytes += int(nbytes)

    def sync(self, reason: str) -> None:
        """Count one point where the host waits for the device."""
        with self._lock:
            self.counters.syncs += 1
            self.counters.sync_reasons[reason] += 1

    def pool_watermarks(self, total: int, used: int) -> None:
        with self._lock:
            c = self.counters
            c.peak_pool_bytes = max(c.peak_pool_bytes, total)
            c.peak_used_bytes = max(c.peak_used_bytes, used)


MODEL = Model()
