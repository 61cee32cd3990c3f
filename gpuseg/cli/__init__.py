"""The ``gpuseg`` command: subcommands registered by the modules of this package.

Each module ``gpuseg.cli.<topic>`` defines ``register(subparsers)``, which adds its
commands; a command's handler takes the parsed arguments and returns an exit code.

Exit codes: 0 done; 2 a bad command line, input, parameter or environment, or a run that
could not go on (:class:`gpuseg.errors.GpusegError`: one line saying what to do, nothing
that existed is touched, a rerun resumes); 130 interrupted (Ctrl-C); 1 a defect of gpuseg
itself (one line; ``-v`` prints the traceback to report).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import GpusegError

log = logging.getLogger("gpuseg")

COMMANDS: dict[str, tuple[str, str]] = {  # command: the module of this package that registers it, its one line
    "ingest": ("volumes", "copy a TIFF stack / HDF5 / .npy / zarr into chunked zarr"),
    "export": ("volumes", "write a volume as .tif, a folder of slices, or zarr"),
    "crop": ("volumes", "copy a subvolume (default: centred) into zarr"),
    "info": ("volumes", "shape, dtype, chunks, voxel size and grey-value summary"),
    "filter": ("filter", "3-D Gaussian filter (float32 out)"),
    "demo": ("demo", "a small study: three simulated users segment a synthetic electrode; table, report, figures"),
    "features": ("features", "ilastik-compatible feature stack (float32, channel, z, y, x) into zarr"),
    "train": ("classify", "train a random forest on scribbles (iteratively over several annotations)"),
    "predict": ("classify", "classify every voxel with a trained model, block by block"),
    "segment": ("segment", "segment a tomogram: threshold, otsu, watershed, speckle"),
    "interval": ("interval", "the active-material fraction of a forest's probabilities and the interval one user can report"),
    "compare": ("compare", "fractions, std across users, pairwise differences, accuracy vs a truth"),
    "variability": ("compare", "bar chart of user variability per method from compare --json reports"),
    "phantom": ("phantom", "make a synthetic electrode tomogram (raw) with its truth labels"),
    "study": ("study", "the reference study's protocols run by simulated users: spread across users, error vs a truth"),
    "bench": ("bench", "benchmark ingest → filter → Otsu / watershed / random forest → compare on phantoms"),
}


def command_help(command: str) -> str:
    """The one line ``gpuseg --help`` shows for ``command``."""
    return COMMANDS[command][1]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and where its help is."""

    def error(self, message: str) -> NoReturn:
        if "required: COMMAND" in message:
            message = "choose a command (gpuseg --help lists them)"
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of ``gpuseg``. Only the module of the command ``argv`` names is imported; the others are
    listed by their one line, so ``gpuseg --help`` starts at once. A command's module imports the library in
    its handlers (the defaults its help shows come from light ``defaults`` modules and lazy packages), so
    ``gpuseg train --help`` needs numpy alone, not dask, zarr, scipy or scikit-learn."""
    parser = _Parser(
        prog="gpuseg",
        description="Segment X-ray CT tomograms of battery electrodes, out of core, on CPU or GPU.",
    )
    parser.add_argument("--version", action="version", version=f"gpuseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = COMMANDS.get(_command_word(argv) or "", ("", ""))[0]
    for name, (module, text) in COMMANDS.items():
        if module != chosen:
            sub.add_parser(name, help=text)
        elif name not in sub.choices:  # the first of its commands: its module registers them all
            importlib.import_module(f"{__name__}.{module}").register(sub)
    return parser


def _log_to_stderr(verbose: bool, quiet: bool) -> None:
    """gpuseg's own lines on stderr (``-q``: warnings only); other libraries' logs and warnings only with ``-v``.

    Their warnings (tifffile on an odd page, numpy, zarr, dask) are several lines each and say nothing a
    user acts on: what matters reaches the user as gpuseg's one line.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gpuseg: %(message)s"))
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "gpuseg_libraries", False)]
    libraries: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()  # without
    # any handler, Python's last resort would print their warnings
    libraries.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    libraries.setLevel(logging.WARNING)
    libraries.gpuseg_libraries = True  # type: ignore[attr-defined]
    root.addHandler(libraries)
    logging.captureWarnings(True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed as one line
        return int(exc.code or 0)
    _log_to_stderr(args.verbose, getattr(args, "quiet", False))
    try:
        return int(args.handler(args) or 0)
    except GpusegError as exc:
        print(f"gpuseg {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpuseg {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a defect: one line, the traceback with -v
        log.debug("the traceback of this defect:", exc_info=True)
        print(f"gpuseg {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)}; "
              f"please report it with the output of gpuseg -v and the same command", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
