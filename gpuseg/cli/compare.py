"""``compare``: volume fractions, user variability and deviation from a truth, in one pass."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

from ..errors import ParameterError
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser("compare", help=command_help("compare"),
                       description="Compare K segmentations (uint8: 0 = unassigned, 1 = active, 2.. other phases) "
                                   "in one pass over their chunks, optionally against a base truth.")
    p.add_argument("segmentations", nargs="+", metavar="SEG", help="segmentations of the same volume, any format")
    p.add_argument("--truth", metavar="T", help="base truth, labelled the same way")
    p.add_argument("--names", nargs="+", metavar="NAME", help="names for the segmentations (default: their paths)")
    p.add_argument("--phases", type=options.positive_int, help="number of phases P (labels 1..P); default: from the inputs")
    p.add_argument("--two-phase", action="store_true",
                   help="count every label above 1 as non-active (2), as the study's image subtraction; "
                        "compares two-phase segmentations with a three-phase truth")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--csv", metavar="OUT", help="write the report as a long table: item, metric, phase, phase_name, value")
    p.add_argument("--plot", metavar="PNG", help="variability bar chart (the study's Fig. 3)")
    p.add_argument("--slices", metavar="PNG", help="central orthoslices and pairwise difference images (the study's Fig. 1)")
    p.add_argument("--grey", metavar="RAW", help="grey volume under the --slices overlay")
    p.add_argument("--difference", metavar="OUT.zarr",
                   help="write each pair's active-material difference volume (int8 -1/0/+1) as OUT.zarr/A-B arrays")
    options.add_compute(p)
    p.set_defaults(handler=_compare)

    p = sub.add_parser("variability", help=command_help("variability"),
                       description="The study's Fig. 3: one group of bars per method (one `gpuseg compare --json` report each).")
    p.add_argument("reports", nargs="+", metavar="REPORT.json")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="method names (default: the file names)")
    p.add_argument("--phase", type=int, default=1, help="phase whose fraction is shown (default 1, active)")
    p.add_argument("--output", required=True, metavar="PNG")
    p.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    p.set_defaults(handler=_variability)


def _check_outputs(args: argparse.Namespace) -> None:
    if args.names and len(args.names) != len(args.segmentations):
        raise ParameterError(f"--names gives {len(args.names)} names for {len(args.segmentations)} segmentations")
    if args.grey and not args.slices:
        raise ParameterError("--grey is the background of the --slices figure; give --slices PNG too, or leave it out")
    options.check_outputs([args.json, args.csv, args.plot, args.slices, args.difference],
                          [*args.segmentations, args.truth, args.grey], args.overwrite)


def _compare(args: argparse.Namespace) -> int:
    from .. import metrics

    _check_outputs(args)
    report = metrics.compare(
        args.segmentations, args.truth, phases=args.phases, two_phase=args.two_phase, names=args.names,
        chunks=options.chunks_of(args), device=args.device, scheduler=args.scheduler, workers=args.workers,
        progress=not args.quiet,
    )
    print(render(report))
    if args.json:
        _write(args.json, lambda f: json.dump(report, f, indent=2))
    if args.csv:
        _write(args.csv, lambda f: csv.writer(f).writerows([("item", "metric", "phase", "phase_name", "value"),
                                                              *rows(report)]))
    if args.plot:
        from ..plots import short_name, variability_figure

        users = ", ".join(short_name(s["name"], 20) for s in report["segmentations"])
        variability_figure({"compare": report}, args.plot,
                           title=f"gpuseg compare: variability of {users}" + (" against the truth" if args.truth else ""))
    if args.slices:
        from ..plots import orthoslices_figure

        orthoslices_figure(args.segmentations, args.slices, grey=args.grey, truth=args.truth,
                           names=[s["name"] for s in report["segmentations"]])
    if args.difference:
        for (i, a), (j, b) in itertools.combinations(enumerate(args.segmentations), 2):
            metrics.write_difference(a, b, f"{args.difference}/{i + 1}-{j + 1}", chunks=options.chunks_of(args),
                                     scheduler=args.scheduler, workers=args.workers, overwrite=args.overwrite,
                                     progress=not args.quiet)
    for path in (args.json, args.csv, args.plot, args.slices, args.difference):
        if path:
            print(f"wrote {path}")
    return 0


def _variability(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..plots import variability_figure

    options.check_outputs([args.output], args.reports, args.overwrite)
    methods = args.methods or [Path(r).stem for r in args.reports]
    if len(methods) != len(args.reports):
        raise ParameterError(f"--methods gives {len(methods)} names for {len(args.reports)} reports")
    reports = {}
    for name, path in zip(methods, args.reports):
        try:
            reports[name] = json.loads(Path(path).read_text())
            reports[name]["segmentations"], reports[name]["fraction_std"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a report of gpuseg compare --json ({type(exc).__name__}); check the path") from None
    variability_figure(reports, args.output, phase=args.phase)
    print(f"wrote {args.output}")
    return 0


def _write(path: str, dump) -> None:
    """Write via a hidden sibling, then move into place: a failure leaves no half file."""
    from ..engine import outputs

    with outputs.staged(path, overwrite=True) as tmp, open(tmp, "w", newline="") as f:
        dump(f)


def rows(report: dict):
    """The report as (item, metric, phase, phase name, value) rows; metrics of no phase leave both empty."""
    names = report.get("phase_names", {})

    def per_phase(item: str, metric: str, values: dict):
        for phase, value in values.items():
            yield item, metric, phase, names.get(phase, ""), value

    for s in report["segmentations"]:
        for metric in ("fractions", "dice", "iou", "fraction_deviation", "relative_fraction_deviation"):
            yield from per_phase(s["name"], metric.rstrip("s") if metric == "fractions" else metric, s.get(metric, {}))
        for metric in ("assigned", "accuracy"):
            if metric in s:
                yield s["name"], metric, "", "", s[metric]
    yield from per_phase("all", "fraction_std", report["fraction_std"])
    for p in report["pairs"]:
        yield f"{p['a']} | {p['b']}", "differing_percent", "", "", p["percent"]
        yield f"{p['a']} | {p['b']}", "differing_voxels", "", "", p["differing"]
    yield "all", "mean_pairwise_percent", "", "", report["mean_pairwise_percent"]
    if "truth" in report:
        yield from per_phase(report["truth"]["name"], "fraction", report["truth"]["fractions"])


def _f(value, fmt: str = ".4f") -> str:
    """A number as ``fmt`` (None: n/a); text as it is (a header)."""
    return "n/a" if value is None else value if isinstance(value, str) else format(value, fmt)


def render(report: dict) -> str:
    """A plain-text summary for the terminal: a column per phase, headed by its name."""
    phases = [str(p) for p in report["phases"]]
    names = {p: report.get("phase_names", {}).get(p, f"phase {p}") for p in phases}
    width = {p: max(8, len(names[p])) for p in phases}

    def row(label: str, fractions: dict) -> str:
        return f"{label[-32:]:<32} " + "  ".join(f"{_f(fractions[p]):>{width[p]}}" for p in phases)

    lines = [f"{report['voxels']} voxels, phases {', '.join(f'{p} {names[p]}' for p in phases)} "
             "(volume fractions exclude label 0)"]
    truth = "truth" in report
    lines.append(row("segmentation", names) + ("   accuracy  Δf1 (abs)  Δf1 (rel)" if truth else ""))
    for s in report["segmentations"]:
        line = row(s["name"], s["fractions"])
        if truth:
            line += f"   {_f(s['accuracy']):>8}  {_f(s['active_fraction_deviation'], '+.4f'):>9}  {_f(s['relative_active_fraction_deviation'], '+.2%'):>9}"
        lines.append(line)
    if truth:
        lines.append(row("truth " + report["truth"]["name"], report["truth"]["fractions"]))
    lines.append(row("std across segmentations (n-1)", report["fraction_std"]))
    for p in report["pairs"]:
        lines.append(f"differ {p['a']} | {p['b']}: {_f(p['percent'], '.3f')} % ({p['differing']} of {p['compared']} voxels)")
    if report["pairs"]:
        lines.append(f"mean pairwise difference: {_f(report['mean_pairwise_percent'], '.3f')} %")
    return "\n".join(lines)
