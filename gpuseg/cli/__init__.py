"""The ``gpuseg`` command: subcommands registered by the modules of this package.

Each module ``gpuseg.cli.<topic>`` defines ``register(subparsers)``, which adds its
commands; a command's handler takes the parsed arguments and returns an exit code.
Errors a user can cause (:class:`gpuseg.errors.GpusegError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import GpusegError

COMMAND_MODULES = ("volumes", "filter", "demo", "features", "classify", "segment", "compare", "phantom", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuseg",
        description="Segment X-ray CT tomograms of battery electrodes, out of core, on CPU or GPU.",
    )
    parser.add_argument("--version", action="version", version=f"gpuseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="gpuseg: %(message)s", stream=sys.stderr
    )
    for noisy in ("distributed", "asyncio", "numcodecs", "zarr", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except GpusegError as exc:
        print(f"gpuseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpuseg {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
