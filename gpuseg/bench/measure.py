"""Measuring one piece of work: wall time and peak RSS in a fresh process, and where its task time goes.

* :func:`peak_rss_of` runs a module-level function in a freshly spawned process and returns
  its wall time, its peak RSS (the larger of the process's own high-water mark and the
  20 ms-sampled sum over its process tree, worker processes included) and its result;
  :func:`peak_rss_of_command` does the same for a command.
* :func:`task_phases` sums, per phase, the time of the tasks of dask reductions run under a
  local scheduler (threads or synchronous): chunk reads, and the rest. Together with
  :func:`gpuseg.engine.timing.collect` (the block engine's own phase clock) it splits a stage's
  time into I/O, transfer and compute where the tasks allow it, and says how much of the
  time could not be split.
* :func:`machine` describes this machine.

``ru_maxrss`` is not used: Linux carries it across fork+exec, so a child of a large parent
would report the parent's peak.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

SAMPLE_SECONDS = 0.02
# dask names the tasks that open a zarr array and read one of its chunks "original-from-zarr-…" and "from-zarr-…".
READ_TASK_PREFIXES = ("from-zarr-", "original-from-zarr-")
# Tasks known to compute only (sums of count vectors, dask's aggregation and finalisation steps).
COMPUTE_TASK_PREFIXES = ("_sum-", "finalize-", "asarray-")
COMPUTE_TASK_PARTS = ("-aggregate",)
# gpuseg's reduction kernel: moves a chunk to the device, reduces it, copies the counts back.
CHUNK_CALL = "_chunk_call"
# The block engine's task: its phases are timed by gpuseg.engine.timing, not here.
BLOCK_TASK = "_block_task"

def machine() -> dict[str, Any]:
    """This machine: CPU model, cores, memory, GPU if one is usable, and a one-line summary.

    Examples
    --------
    >>> m = machine()
    >>> m["cores"] >= 1 and m["memory_bytes"] > 0 and isinstance(m["summary"], str)
    True
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    gpu: str | None = None
    gpu_bytes: int | None = None
    try:
        from ..backend import gpu_status

        if gpu_status()[0]:
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(0)
            gpu, gpu_bytes = props["name"].decode(), int(props["totalGlobalMem"])
    except Exception:  # a broken CUDA install: report no GPU rather than fail the benchmark
        pass
    gpu_text = f"{gpu} ({gpu_bytes / 2**30:.0f} GiB)" if gpu and gpu_bytes is not None else "no GPU"
    return {
        "cpu": cpu, "cores": os.cpu_count() or 1, "memory_bytes": int(mem), "gpu": gpu, "gpu_memory_bytes": gpu_bytes,
        "platform": platform.platform(), "python": platform.python_version(),
        "summary": f"{cpu}, {os.cpu_count()} cores, {mem / 2**30:.0f} GiB RAM, {gpu_text}",
    }


def own_peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM: unlike ru_maxrss, not inherited through fork+exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


class TreeSampler:
    """Sample the summed RSS of a process and all its descendants (worker processes) every 20 ms."""

    def __init__(self, pid: int):
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
                total = 0
                for p in [self._proc, *self._proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a worker that just exited
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _child(queue, func, args, kwargs):
    t0 = time.perf_counter()
    try:
        result, error = func(*args, **kwargs), None
    except BaseException as exc:  # report, don't hang the parent
        result, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    queue.put((seconds, own_peak_rss(), result, error))


def peak_rss_of(func: Callable, *args: Any, **kwargs: Any) -> tuple[float, int, Any]:
    """Run ``func(*args, **kwargs)`` in a fresh process; return (seconds, peak RSS bytes, result).

    ``func`` must be importable (module level) and its result picklable.

    Raises
    ------
    RuntimeError
        ``func`` raised (the message names the exception), or the process died.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, args, kwargs))
    proc.start()
    assert proc.pid is not None  # set by start()
    sampler = TreeSampler(proc.pid)
    try:
        while True:
            try:
                seconds, own, result, error = queue.get(timeout=1.0)
                break
            except Exception:  # queue.Empty: check that the child still lives
                if not proc.is_alive():
                    raise RuntimeError(f"{func.__name__}: the process died (exit code {proc.exitcode})") from None
        proc.join()
    finally:
        tree = sampler.stop()
    if error:
        raise RuntimeError(f"{func.__name__} failed: {error}")
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


# --------------------------------------------------------------------------- task phases


def _task_name(key: Any) -> str:
    return str(key[0] if isinstance(key, tuple) else key)


def classify_task(key: Any, on_gpu: bool) -> str:
    """The phase a dask task's time belongs to: ``read``, ``compute``, ``unsplit`` or ``blocks``.

    Only tasks known to do one thing are split: chunk reads, gpuseg's reduction kernel on
    the CPU, and sums and aggregations. Everything else is ``unsplit``: a chunk read fused
    into a reduction (dask does so for min/max), a task that reads inside (training
    features), or on the GPU the reduction kernel, whose host↔device copies are not timed
    apart. ``blocks`` is the block engine's task, whose phases :mod:`gpuseg.engine.timing` times.

    Examples
    --------
    >>> classify_task(("from-zarr-abc", 0, 1, 0), on_gpu=False)
    'read'
    >>> classify_task("_chunk_call-123", on_gpu=False), classify_task("_chunk_call-123", on_gpu=True)
    ('compute', 'unsplit')
    >>> classify_task(("chunk_min-abc", 0, 0, 0), on_gpu=False), classify_task("_block_task-1", on_gpu=False)
    ('unsplit', 'blocks')
    """
    name = _task_name(key)
    if name.startswith(BLOCK_TASK):
        return "blocks"
    if name.startswith(READ_TASK_PREFIXES):
        return "read"
    if name.startswith(CHUNK_CALL):
        return "unsplit" if on_gpu else "compute"
    if name.startswith(COMPUTE_TASK_PREFIXES) or any(part in name for part in COMPUTE_TASK_PARTS):
        return "compute"
    return "unsplit"


@contextlib.contextmanager
def task_phases(on_gpu: bool = False) -> Iterator[dict[str, float]]:
    """Sum the time of every dask task run under a local scheduler while open, by :func:`classify_task`.

    A task's time runs from its submission to a free worker thread to the scheduler's
    receipt of its result (dask's local scheduler submits only when a worker is free).

    Examples
    --------
    >>> import dask
    >>> with task_phases() as totals:
    ...     _ = dask.delayed(max)(1, 2).compute(scheduler="synchronous")
    >>> totals["tasks"], sorted(totals)
    (1, ['blocks', 'compute', 'read', 'tasks', 'unsplit'])
    """
    from dask.callbacks import Callback

    totals = {"read": 0.0, "compute": 0.0, "unsplit": 0.0, "blocks": 0.0, "tasks": 0}
    started: dict[Any, float] = {}
    lock = threading.Lock()

    class _Clock(Callback):
        def _pretask(self, key, dsk, state):
            with lock:
                started[key] = time.perf_counter()

        def _posttask(self, key, result, dsk, state, worker_id):
            now = time.perf_counter()
            with lock:
                t0 = started.pop(key, None)
                if t0 is not None:
                    totals[classify_task(key, on_gpu)] += now - t0
                    totals["tasks"] += 1

    with _Clock():
        yield totals
