"""``features``: compute an ilastik-compatible feature stack, out of core, for inspection."""

from __future__ import annotations

import argparse

from .. import featurespec
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser(
        "features", help=command_help("features"),
        description="Gaussian smoothing, LoG, gradient magnitude, DoG, structure-tensor and Hessian eigenvalues "
                    "at chosen scales, block by block with the exact halo; see docs/features.md.",
    )
    p.add_argument("input")
    p.add_argument("output", help="out.zarr or out.zarr/array (4-D: channel, z, y, x)")
    p.add_argument("--features", default="default", metavar="SPEC",
                   help="default (20 channels), ilastik-full (61 channels), or a list like "
                        "gaussian:1.0,laplacian:1.6,hessian:3.5 (default: default)")
    p.add_argument("--2d", dest="twod", action="store_true",
                   help="compute slice by slice in (y, x), as ilastik's 'compute in 2D'")
    p.add_argument("--mode", choices=featurespec.MODES, default="ilastik",
                   help="ilastik: ilastik's filter semantics (pre-smoothing, windows); plain: exact scales, "
                        "scipy.ndimage semantics (default: ilastik)")
    options.add_compute(p)
    p.set_defaults(handler=_features)


def _features(args: argparse.Namespace) -> int:
    from .. import features

    spec = features.parse_features(args.features, mode=args.mode, twod=args.twod)
    features.compute(args.input, spec, args.output, **options.compute_kwargs(args))
    print(f"{args.output}: {spec.channels} channels ({spec.mode} mode{', 2-D' if spec.twod else ''})")
    return 0
