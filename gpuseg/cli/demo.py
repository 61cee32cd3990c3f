"""``demo``: a small study on a synthetic electrode (the README's first command)."""

from __future__ import annotations

import argparse

from .. import config
from . import command_help


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help=command_help("demo"),
        description="Makes a small synthetic electrode tomogram with known phases, lets three simulated users segment "
                    "it by a few of the reference study's protocols (thresholds S1/S2/S3, watersheds gWS/cWS, a random "
                    "forest on painted scribbles), on the raw and the filtered tomogram, and prints how much they "
                    "disagree and how far they are from the truth. Writes OUTDIR/phantom.zarr, the study's report "
                    "OUTDIR/study/study.html (with study.json, study.csv, figures/) and OUTDIR/demo.png. About a minute "
                    "on two cores; configs/demo.yaml holds the defaults (see gpuseg study for the whole study).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("outdir", nargs="?", metavar="OUTDIR", help="output folder (default: gpuseg-demo, or output: of the config)")
    where.add_argument("--output", help=argparse.SUPPRESS)  # the earlier spelling of OUTDIR
    p.add_argument("--config", help="YAML config (default: the built-in one, as configs/demo.yaml)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help="overrides the config")
    p.add_argument("--overwrite", action="store_true", help="replace the phantom.zarr, study/ and demo.png of an earlier demo")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress; only the table and what was written")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo, summary
    from ..study.report import render

    cfg = config.load(args.config, config.DEMO_DEFAULTS, config.DEMO_RULES)
    if args.outdir or args.output:
        cfg["output"] = args.outdir or args.output
    if args.device:
        cfg["compute"]["device"] = args.device
    result = run_demo(cfg, overwrite=args.overwrite, progress=not args.quiet)
    report, study = result["report"], cfg["study"]
    print(f"gpuseg demo: {study['users']} simulated users segment a {' x '.join(map(str, cfg['phantom']['shape']))} "
          f"synthetic electrode ({cfg['phantom']['preset']}) whose phases are known; active-material volume fraction "
          "per user, their spread (std, n-1) and the voxels two users label differently:")
    print(render(report))
    for line in summary(report):
        print(line)
    print(f"report: {result['html']} (study.json, study.csv, figures/ beside it)")
    print(f"figure: {result['figure']}")
    return 0
