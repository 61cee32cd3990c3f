"""Which dask scheduler runs the work: one process, threads, processes, a local cluster, or a remote one.

``scheduler`` is one of

* ``"synchronous"`` — one task at a time in this thread (debugging, exact profiles);
* ``"threads"`` (default) — a thread pool; numpy/scipy/cupy release the GIL;
* ``"processes"`` — a process pool;
* ``"local"`` — a ``distributed.LocalCluster`` of ``workers`` single-threaded processes;
* ``"local-cuda"`` — dask-cuda's ``LocalCUDACluster``: one worker process per GPU (``workers``
  limits how many), each with twice :data:`~gpuseg.backend.GPU_BLOCKS_IN_FLIGHT` threads: half
  decode and encode chunks on the CPU while the others hold the GPU's block slots (needs
  ``pip install dask-cuda``);
* an address such as ``"tcp://10.0.0.1:8786"`` — an existing dask.distributed scheduler;
  every worker must see the same file system paths as this machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import dask
from dask.callbacks import Callback

from .backend import GPU_BLOCKS_IN_FLIGHT
from .errors import ParameterError
from .progress import Progress

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


class _TaskProgress(Callback):
    """Advance a progress bar as each named task of a local-scheduler run finishes."""

    def __init__(self, bar: Progress, keys: set):
        super().__init__()
        self._bar, self._keys = bar, keys

    def _posttask(self, key, result, dsk, state, worker_id):
        if key in self._keys:
            self._bar.update()


def local_cuda_cluster(workers: int | None) -> Any:
    """dask-cuda's ``LocalCUDACluster`` (one worker per GPU), or a clear error when dask-cuda is missing."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as exc:
        raise ParameterError(
            f"--cluster local-cuda needs dask-cuda ({exc}): pip install dask-cuda on a machine with a CUDA GPU, "
            "or use --scheduler local"
        ) from None
    return LocalCUDACluster(n_workers=workers, threads_per_worker=2 * GPU_BLOCKS_IN_FLIGHT, dashboard_address=None)


@contextlib.contextmanager
def client(scheduler: str, workers: int | None) -> Iterator[Any]:
    """A distributed client for ``local`` / ``local-cuda`` (a cluster started here) or a scheduler address."""
    from distributed import Client, LocalCluster

    if scheduler in ("local", "local-cuda"):
        if scheduler == "local":
            lc = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                              dashboard_address=None)
        else:
            lc = local_cuda_cluster(workers)
        with lc, Client(lc) as c:
            yield c
    else:
        with Client(scheduler) as c:
            yield c


def compute(
    tasks: Sequence[Any],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "blocks",
) -> list:
    """Compute dask ``tasks`` (delayed objects) under the chosen scheduler, with a progress bar.

    Returns
    -------
    list
        The tasks' results, in order.
    """
    scheduler = check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers {workers} must be at least 1")
    if not tasks:
        return []
    with Progress(len(tasks), desc, enabled=progress) as bar:
        if scheduler in LOCAL_SCHEDULERS:
            keys = {t.key for t in tasks}
            with _TaskProgress(bar, keys):
                return list(dask.compute(*tasks, scheduler=scheduler, num_workers=workers or default_workers()))
        from distributed import as_completed

        with client(scheduler, workers) as c:
            futures = c.compute(list(tasks))
            for _ in as_completed(futures):
                bar.update()
            return c.gather(futures)
