"""``filter``: 3-D Gaussian filtering, out of core."""

from __future__ import annotations

import argparse

from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser("filter", help=command_help("filter"),
                       description="Gaussian filter with scipy.ndimage semantics (mode reflect), block by block.")
    p.add_argument("input")
    p.add_argument("output", help="out.zarr[/array], out.tif, or a folder of slices")
    p.add_argument("--sigma", type=float, nargs="+", required=True, metavar="S", help="sigma in voxels (one, or z y x)")
    p.add_argument("--truncate", type=float, default=4.0, help="kernel size factor: radius = truncate * sigma (default 4)")
    options.add_compute(p)
    p.set_defaults(handler=_filter)


def _filter(args: argparse.Namespace) -> int:
    from .. import filters

    sigma = args.sigma[0] if len(args.sigma) == 1 else tuple(args.sigma)
    filters.gaussian(args.input, sigma, truncate=args.truncate, output=args.output, **options.compute_kwargs(args))
    print(args.output)
    return 0
