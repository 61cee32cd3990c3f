"""``study``: the reference study's protocols run by simulated users on a tomogram, and their spread."""

from __future__ import annotations

import argparse
import os

from ..backend import DEVICES
from ..errors import ParameterError
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser(
        "study", help=command_help("study"),
        description="Simulated users segment TOMOGRAM by every protocol of the reference study (thresholds S1/S2/S3, "
                    "watersheds gWS/cWS, random forests ML1-ML3 and MLX<coverage>), on the raw and the Gaussian-filtered "
                    "tomogram; reports each user's active-material fraction, their spread, how much they disagree and, "
                    "with --truth, their error, as OUTDIR/study.json, study.csv and study.html. Rerun the same command "
                    "to resume an interrupted study. Options given override those of --config.")
    p.add_argument("tomogram", nargs="?", help="grey-value volume: .tif, folder of slices, .h5/dataset, .npy or .zarr/array")
    p.add_argument("outdir", nargs="?", help="a new or empty folder (or this very study's, to resume)")
    p.add_argument("--config", metavar="YAML", help="a study config (keys as these options; see docs/study.md)")
    p.add_argument("--truth", metavar="T", help="truth labels (1 active material): scores each user; the annotators' judgement")
    p.add_argument("--protocols", metavar="LIST",
                   help="comma-separated: S (= S1,S2,S3), S1, S2, S3, gWS, cWS, ML1, ML2, ML3, MLX<percent> "
                        "(default: S,gWS,cWS,ML1,ML2,ML3,MLX10,MLX25)")
    p.add_argument("--users", type=int, help="simulated users, at least 2 (default 3, as the study)")
    p.add_argument("--seed", type=int, help="the study's seed: same seed, same bytes (default 0)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--raw-only", action="store_true", help="only the raw tomogram (default: raw and filtered)")
    which.add_argument("--filtered-only", action="store_true", help="only the Gaussian-filtered tomogram (sigma 1.1, factor 2)")
    p.add_argument("--features", help="random-forest features (default: default; see gpuseg train)")
    p.add_argument("--trees", type=options.positive_int, metavar="N",
                   help="trees per forest (default: grown and sized by the data, as gpuseg train)")
    p.add_argument("--no-figures", action="store_true", help="no figures and no study.html (JSON and CSV only)")
    p.add_argument("--device", choices=DEVICES, help="where to compute (default: auto)")
    p.add_argument("--scheduler", "--cluster", dest="scheduler",
                   help="synchronous, threads (default), processes, local, local-cuda, or tcp://HOST:PORT")
    p.add_argument("--workers", type=options.positive_int, help="parallel workers (default: all cores)")
    p.add_argument("--chunks", type=options.positive_int, nargs="+", metavar="N",
                   help="chunk edge or z y x of every output (default: the tomogram's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(handler=_study, overwrite=False)


def _settings(args: argparse.Namespace) -> dict:
    """The config (or the defaults) with every option given on the command line laid over it."""
    from ..study import settings

    cfg = settings.load(args.config)
    for key in ("tomogram", "outdir", "truth", "protocols", "users", "seed", "features", "trees"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.raw_only or args.filtered_only:
        cfg["variants"] = ["raw"] if args.raw_only else ["filtered"]
    if args.no_figures:
        cfg["figures"] = False
    for key in ("device", "scheduler", "workers"):
        if getattr(args, key) is not None:
            cfg["compute"][key] = getattr(args, key)
    if args.chunks is not None:
        cfg["compute"]["chunks"] = options.chunks_of(args)
    if not cfg["tomogram"] or not cfg["outdir"]:
        raise ParameterError("give TOMOGRAM and OUTDIR (or tomogram: and outdir: in the --config file)")
    return cfg


def _study(args: argparse.Namespace) -> int:
    from ..study import run_study
    from ..study.report import render

    cfg = _settings(args)
    compute = cfg["compute"]
    checked = argparse.Namespace(scheduler=compute["scheduler"], workers=compute["workers"], chunks=None, overwrite=False,
                                 quiet=args.quiet)
    options.compute_kwargs(checked)  # the scheduler and workers, checked before anything is read
    chunks = compute["chunks"]
    report = run_study(cfg["tomogram"], cfg["outdir"], truth=cfg["truth"], protocols=cfg["protocols"], users=cfg["users"],
                       seed=cfg["seed"], variants=cfg["variants"], features=cfg["features"], trees=cfg["trees"],
                       figures=cfg["figures"], device=compute["device"],
                       chunks=tuple(chunks) if isinstance(chunks, list) else chunks, scheduler=compute["scheduler"],
                       workers=compute["workers"], progress=not args.quiet)
    print(render(report))
    written = ["study.json", "study.csv", *(["study.html"] if cfg["figures"] else [])]
    print(f"wrote {', '.join(os.path.join(cfg['outdir'], w) for w in written)}")
    return 0
