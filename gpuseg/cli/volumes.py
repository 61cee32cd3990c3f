"""``ingest``, ``export``, ``crop`` and ``info``: moving volumes between formats."""

from __future__ import annotations

import argparse
import json

from .. import volumes
from ..io.summary import summary
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser("ingest", help=command_help("ingest"),
                       description="Stream a volume slice by slice into a chunked, compressed zarr v3 array.")
    p.add_argument("input", help="multi-page .tif, folder of slices, file.h5/dataset, .npy or store.zarr/array")
    p.add_argument("output", help="store.zarr or store.zarr/array")
    p.add_argument("--voxel-size", type=float, nargs="+", metavar="NM", help="voxel size in nm (one, or z y x)")
    options.add_output(p)
    p.set_defaults(handler=_ingest)

    p = sub.add_parser("export", help=command_help("export"))
    p.add_argument("input")
    p.add_argument("output", help="out.tif (one multi-page file, BigTIFF over 4 GiB), a folder name, or out.zarr")
    options.add_output(p)
    p.set_defaults(handler=_export)

    p = sub.add_parser("crop", help=command_help("crop"))
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--size", type=options.positive_int, nargs="+", required=True, metavar="N", help="edge (one) or z y x")
    p.add_argument("--start", type=int, nargs=3, metavar=("Z", "Y", "X"), help="corner (default: centred)")
    options.add_output(p)
    p.set_defaults(handler=_crop)

    p = sub.add_parser("info", help=command_help("info"))
    p.add_argument("input")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_info)


def _voxel(values):
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _ingest(args: argparse.Namespace) -> int:
    arr = volumes.ingest(args.input, args.output, voxel_size=_voxel(args.voxel_size), chunks=options.chunks_of(args),
                    overwrite=args.overwrite, progress=not args.quiet)
    print(f"{args.output}: {arr.shape} {arr.dtype}, chunks {arr.chunks}")
    return 0


def _export(args: argparse.Namespace) -> int:
    volumes.export(args.input, args.output, overwrite=args.overwrite, progress=not args.quiet)
    print(args.output)
    return 0


def _crop(args: argparse.Namespace) -> int:
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    arr = volumes.crop(args.input, args.output, size=size, start=args.start, chunks=options.chunks_of(args),
                  overwrite=args.overwrite, progress=not args.quiet)
    print(f"{args.output}: {arr.shape} {arr.dtype}")
    return 0


def _info(args: argparse.Namespace) -> int:
    s = summary(args.input, progress=not args.quiet)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    size = s["voxel_size_nm"]
    print(f"{s['path']}")
    print(f"  shape      {' x '.join(map(str, s['shape']))} (z, y, x)   dtype {s['dtype']}   chunks {s['chunks']}")
    print(f"  voxel size {'unknown' if size is None else ' x '.join(f'{v:g}' for v in size) + ' nm'}")
    if s["mean"] is None:
        print("  grey       no finite voxel")
    else:
        print(f"  grey       min {s['min']:g}   max {s['max']:g}   mean {s['mean']:.4g}   std {s['std']:.4g}"
              + ("   (finite voxels only)" if s["nonfinite"] else ""))
    if s["nonfinite"]:
        print(f"  NaN or inf {s['nonfinite']} voxels: the other commands refuse them; replace them "
              "(e.g. numpy.nan_to_num) before segmenting")
    return 0
