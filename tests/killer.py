"""Run the gpuseg CLI in this process and die like a killed process at a chosen fault point.

``python -m tests.killer POINT N CLI-ARGS...``: exit with status 137 at the N-th time the
engine passes fault point POINT (e.g. ``block:marked``, ``commit:exchanged``), before any
cleanup runs; ``--one-block-per-chunk`` first makes every work block one chunk;
``--in-workers`` arms the point in each worker process of a dask.distributed cluster
(``--scheduler local`` or an address) instead of this process: every worker dies there;
``--pause S`` sleeps S seconds at each pass of POINT from the N-th on instead of exiting (a slow
run, to be interrupted while it computes).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: the cwd for `python -m tests.killer`


class Killed(BaseException):
    """Stands for a kill inside this process: not an Exception, so nothing on the way catches it."""


def _die() -> None:
    os._exit(137)


def _raise() -> None:
    raise Killed


def install(point: str, count: int, kill=_die) -> None:
    """Stop the run (``kill``: exit at once, or raise :class:`Killed`) the ``count``-th time it passes ``point``."""
    from gpuseg.engine import faults

    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] >= count:
                kill()

    faults.hook = hook


def arm(point: str, count: int) -> None:
    """:func:`install` for an in-process test: raise :class:`Killed` instead of exiting."""
    install(point, count, _raise)


def arm_workers(point: str, count: int, kill=_die) -> None:
    """:func:`install` in every worker process of the distributed clusters runs start, restarted ones
    included, through a worker plugin registered when the run's client opens."""
    import contextlib

    from distributed.diagnostics.plugin import WorkerPlugin

    from gpuseg.engine import clients

    class Arm(WorkerPlugin):
        name = "tests.killer"

        def setup(self, worker):
            install(point, count, kill)

    opened = clients.client

    @contextlib.contextmanager
    def client(scheduler, workers):
        with opened(scheduler, workers) as c:
            c.register_plugin(Arm())
            yield c

    clients.client = client


def main(argv: list[str]) -> int:
    point, count, *rest = argv
    in_workers, kill = False, _die
    while rest and rest[0] in ("--one-block-per-chunk", "--in-workers", "--pause"):
        flag, rest = rest[0], rest[1:]
        if flag == "--one-block-per-chunk":
            from gpuseg.engine import plan

            plan.HOST_BLOCK_BYTES = 1
        elif flag == "--in-workers":
            in_workers = True
        else:
            kill, rest = functools.partial(time.sleep, float(rest[0])), rest[1:]
    if in_workers:
        arm_workers(point, int(count), kill)
    else:
        install(point, int(count), kill)
    from gpuseg.cli import main as cli

    return cli(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
