"""Run the gpuseg CLI in this process and die like a killed process at a chosen fault point.

``python -m tests.killer POINT N CLI-ARGS...``: exit with status 137 at the N-th time the
engine passes fault point POINT (e.g. ``block:marked``, ``commit:exchanged``), before any
cleanup runs; ``--one-block-per-chunk`` first makes every work block one chunk.
"""

from __future__ import annotations

import os
import sys
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


def main(argv: list[str]) -> int:
    point, count, *rest = argv
    if rest and rest[0] == "--one-block-per-chunk":
        from gpuseg.engine import plan

        plan.HOST_BLOCK_BYTES = 1
        rest = rest[1:]
    install(point, int(count))
    from gpuseg.cli import main as cli

    return cli(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
