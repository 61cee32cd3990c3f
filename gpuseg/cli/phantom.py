"""``phantom``: a synthetic electrode tomogram with its ground truth, out of core."""

from __future__ import annotations

import argparse

from ..errors import ParameterError
from . import command_help, options


def register(sub) -> None:
    from ..phantom import PRESETS

    p = sub.add_parser(
        "phantom", help=command_help("phantom"),
        description="Writes a zarr group with 'raw' (the simulated CT tomogram) and 'truth' (1 active material, "
                    "2 carbon-binder, 3 pore), the true phase fractions and every parameter in its metadata.",
    )
    p.add_argument("output", help="out.zarr (a zarr group)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="nmc-2", help="microstructure and scan model (default nmc-2)")
    p.add_argument("--shape", type=options.positive_int, nargs=3, metavar=("Z", "Y", "X"), help="voxels (not with --labels)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--snr", type=float, help="noise level instead of the preset's (the noise sweep: 1..10)")
    p.add_argument("--labels", help="use this label volume (any format) as the truth instead of generating one")
    p.add_argument("--label-map", help="label value → phase for --labels, e.g. 0:3,1:1,2:2 (phases: 1 active, 2 CBD, 3 pore)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset parameter, e.g. psf_sigma=0.8")
    options.add_compute(p)
    p.set_defaults(handler=_phantom)


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pairs(text: str | None, sep: str, what: str) -> dict:
    out = {}
    for item in filter(None, (text or "").split(",")):
        key, eq, value = item.partition(sep)
        if not eq:
            raise ParameterError(f"{what} {item!r}: write it as KEY{sep}VALUE")
        out[key.strip()] = value.strip()
    return out


def _phantom(args: argparse.Namespace) -> int:
    from ..phantom import generate

    if (args.shape is None) == (args.labels is None):
        raise ParameterError("give either --shape Z Y X (generate a microstructure) or --labels PATH (use a label volume)")
    overrides = {k: _value(v) for item in args.set for k, v in _pairs(item, "=", "--set").items()}
    label_map = None
    if args.label_map:
        try:
            label_map = {int(k): int(v) for k, v in _pairs(args.label_map, ":", "--label-map").items()}
        except ValueError:
            raise ParameterError(f"--label-map {args.label_map!r}: use integers, e.g. 0:3,1:1,2:2") from None
    group = generate(args.output, args.preset, args.shape, seed=args.seed, snr=args.snr, labels=args.labels,
                     label_map=label_map, **options.compute_kwargs(args), **overrides)
    info = group.attrs["phantom"]
    fr = info["fractions"]
    print(f"{args.output}: raw {group['raw'].dtype} and truth {tuple(group['raw'].shape)}, preset {info['preset']}, "
          f"SNR {info['parameters']['snr']:g}, CNR {info['parameters']['cnr']:g}")
    print(f"  true fractions: active {fr['active']:.4f}, carbon-binder {fr['cbd']:.4f}, pore {fr['pore']:.4f}")
    return 0
