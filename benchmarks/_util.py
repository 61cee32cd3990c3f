"""Shared benchmark helpers: run work in a fresh process and measure wall time and peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any


def machine() -> str:
    """One line naming this machine: CPU model, cores, memory, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = "no GPU"
    try:
        from gpuseg.backend import gpu_status

        if gpu_status()[0]:
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(0)
            gpu = f"{props['name'].decode()} ({props['totalGlobalMem'] / 2**30:.0f} GiB)"
    except Exception:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {gpu}"


def own_peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM: unlike ru_maxrss, not inherited through fork+exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


class TreeSampler:
    """Sample the summed RSS of a process and all its descendants (worker processes) every 20 ms."""

    def __init__(self, pid: int):
        import threading

        import psutil

        self.peak = 0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _child(queue, func, args, kwargs):
    t0 = time.perf_counter()
    try:
        result = func(*args, **kwargs)
        error = None
    except BaseException as exc:  # report, don't hang the parent
        result, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    queue.put((seconds, own_peak_rss(), result, error))


def peak_rss_of(func: Callable, *args: Any, **kwargs: Any) -> tuple[float, int, Any]:
    """Run ``func(*args, **kwargs)`` in a fresh process; return (seconds, peak RSS bytes, result).

    Peak RSS is the larger of the process's own high-water mark and the sampled sum over it and
    its worker processes. ``func`` must be importable (module level) and its result picklable.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, args, kwargs))
    proc.start()
    sampler = TreeSampler(proc.pid)
    seconds, own, result, error = queue.get()
    proc.join()
    tree = sampler.stop()
    if error:
        raise RuntimeError(f"benchmarked function failed: {error}")
    return seconds, max(own, tree), result


def peak_rss_of_command(argv: Sequence[str]) -> tuple[float, int]:
    """Run a command; return (seconds, peak of the sampled RSS summed over it and its children)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv))
    sampler = TreeSampler(proc.pid)
    code = proc.wait()
    seconds = time.perf_counter() - t0
    peak = sampler.stop()
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}")
    return seconds, peak


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table, columns padded to width (markdown-compatible)."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt_rate(voxels: float, seconds: float) -> str:
    rate = voxels / seconds
    for unit, scale in (("GVox/s", 1e9), ("MVox/s", 1e6), ("kVox/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {unit}"
    return f"{rate:.0f} Vox/s"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"
