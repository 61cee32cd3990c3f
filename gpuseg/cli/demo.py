"""``demo``: the main job on an embedded default."""

from __future__ import annotations

import argparse

from .. import config
from ..demo import run_demo
from . import command_help


def register(sub) -> None:
    p = sub.add_parser("demo", help=command_help("demo"),
                       description="Runs the pipeline of configs/demo.yaml (or --config) on a synthetic tomogram.")
    p.add_argument("--config", help="YAML config (default: the built-in one, as configs/demo.yaml)")
    p.add_argument("--output", help="output folder (overrides the config)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help="overrides the config")
    p.add_argument("--overwrite", action="store_true", help="replace the demo.zarr and demo.png of an earlier demo")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    cfg = config.load(args.config, config.DEMO_DEFAULTS, config.DEMO_RULES)
    if args.output:
        cfg["output"] = args.output
    if args.device:
        cfg["compute"]["device"] = args.device
    result = run_demo(cfg, overwrite=args.overwrite, progress=not args.quiet)
    print(f"phase volume fractions ({result['store']}/segmentation, Otsu threshold {result['threshold']:.1f}):")
    for phase, value in result["fractions"].items():
        print(f"  {phase:<11} {value:7.4f}   (truth {result['truth_fractions'][phase]:.4f})")
    print(f"active-material accuracy against the truth: {100 * result['accuracy']:.2f} %")
    print(f"figure: {result['figure']}")
    return 0
