"""``interval``: the active-material fraction of a forest's probabilities and the interval one user can report."""

from __future__ import annotations

import argparse
import json

from . import command_help, options


def register(sub) -> None:
    from ..study import defaults

    p = sub.add_parser(
        "interval", help=command_help("interval"),
        description="Reads the per-class probabilities `gpuseg predict --probabilities` wrote, one chunk at a time, "
                    "and prints the active-material fraction of the prediction with an interval: the fractions the "
                    "same forest gives when its decision threshold on p(active) moves by ±DELTA, widened WIDEN times "
                    "around the fraction (WIDEN calibrated so that other simulated users' fractions fall inside about "
                    "90 % of the time; docs/study.md, 'Uncertainty one user can report').")
    p.add_argument("probabilities", help="probabilities (class, z, y, x), uint8 or float: a zarr array or .npy")
    p.add_argument("--delta", type=float, default=defaults.DELTA,
                   help=f"threshold shift in p(active) that makes a voxel undecided, 0 to 0.5 (default: {defaults.DELTA:g})")
    p.add_argument("--widen", type=float, default=defaults.WIDEN,
                   help=f"times the threshold interval is widened, 1 = not at all (default: {defaults.WIDEN:g}, calibrated)")
    p.add_argument("--classes", type=int, nargs="+", metavar="C",
                   help="class value of each channel (default: the classes gpuseg predict stored with them)")
    p.add_argument("--active", type=int, default=defaults.ACTIVE, help="class value of active material (default: 1)")
    p.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    options.add_compute(p, device=False)
    p.set_defaults(handler=_interval)


def describe(name: str, found) -> str:
    """One line: the fraction, its interval and how it was made.

    Examples
    --------
    >>> from gpuseg.study.uncertainty import FractionInterval
    >>> print(describe("p.zarr", FractionInterval(0.5, 0.48, 0.53, 0.25, 2.0, 0.505, 1000)))
    p.zarr: active-material fraction 0.5000, interval 0.4800 to 0.5300 (p(active) threshold 0.5 ± 0.25, widened 2 times); mean p(active) 0.5050
    """
    return (f"{name}: active-material fraction {found.fraction:.4f}, interval {found.low:.4f} to {found.high:.4f} "
            f"(p(active) threshold 0.5 ± {found.delta:g}, widened {found.widen:g} times); "
            f"mean p(active) {found.soft_fraction:.4f}")


def _interval(args: argparse.Namespace) -> int:
    from ..engine import outputs
    from ..study import uncertainty

    if args.json:
        options.check_outputs([args.json], [args.probabilities], args.overwrite)
    kw = options.compute_kwargs(args)
    found = uncertainty.active_fraction_interval(args.probabilities, delta=args.delta, widen=args.widen,
                                                 classes=args.classes,
                                                 active=args.active, chunks=kw["chunks"], scheduler=kw["scheduler"],
                                                 workers=kw["workers"], progress=kw["progress"])
    print(describe(args.probabilities, found))
    if args.json:
        with outputs.staged(args.json, overwrite=args.overwrite) as tmp, open(tmp, "w") as f:
            json.dump({"probabilities": args.probabilities, **found.to_dict()}, f, indent=2)
    return 0
