"""``segment``: threshold (manual, S1/S2/S3), Otsu / multi-Otsu, seeded watershed, speckle removal."""

from __future__ import annotations

import argparse

from ..segment import defaults
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser("segment", help=command_help("segment"),
                       description="Two- or three-phase segmentation; uint8 out: 1 = active, 2 = non-active "
                                   "(three phases: 2 = CBD, 3 = pore), 0 = not assigned.")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)

    m = methods.add_parser("threshold", help="manual threshold(s); the study's S1/S2/S3 via --offset")
    _io(m)
    m.add_argument("--value", type=float, nargs="+", required=True, metavar="V",
                   help="one threshold (two phases: above = active) or two, low high (three phases)")
    m.add_argument("--offset", type=float, default=0.0,
                   help="added to every threshold: -10 = S1, 0 = S2, 10 = S3 (default 0)")
    _common(m)
    m.set_defaults(handler=_threshold)

    m = methods.add_parser("otsu", help="Otsu (2 classes) or multi-Otsu (3) from the global histogram")
    _io(m)
    m.add_argument("--classes", type=int, choices=(2, 3), default=2, help="2: active / non-active; 3: active / CBD / pore")
    m.add_argument("--nbins", type=options.positive_int, default=256, help="histogram bins for float volumes (default 256)")
    _common(m)
    m.set_defaults(handler=_otsu)

    m = methods.add_parser("watershed", help="seeds below --low / above --high, the window flooded over the gradient")
    _io(m)
    m.add_argument("--low", type=float, required=True, help="grey values below seed non-active (2)")
    m.add_argument("--high", type=float, required=True, help="grey values above seed active (1)")
    m.add_argument("--halo", type=options.positive_int, default=defaults.WATERSHED_HALO,
                   help=f"context voxels per block side (default {defaults.WATERSHED_HALO}: ≥ 99.9 %% agreement with a whole-volume watershed)")
    _common(m)
    m.set_defaults(handler=_watershed)

    m = methods.add_parser("speckle", help="relabel connected components of a phase smaller than --min-size voxels")
    _io(m, "segmentation")
    m.add_argument("--min-size", type=options.positive_int, required=True, metavar="N", help="components of fewer voxels go")
    m.add_argument("--phase", type=int, default=1, help="phase to clean (default 1, active material)")
    m.add_argument("--fill", type=int, default=2, help="label removed voxels get (default 2, non-active)")
    m.add_argument("--connectivity", type=int, choices=(1, 2, 3), default=1, help="1: faces (default), 2: + edges, 3: + corners")
    options.add_compute(m)
    m.set_defaults(handler=_speckle)


def _io(m: argparse.ArgumentParser, what: str = "grey-value volume") -> None:
    m.add_argument("input", help=f"{what}: .tif, folder of slices, .h5/dataset, .npy or .zarr/array")
    m.add_argument("output", help="out.zarr[/array], out.tif, or a folder of slices")


def _common(m: argparse.ArgumentParser) -> None:
    m.add_argument("--plot", metavar="PNG", help="also write the grey histogram with the threshold(s) / window marked")
    options.add_compute(m)


def _plot(args: argparse.Namespace, **marks) -> None:
    if not args.plot:
        return
    from ..plots import histogram_figure
    from ..segment import threshold

    hist = marks.pop("hist", None)
    if hist is None:
        hist = threshold.histogram(args.input, chunks=options.chunks_of(args), scheduler=args.scheduler,
                                   workers=args.workers, progress=not args.quiet)
    counts, centers = hist
    histogram_figure(counts, centers, args.plot, title=f"gpuseg segment {args.method}: {args.input} → {args.output}", **marks)
    print(f"figure: {args.plot}")


def _threshold(args: argparse.Namespace) -> int:
    from ..segment import threshold

    options.check_outputs([args.output, args.plot], [args.input], args.overwrite)
    values = [v + args.offset for v in args.value]  # in the order given: apply_thresholds refuses them unordered
    threshold.apply_thresholds(args.input, values, output=args.output, method="manual", **options.compute_kwargs(args))
    print(f"{args.output}: thresholds {', '.join(f'{v:g}' for v in values)}")
    _plot(args, thresholds={f"t{i + 1}": v for i, v in enumerate(values)})
    return 0


def _otsu(args: argparse.Namespace) -> int:
    from ..segment import threshold

    options.check_outputs([args.output, args.plot], [args.input], args.overwrite)
    compute = options.compute_kwargs(args)
    threshold.check_output(args.output, args.overwrite)
    hist = threshold.histogram(args.input, args.nbins, chunks=compute["chunks"], scheduler=args.scheduler,
                               workers=args.workers, progress=compute["progress"])
    _, values = threshold.otsu(args.input, args.classes, nbins=args.nbins, output=args.output, hist=hist, **compute)
    print(f"{args.output}: {'Otsu' if args.classes == 2 else 'multi-Otsu'} thresholds {', '.join(f'{v:g}' for v in values)}")
    _plot(args, hist=hist, thresholds={f"Otsu t{i + 1}": v for i, v in enumerate(values)})
    return 0


def _watershed(args: argparse.Namespace) -> int:
    from ..segment import watershed

    options.check_outputs([args.output, args.plot], [args.input], args.overwrite)
    watershed.check_window(args.low, args.high)
    watershed.watershed(args.input, args.low, args.high, halo=args.halo, output=args.output, **options.compute_kwargs(args))
    print(f"{args.output}: window [{args.low:g}, {args.high:g}], halo {args.halo}")
    _plot(args, window=(args.low, args.high))
    return 0


def _speckle(args: argparse.Namespace) -> int:
    from ..segment import speckle

    speckle.remove_speckles(args.input, args.min_size, phase=args.phase, fill=args.fill, connectivity=args.connectivity,
                            output=args.output, **options.compute_kwargs(args))
    print(args.output)
    return 0
