"""Which dask scheduler runs the work: one process, threads, processes, a local cluster, or a remote one.

``scheduler`` is one of

* ``"synchronous"`` — one task at a time in this thread (debugging, exact profiles);
* ``"threads"`` (default) — a thread pool; numpy/scipy/cupy release the GIL;
* ``"processes"`` — a process pool;
* ``"local"`` — a ``distributed.LocalCluster`` of ``workers`` single-threaded processes;
* ``"local-cuda"`` — dask-cuda's ``LocalCUDACluster``: one worker process per GPU (``workers``
  limits how many), each with twice :data:`~gpuseg.engine.plan.IN_FLIGHT` threads: half
  decode and encode chunks on the CPU while the others hold the GPU's block slots (needs
  ``pip install dask-cuda``);
* an address such as ``"tcp://10.0.0.1:8786"`` — an existing dask.distributed scheduler;
  every worker must see the same file system paths as this machine.

A distributed run's client, its bounds, its quiet logs and the one line of each of its failures
are in :mod:`gpuseg.engine.clients`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import dask
from dask.callbacks import Callback

from .. import backend, validate
from ..errors import DeviceError, GpusegError, ParameterError, RunError
from ..progress import Progress
from . import clients

log = logging.getLogger("gpuseg")

LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")
SCHEDULERS = (*LOCAL_SCHEDULERS, "local", "local-cuda")



def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_scheduler(scheduler: str | None) -> str:
    """Validate a scheduler name or address; None means ``threads``."""
    scheduler = scheduler or "threads"
    if scheduler not in SCHEDULERS and "://" not in scheduler:
        raise ParameterError(
            f"unknown scheduler {scheduler!r}: use synchronous, threads, processes, local, local-cuda, "
            "or an address like tcp://host:8786"
        )
    return scheduler


def _local_get(scheduler: str) -> Any:
    """The get function of a local scheduler, by name.

    Handed to ``dask.compute`` as a function rather than a name: given a name, dask imports
    ``distributed`` (0.2-0.5 s per process) only to look for a client that a local run never uses.
    """
    if scheduler == "synchronous":
        from dask.local import get_sync

        return get_sync
    if scheduler == "processes":
        from dask.multiprocessing import get

        return get
    from dask.threaded import get as get_threaded

    return get_threaded


class _TaskProgress(Callback):
    """Advance a progress bar as each named task of a local-scheduler run finishes."""

    def __init__(self, bar: Progress, keys: set[Any]):
        super().__init__()  # type: ignore[no-untyped-call]
        self._bar, self._keys = bar, keys

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in self._keys:
            self._bar.update()


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a run's blocks compute, decided once for the machines that run them.

    Attributes
    ----------
    device : {"cpu", "gpu"}
    free_device_memory : int
        Free bytes of the (smallest) GPU the workers use; 0 on the CPU.
    sharing : int
        Worker processes that share one GPU (each keeps its own blocks in flight).
    """

    device: str
    free_device_memory: int = 0
    sharing: int = 1


def _worker_device() -> dict[str, Any]:
    """What one worker process sees: whether its GPU works, its free memory, and which GPU it is."""
    ok, why = backend.gpu_status()
    free, ident = 0, ""
    if ok:
        free, ident = backend.free_device_memory(), backend.device_identity()
    return {"ok": ok, "why": why, "free": free, "host": socket.gethostname(), "gpu": ident}


def _decide(device: str, reports: list[dict[str, Any]], processes: int) -> Placement:
    if device not in backend.DEVICES:
        raise DeviceError(f"unknown device {device!r}: use one of auto, cpu, gpu")
    if device == "cpu":
        return Placement("cpu")
    broken = [r for r in reports if not r["ok"]]
    if broken:
        if device == "gpu":
            raise DeviceError(f"--device gpu was asked for but no GPU is usable where the work runs: {broken[0]['why']}; "
                              "use --device cpu")
        backend.log_fallback(broken[0]["why"])
        return Placement("cpu")
    per_gpu: dict[tuple[str, str], int] = {}
    for r in reports:
        per_gpu[(r["host"], r["gpu"])] = per_gpu.get((r["host"], r["gpu"]), 0) + 1
    return Placement("gpu", min(r["free"] for r in reports), max(max(per_gpu.values()), processes))


