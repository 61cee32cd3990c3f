"""``bench``: the end-to-end pipeline on phantoms of growing size, beside whole-array references."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import DeviceError, OutputError, ParameterError
from . import command_help

MIN_SIZE = 32
DEVICE_CHOICES = ("cpu", "gpu", "both")


def register(sub) -> None:
    from ..bench.pipeline import STAGES

    p = sub.add_parser(
        "bench", help=command_help("bench"),
        description="Times every stage out of core on phantoms of each size (each stage in a fresh process), beside "
                    "its whole-array scipy / scikit-image / scikit-learn / numpy reference where that fits in memory; "
                    "prints a table, and writes JSON and a throughput plot on request.",
    )
    # Values are checked in the handler, so that every bad value gives one line and exit code 2.
    p.add_argument("--sizes", nargs="+", default=["128", "256"], metavar="N",
                   help=f"phantom edges N (N³ voxels, N ≥ {MIN_SIZE}; default 128 256)")
    p.add_argument("--stages", nargs="+", default=list(STAGES), metavar="STAGE",
                   help=f"stages to run (with what they need): {', '.join(STAGES)} (default: all)")
    p.add_argument("--device", default=None, help="cpu, gpu or both (default: cpu, and gpu when one is usable)")
    p.add_argument("--preset", default="nmc-1", help="phantom preset (default nmc-1)")
    p.add_argument("--sigma", default="1.0", help="Gaussian sigma in voxels (default 1)")
    p.add_argument("--trees", default="100", help="random-forest trees (default 100)")
    p.add_argument("--features", default="default", help="random-forest features (default: default)")
    p.add_argument("--chunks", default=None, help="chunk edge of every zarr array (default: 128, or N/4 if smaller, at least 16)")
    p.add_argument("--workers", default=None, help="worker threads per stage (default: all cores)")
    p.add_argument("--workdir", help="folder for the data (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="leave the data in the work folder")
    p.add_argument("--json", help="write the results here (JSON)")
    p.add_argument("--plot", help="write throughput against size here (PNG)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json or --plot file")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per finished stage")
    p.set_defaults(handler=_bench)


def _positive(text: str, what: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise ParameterError(f"{what} {text!r} must be an integer of at least {minimum}")
    return value


def _devices(text: str | None) -> list[str]:
    from .. import backend

    ok, why = backend.gpu_status()
    if text is None:
        return ["cpu", "gpu"] if ok else ["cpu"]
    if text not in DEVICE_CHOICES:
        raise ParameterError(f"--device {text!r}: use cpu, gpu or both")
    if text != "cpu" and not ok:
        raise DeviceError(f"--device {text} was asked for but no GPU is usable: {why}; use --device cpu")
    return ["cpu", "gpu"] if text == "both" else [text]


def _check_output(path: str | None, option: str, suffix: str, overwrite: bool) -> None:
    if path is None:
        return
    if Path(path).is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name ending in {suffix}")
    if Path(path).exists() and not overwrite:
        raise OutputError(f"{option} {path}: already exists; pass --overwrite to replace it, or choose another file")
    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise OutputError(f"{option} {path}: its folder {parent} does not exist or is not writable")


def _bench(args: argparse.Namespace) -> int:
    from .. import bench
    from ..bench import report
    from ..phantom import PRESETS

    sizes = [_positive(s, "--sizes", MIN_SIZE) for s in args.sizes]
    bench.plan(args.stages)  # an unknown stage: one line, before any work
    if args.preset not in PRESETS:
        raise ParameterError(f"--preset {args.preset!r}: use one of {', '.join(PRESETS)}")
    try:
        sigma = float(args.sigma)
    except ValueError:
        sigma = float("nan")
    if not sigma > 0:
        raise ParameterError(f"--sigma {args.sigma!r} must be a positive number of voxels")
    trees = _positive(args.trees, "--trees")
    chunks = _positive(args.chunks, "--chunks") if args.chunks is not None else None
    workers = _positive(args.workers, "--workers") if args.workers is not None else None
    _check_output(args.json, "--json", ".json", args.overwrite)
    _check_output(args.plot, "--plot", ".png", args.overwrite)
    if args.workdir and Path(args.workdir).exists():
        taken = [f"s{n}" for n in sizes if (Path(args.workdir) / f"s{n}").exists()]
        if taken:
            raise OutputError(f"--workdir {args.workdir}: already holds {', '.join(taken)}; remove it or choose another folder")
    devices = _devices(args.device)
    from ..features import parse_features

    parse_features(args.features)  # a bad feature list: one line, before any work
    result = bench.run(sizes, args.stages, devices, preset=args.preset, sigma=sigma, trees=trees, features=args.features,
                       chunks=chunks, workers=workers, workdir=args.workdir, keep=args.keep,
                       command=" ".join(["gpuseg", *sys.argv[1:]]) if Path(sys.argv[0]).name == "gpuseg" else None,
                       say=(lambda line: None) if args.quiet else None)
    print(report.results_table(result))
    if args.json:
        report.write_json(result, args.json)
        print(f"results: {args.json}")
    if args.plot:
        report.plot(result, args.plot)
        print(f"plot: {args.plot}")
    if result.get("workdir"):
        print(f"data kept in {result['workdir']}")
    return 1 if any("error" in r for r in result["results"]) else 0
