"""Options shared by the commands that compute or write."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

from .. import validate
from ..backend import DEVICES
from ..errors import OutputError, ParameterError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def add_compute(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    """``--device --scheduler --workers --chunks --overwrite --quiet``."""
    if device:
        parser.add_argument("--device", choices=DEVICES, default="auto", help="where to compute (default: auto)")
    parser.add_argument(
        "--scheduler", "--cluster", dest="scheduler", default="threads",
        help="synchronous, threads (default), processes, local (a LocalCluster), local-cuda (dask-cuda: one worker "
             "per GPU), or a scheduler address tcp://HOST:PORT",
    )
    parser.add_argument("--workers", type=positive_int, default=None, help="parallel workers (default: all cores)")
    add_output(parser)


def add_output(parser: argparse.ArgumentParser) -> None:
    """``--chunks --overwrite --quiet``."""
    parser.add_argument(
        "--chunks", type=positive_int, nargs="+", metavar="N", default=None,
        help="chunk edge (one number) or z y x (default: 128, or the input's chunks)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output once the new one is complete")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def chunks_of(args: argparse.Namespace):
    """The ``--chunks`` value as the API takes it (int, tuple or None)."""
    if args.chunks is None:
        return None
    if len(args.chunks) == 1:
        return args.chunks[0]
    if len(args.chunks) != 3:
        raise ParameterError("--chunks takes one number or three (z y x)")
    return tuple(args.chunks)


def compute_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments every computing API function takes, from the parsed options, their scheduler
    and workers checked before anything is read or written."""
    from ..engine import cluster  # here, not at the top: every command's --help builds without dask and zarr

    cluster.check_scheduler(args.scheduler)
    validate.workers(args.workers, cluster.default_workers(), args.scheduler)
    kwargs = dict(
        chunks=chunks_of(args), scheduler=args.scheduler, workers=args.workers,
        overwrite=args.overwrite, progress=not args.quiet,
    )
    if hasattr(args, "device"):
        kwargs["device"] = args.device
    return kwargs


def check_outputs(paths: Iterable[str | None], inputs: Iterable[str | None], overwrite: bool) -> None:
    """Before any work: every output given has its own path, is no input, and exists only with ``--overwrite``."""
    from ..engine import outputs

    given = [p for p in paths if p]
    sources = [i for i in inputs if i]
    for path in given:
        outputs.check_distinct(path, sources)
        outputs.check_new(path, overwrite)
    if len({os.path.abspath(p) for p in given}) < len(given):
        raise OutputError(f"{', '.join(given)}: every output needs its own path")