class Session:
    """A scheduler ready to run tasks, and the one place that decides where they compute."""

    def __init__(self, scheduler: str, workers: int | None, client: Any = None):
        self.scheduler, self.workers, self.client = scheduler, workers, client

    @property
    def parallelism(self) -> int:
        if self.client is not None:
            with self._failures():
                return max(1, int(sum(self.client.nthreads().values())))
        return self.workers or default_workers()

    def placement(self, device: str) -> Placement:
        """Decide CPU or GPU for ``device`` where the work runs: here, or on the cluster's workers.

        A client without a GPU can drive GPU workers; several worker processes on one GPU
        share its memory (``sharing``).
        """
        if device == "cpu":
            return Placement("cpu")
        if self.client is not None:
            with self._failures(probing=True):
                reports = list(self.client.run(_worker_device).values())
            if not reports:
                raise RunError(f"the dask scheduler at {self.scheduler} has no workers left: start some with "
                               f"`dask worker {self.scheduler}`, then rerun")
            return _decide(device, reports, 1)
        processes = (self.workers or default_workers()) if self.scheduler == "processes" else 1
        return _decide(device, [_worker_device()], processes)

    def compute(self, tasks: Sequence[Any], *, progress: bool = False, desc: str = "blocks",
                unit: str = "blocks") -> list[Any]:
        """Compute dask ``tasks`` (delayed objects), in order, with a progress bar.

        The first task to fail ends the computation (the others are cancelled); a failure of the
        machinery (scheduler lost, workers dying, a broken process pool) is one :class:`RunError`.
        """
        if not tasks:
            return []
        with Progress(len(tasks), desc, enabled=progress, unit=unit) as bar, self._failures():
            if self.client is None:
                workers = self.workers or default_workers()
                # Our own pool, so that a failure or Ctrl-C returns only once the blocks already running have
                # ended: none of them writes into an output after the run has given up (and discarded it).
                with self._local_pool(workers) as pool, _TaskProgress(bar, {t.key for t in tasks}):
                    extra = {"pool": pool} if pool is not None else {}
                    return list(dask.compute(*tasks, scheduler=_local_get(self.scheduler), num_workers=workers,
                                             **extra))
            from distributed import as_completed

            futures = self.client.compute(list(tasks))
            try:
                pending, watch = as_completed(futures), clients.Workerless(self.client)
                while not pending.is_empty():
                    batch = pending.next_batch(block=False)
                    for future in batch:
                        if future.status != "finished":
                            future.result()  # raises the task's error, or why it was cancelled
                        bar.update()
                    if not batch:
                        watch.check(self.scheduler)
                        time.sleep(0.1)
                return list(self.client.gather(futures))
            except Exception:  # the others stop too (an interrupted session closes its client anyway)
                if self.client.status == "running":
                    with contextlib.suppress(Exception):
                        self.client.cancel(futures)
                raise

    def _local_pool(self, workers: int) -> Any:
        """The executor of a ``threads`` or ``processes`` run (its exit waits for running tasks); none otherwise."""
        if self.scheduler == "threads":
            return concurrent.futures.ThreadPoolExecutor(workers)
        if self.scheduler == "processes":
            clients.quiet_resource_tracker()
            from dask.multiprocessing import get_context  # dask's own choice (spawn: fork can deadlock)

            return concurrent.futures.ProcessPoolExecutor(workers, mp_context=get_context(), initializer=clients.ignore_sigint)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _failures(self, probing: bool = False) -> Iterator[None]:
        """Errors of the scheduler, its workers or the process pool as one :class:`RunError` line
        (``probing``: while the workers report their device)."""
        try:
            yield
        except GpusegError:
            raise
        except Exception as exc:
            error = self._run_error(exc, probing)
            if error is None:
                raise
            raise error from exc

    def _run_error(self, exc: Exception, probing: bool = False) -> RunError | None:
        if isinstance(exc, BrokenProcessPool):
            return RunError(f"a worker process of the processes scheduler died (killed, or out of memory?); {clients.RESUME}, "
                            "with fewer --workers or smaller --chunks if it happens again")
        if self.client is None:
            return None
        return clients.run_error(exc, self.scheduler, self.client, probing)


@contextlib.contextmanager
def session(scheduler: str | None = None, workers: int | None = None) -> Iterator[Session]:
    """A :class:`Session` on the chosen scheduler (a cluster is started here for ``local``/``local-cuda``)."""
    scheduler = check_scheduler(scheduler)
    validate.workers(workers, default_workers(), scheduler)
    if scheduler in LOCAL_SCHEDULERS:
        yield Session(scheduler, workers)
        return
    with clients.client(scheduler, workers or default_workers() if scheduler == "local" else workers) as c:
        yield Session(scheduler, workers, c)


def compute(
    tasks: Sequence[Any],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "blocks",
) -> list[Any]:
    """Compute dask ``tasks`` (delayed objects) under the chosen scheduler, with a progress bar.

    Returns
    -------
    list
        The tasks' results, in order.
    """
    with session(scheduler, workers) as s:
        return s.compute(tasks, progress=progress, desc=desc)
