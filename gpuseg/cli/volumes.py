"""``ingest``, ``export``, ``crop`` and ``info``: moving volumes between formats.

``crop`` is :func:`gpuseg.volumes.crop` for every volume gpuseg writes, 4-D (channel, z, y, x) ones too.
``export`` of a 4-D output (probabilities, features) or a float16 one (``--prob-dtype float16``) goes
through :func:`_export_channels` here, since :func:`gpuseg.volumes.export` takes 3-D volumes of the
dtypes gpuseg computes on only; it belongs there, beside its 3-D version.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OutputError
from . import command_help, options

# The library is imported by the handlers, not here: `gpuseg ingest --help` builds without zarr or dask.
if TYPE_CHECKING:
    from ..progress import Progress


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
    from .. import volumes

    arr = volumes.ingest(args.input, args.output, voxel_size=_voxel(args.voxel_size), chunks=options.chunks_of(args),
                    overwrite=args.overwrite, progress=not args.quiet)
    print(f"{args.output}: {arr.shape} {arr.dtype}, chunks {arr.chunks}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .. import volumes

    if _beyond_volumes(args.input):
        _export_channels(args.input, args.output, overwrite=args.overwrite, progress=not args.quiet)
        print(args.output)
        return 0
    volumes.export(args.input, args.output, overwrite=args.overwrite, progress=not args.quiet)
    print(args.output)
    return 0


def _crop(args: argparse.Namespace) -> int:
    from .. import volumes

    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    arr = volumes.crop(args.input, args.output, size=size, start=args.start, chunks=options.chunks_of(args),
                  overwrite=args.overwrite, progress=not args.quiet)
    print(f"{args.output}: {arr.shape} {arr.dtype}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..io.summary import summary

    s = summary(args.input, progress=not args.quiet)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    size = s["voxel_size_nm"]
    print(f"{s['path']}")
    names = "(c, z, y, x)" if len(s["shape"]) == 4 else "(z, y, x)"
    print(f"  shape      {' x '.join(map(str, s['shape']))} {names}   dtype {s['dtype']}   chunks {s['chunks']}")
    print(f"  voxel size {'unknown' if size is None else ' x '.join(f'{v:g}' for v in size) + ' nm'}")
    if s["mean"] is None:
        print("  grey       no finite voxel")
    else:
        print(f"  grey       min {s['min']:g}   max {s['max']:g}   mean {s['mean']:.4g}   std {s['std']:.4g}"
              + ("   (finite voxels only)" if s["nonfinite"] else ""))
    if "channel_means" in s:
        print(f"  channels   means {'   '.join(f'{v:.4g}' for v in s['channel_means'])}")
    if s.get("levels"):
        count = len(s["levels"])
        print(f"  OME-Zarr   {count} level{'s' if count != 1 else ''}: "
              + ", ".join("x".join(map(str, lv["shape"][-3:])) for lv in s["levels"]))
    if s["nonfinite"]:
        print(f"  NaN or inf {s['nonfinite']} voxels: the other commands refuse them; replace them "
              "(e.g. numpy.nan_to_num) before segmenting")
    return 0


# --------------------------------------------------------------------------- 4-D and float16 outputs

def _beyond_volumes(path: str) -> bool:
    """An output :mod:`gpuseg.volumes` refuses: 4-D (channel, z, y, x), or float16 (probabilities, uncertainty)."""
    from ..io import info as volume_info

    vol = volume_info(path)
    return len(vol.shape) == 4 or vol.dtype == np.float16


def _export_channels(source: str, output: str, *, overwrite: bool = False, progress: bool = False) -> str:
    """Into zarr (a copy) or one OME-TIFF (pages z by z, the channels of each z together: axes ZCYX)."""
    import tifffile

    from .. import volumes
    from ..engine import outputs
    from ..io import info as volume_info
    from ..io import metadata
    from ..io.paths import check_writable_kind
    from ..io.summary import channel_slabs, check_channels
    from ..progress import Progress

    vol = volume_info(source)
    check_channels(vol)
    loc = check_writable_kind(output)
    space = vol.shape[-3:]
    if loc.kind == "zarr":
        volumes.crop(source, output, size=space, region=tuple(slice(0, n) for n in space),
                     chunks=vol.chunks[-3:] if vol.chunks else None, overwrite=overwrite, progress=progress)
        return output
    if loc.kind != "tiff":
        raise OutputError(f"{output}: {source} is {len(vol.shape)}-D {vol.dtype}; export it to one .tif or to .zarr")
    size = metadata.voxel_size(vol.attrs)
    physical = {f"PhysicalSize{a}": v / 1000 for a, v in zip("ZYX", size)} if size else {}  # OME-TIFF: µm

    def pages(bar: Progress) -> Iterator[np.ndarray]:
        for _, slab in channel_slabs(source, vol, (vol.chunks or (16,))[-3]):
            for z in range(slab.shape[-3]):
                yield from slab[..., z, :, :].reshape(-1, *space[1:]).astype(dtype, copy=False)
            bar.update(slab.shape[-3])

    dtype = np.dtype(np.float32) if vol.dtype == np.float16 else vol.dtype  # OME-TIFF has no float16: exact in float32

    nbytes = int(np.prod(vol.shape)) * dtype.itemsize
    shape, order = (space[0], *vol.shape[:-3], *space[1:]), "ZCYX" if len(vol.shape) == 4 else "ZYX"
    with outputs.staged(output, overwrite=overwrite, inputs=[source]) as staged, \
            Progress(space[0], f"export {output}", enabled=progress, unit="slices") as bar, \
            tifffile.TiffWriter(staged, bigtiff=nbytes >= (4 << 30) - (32 << 20), ome=True) as tif:
        tif.write(pages(bar), shape=shape, dtype=dtype, metadata={"axes": order, **physical})
    return os.fspath(output)
