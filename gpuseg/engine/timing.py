"""Where a block's time goes: reading, host→device transfer, compute, device→host transfer, writing.

The engine (:func:`gpuseg.engine.run.run`) times each phase of every block it processes in
this process while a :func:`collect` context is open; ``gpuseg bench`` reports the shares.
On the GPU each phase ends with a device synchronisation while collecting (kernels are
asynchronous, so an unsynchronised clock would charge compute to the next transfer); the
peak of the device memory pool is recorded too.

Examples
--------
>>> import time
>>> with collect() as totals:
...     clock = BlockClock()
...     time.sleep(0.01)
...     clock.lap("compute")
>>> totals["compute"] >= 0.01
True
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

PHASES = ("read", "to_device", "compute", "to_host", "write")
# Waiting for a free device slot (see gpuseg.engine.executor.device_slot): idle time, not part of the shares.
WAIT = "wait"

_lock = threading.Lock()
_open: list[dict[str, float]] = []


@contextlib.contextmanager
def collect() -> Iterator[dict[str, float]]:
    """Sum the phase times (seconds, over all threads) of blocks processed while open.

    The yielded dict also carries ``wait`` (seconds spent waiting for a device slot),
    ``blocks`` (count) and ``gpu_pool_peak`` (bytes held by cupy's memory pool at its highest,
    0 on the CPU).
    """
    totals = dict.fromkeys((*PHASES, WAIT), 0.0) | {"blocks": 0, "gpu_pool_peak": 0}
    with _lock:
        _open.append(totals)
    try:
        yield totals
    finally:
        with _lock:
            _open.remove(totals)


def collecting() -> bool:
    return bool(_open)


class BlockClock:
    """Laps of one block's phases; does nothing unless a :func:`collect` is open.

    Parameters
    ----------
    on_gpu : bool
        Synchronise the device before each lap and track the memory pool.
    """

    def __init__(self, on_gpu: bool = False):
        self._active = collecting()
        self._on_gpu = on_gpu and self._active
        self._t = time.perf_counter()

    def lap(self, phase: str) -> None:
        if not self._active:
            return
        pool = 0
        if self._on_gpu:
            import cupy

            cupy.cuda.get_current_stream().synchronize()
            pool = cupy.get_default_memory_pool().total_bytes()
        now = time.perf_counter()
        with _lock:
            for totals in _open:
                totals[phase] += now - self._t
                totals["gpu_pool_peak"] = max(totals["gpu_pool_peak"], pool)
        self._t = now

    def done(self) -> None:
        """Count the block (call once, after its last lap)."""
        if self._active:
            with _lock:
                for totals in _open:
                    totals["blocks"] += 1


def shares(totals: dict[str, Any]) -> dict[str, float]:
    """I/O, transfer and compute as fractions of the summed block time."""
    spent = sum(totals[p] for p in PHASES) or 1.0
    return {
        "io": (totals["read"] + totals["write"]) / spent,
        "transfer": (totals["to_device"] + totals["to_host"]) / spent,
        "compute": totals["compute"] / spent,
    }
