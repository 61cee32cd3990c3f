"""A dask.distributed run: its client, bounded in time, quiet, and each failure of its machinery as one line.

Every failure of the machinery ends a run within a bounded time as one
:class:`~gpuseg.errors.RunError` line, what was written staying resumable:

* a scheduler address where nothing listens: at once (``tcp://``; other addresses after
  :data:`CONNECT_TIMEOUT_S` seconds); a scheduler without workers: after :data:`WORKER_WAIT_S`;
  a local cluster that cannot start: at once;
* the scheduler lost mid-run (its process gone, its connection closed): at once, the client's
  futures being cancelled when its connection drops;
* workers that keep dying (killed, out of memory): a block whose worker died is tried on
  :data:`ALLOWED_FAILURES` more workers, then distributed gives up on it (``KilledWorker``);
  a run that has had no worker at all for :data:`NO_WORKERS_S` seconds ends; a ``processes``
  pool whose process died is broken at once.

Ctrl-C stops a run at once: the worker processes of a ``local`` cluster and of the
``processes`` pool ignore SIGINT (a terminal sends it to them too), so only this process
handles it, and closes the cluster.

**Logs.** A cluster's log lines (distributed's scheduler, nannies, workers, client) do not reach
the terminal: while a session is open, distributed's loggers in this process go nowhere, and the
worker processes log only critical lines. The dashboard is off (its HTTP server listens on a
random port, announced nowhere). With gpuseg's own logger at DEBUG (``gpuseg -v``) the cluster's
warnings and errors are shown. The errors that matter come back as one line. multiprocessing's resource tracker, started here, does not warn at exit
about the semaphores of worker processes that were killed (it still cleans them up).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

import dask

from ..errors import GpusegError, ParameterError, RunError
from .plan import IN_FLIGHT

ALLOWED_FAILURES = 2  # a block whose worker died runs on at most this many more workers
CONNECT_TIMEOUT_S = 10  # to reach a scheduler (and to reconnect to a lost one)
WORKER_WAIT_S = 30  # for a remote scheduler's first worker
NO_WORKERS_S = 60.0  # a run without any worker for this long ends
NO_WORKERS_TIMEOUT = f"{NO_WORKERS_S:.0f}s"  # the same, for the scheduler of a local cluster
WATCH_S = 2.0  # how often a distributed run looks whether it still has workers
RESUME = "what was written is kept: rerun the same command to resume"


def local_cuda_cluster(workers: int | None) -> Any:
    """dask-cuda's ``LocalCUDACluster`` (one worker per GPU), or a clear error when dask-cuda is missing."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as exc:
        raise ParameterError(
            f"--cluster local-cuda needs dask-cuda ({exc}): pip install dask-cuda on a machine with a CUDA GPU, "
            "or use --scheduler local"
        ) from None
    return LocalCUDACluster(n_workers=workers, threads_per_worker=2 * IN_FLIGHT, dashboard_address=":0")


def _verbose() -> bool:
    return logging.getLogger("gpuseg").isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def quiet_distributed() -> Iterator[None]:
    """distributed's loggers in this process (scheduler, nannies, client) go nowhere while the block runs,
    unless gpuseg logs at DEBUG; their handlers and propagation are restored afterwards."""
    if _verbose():
        yield
        return
    roots = ("distributed", "tornado", "bokeh")
    known = [name for name, logger in logging.root.manager.loggerDict.items()
             if isinstance(logger, logging.Logger) and name.split(".")[0] in roots]
    saved = []
    for name in sorted({*roots, *known}):  # distributed gives several of them their own stderr handler
        logger = logging.getLogger(name)
        if name in roots or logger.handlers or not logger.propagate:
            saved.append((logger, logger.handlers[:], logger.propagate))
            logger.handlers = [logging.NullHandler()]
            logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread: threads started meanwhile (a cluster's event loop), and the
    processes they start (its workers, also those restarted later), inherit the block, so a terminal's
    Ctrl-C, sent to the whole process group, reaches this process only."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running) without its shutdown warning about
    semaphores of worker processes that were killed: it cleans them up, and the run reports the deaths."""
    import sys
    from multiprocessing import resource_tracker

    quiet = "ignore:resource_tracker:UserWarning"
    saved = list(sys.warnoptions)
    sys.warnoptions.append(quiet)  # the tracker is started with this process's -W options
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions[:] = saved


def ignore_sigint() -> None:
    """A ``processes`` pool worker: Ctrl-C is for the process that runs the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _dask_config() -> dict[str, Any]:
    """Bounds for a distributed session: retries of a block whose worker died, connection timeouts, and
    how long a task may wait without any worker (read where the scheduler starts, so a LocalCluster's)."""
    return {
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
        "distributed.scheduler.no-workers-timeout": NO_WORKERS_TIMEOUT,
        "distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT_S}s",
    }


def _unreachable(address: str, why: str) -> RunError:
    return RunError(f"cannot reach a dask scheduler at {address} ({why}): check the address, or start one there "
                    f"with `dask scheduler` (and workers with `dask worker {address}`)")


def _probe(address: str) -> None:
    """Fail at once where nothing listens at a ``tcp://`` address (distributed would retry until its timeout)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        return  # distributed says what is wrong with it
    if scheme != "tcp" or not port:
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except ConnectionRefusedError:
        raise _unreachable(address, "nothing listens there") from None
    except OSError as exc:  # unknown host, unreachable network, time-out: one line too
        raise _unreachable(address, exc.strerror or _first_line(exc)) from None


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address`` that has at least one worker, or one RunError line."""
    from distributed import Client

    _probe(address)
    try:
        c = Client(address, timeout=CONNECT_TIMEOUT_S)
    except MemoryError:  # something that is not a dask scheduler answered: its bytes read as a huge frame
        raise _unreachable(address, "what answers there is not a dask scheduler") from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise _unreachable(address, _first_line(exc)) from None
    try:
        c.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except (OSError, TimeoutError) as exc:
        c.close()
        raise RunError(f"the dask scheduler at {address} has no workers ({_first_line(exc)}): start some with "
                       f"`dask worker {address}`") from None
    except BaseException:
        c.close()
        raise
    return c


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def client(scheduler: str, workers: int | None) -> Iterator[Any]:
    """A distributed client for ``local`` / ``local-cuda`` (a cluster started here) or a scheduler address.

    Quiet (:func:`quiet_distributed`) and bounded (:func:`_dask_config`) while it is open.
    """
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_distributed())
        stack.enter_context(dask.config.set(_dask_config()))
        if scheduler in ("local", "local-cuda"):
            quiet_resource_tracker()
            try:
                with _sigint_blocked():
                    if scheduler == "local":
                        lc = LocalCluster(n_workers=workers, threads_per_worker=1,
                                          processes=True, dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                                          silence_logs=logging.WARNING if _verbose() else logging.CRITICAL)
                    else:
                        lc = local_cuda_cluster(workers)
            except (RuntimeError, OSError, TimeoutError) as exc:
                if isinstance(exc, GpusegError):
                    raise
                raise RunError(f"could not start the {scheduler} cluster ({_first_line(exc)}); try fewer --workers, "
                               "or --scheduler threads") from exc
            stack.enter_context(lc)
            c = stack.enter_context(Client(lc))
        else:
            c = stack.enter_context(_connect(scheduler))
        yield c


class Workerless:
    """How long a distributed run has waited with no worker at all (e.g. every ``dask worker`` of a remote
    scheduler gone: its own ``no-workers-timeout`` is not ours to set); looked at every few seconds."""

    def __init__(self, client: Any):
        self.client, self.looked = client, time.monotonic()
        self.since: float | None = None

    def check(self, scheduler: str) -> None:
        now = time.monotonic()
        if now - self.looked < WATCH_S:
            return
        self.looked = now
        if self.client.nthreads():
            self.since = None
        elif self.since is None:
            self.since = now
        elif now - self.since > NO_WORKERS_S:
            raise RunError(f"the dask scheduler at {scheduler} has had no workers for {NO_WORKERS_S:.0f} s; {RESUME} "
                           f"once it has some (`dask worker {scheduler}`)")




def run_error(exc: Exception, scheduler: str, dask_client: Any, probing: bool = False) -> RunError | None:
    """A failure of a distributed run's machinery as one :class:`RunError` line; None for anything else
    (``probing``: while the workers report their device)."""
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker, NoValidWorkerError

    local = scheduler in ("local", "local-cuda")
    where = "the local cluster" if local else f"the cluster at {scheduler}"
    if isinstance(exc, KilledWorker):
        return RunError(f"workers of {where} kept dying: {1 + ALLOWED_FAILURES} died running the same block "
                        f"(killed, or out of memory?); {RESUME}, with fewer --workers or smaller --chunks if it "
                        "happens again")
    if isinstance(exc, NoValidWorkerError):
        return RunError(f"{where} has had no workers for {NO_WORKERS_TIMEOUT}; {RESUME} once it has some")
    running = dask_client.status in ("running", "newly-created")
    if probing and running and isinstance(exc, OSError):
        return RunError(f"a worker of {where} died while reporting its device; check its GPU and driver, or "
                        "use --device cpu")
    if not running or isinstance(exc, (CancelledError, CommClosedError)):
        what = "the scheduler of the local cluster stopped" if local else (
            f"lost the dask scheduler at {scheduler} (it stopped, or the network failed)")
        return RunError(f"{what}; {RESUME} once it runs again")
    return None
