"""``gpuseg demo``: a small study on a synthetic electrode, end to end, in about a minute.

Makes a synthetic electrode tomogram whose phases are known (a :mod:`gpuseg.phantom` preset,
``nmc-2`` by default), lets three simulated users segment it by a few of the reference study's
protocols, on the raw and on the Gaussian-filtered tomogram (:func:`gpuseg.study.run_study`, the
engine of ``gpuseg study``), and returns the study's report: each user's active-material volume
fraction, their spread, how much they disagree and their error against the truth. The command prints
it as a table.

Output folder (``OUTDIR``)::

    OUTDIR/phantom.zarr   raw (the synthetic CT) and truth (1 active material, 2 carbon-binder, 3 pore)
    OUTDIR/study/         the study's folder, as gpuseg study writes it: study.html, study.json,
                          study.csv, figures/, segmentations/, work/
    OUTDIR/demo.png       the tomogram, its filtered copy and one user's segmentation against the truth
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import config, phantom
from .engine import outputs
from .engine.cluster import check_scheduler
from .errors import OutputError
from .io import metadata
from .plots import save_figure, subplots

log = logging.getLogger("gpuseg")


def layout(out: str | os.PathLike[str]) -> dict[str, Path]:
    """What the demo writes into the folder ``out``: the phantom, the study's folder and the figure.

    Examples
    --------
    >>> {k: str(v) for k, v in layout("d").items()}
    {'phantom': 'd/phantom.zarr', 'study': 'd/study', 'figure': 'd/demo.png'}
    """
    out = Path(out)
    return {"phantom": out / "phantom.zarr", "study": out / "study", "figure": out / "demo.png"}


def run_demo(cfg: Mapping[str, Any] | None = None, *, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Make the phantom, run the small study on it, draw the overview figure; what was written and the report.

    Parameters
    ----------
    cfg : dict, optional
        A config like ``configs/demo.yaml`` (default: :data:`gpuseg.config.DEMO_DEFAULTS`).
    overwrite : bool
        Replace the ``phantom.zarr``, ``study/`` and ``demo.png`` of an earlier demo in the output folder
        (they are removed once everything is checked, before the new ones are made).
    progress : bool
        Progress bars and a log line per user and protocol.

    Returns
    -------
    dict
        ``report`` (the study's, as :func:`gpuseg.study.run_study` returns it), and the paths ``phantom``,
        ``raw``, ``truth``, ``study``, ``html`` and ``figure``.

    Raises
    ------
    InputError
        A config key out of its range (nothing is written).
    OutputError
        The output folder is a file, or holds an earlier demo and ``overwrite`` is false.
    """
    from .study import run_study

    cfg = config.merge(config.DEMO_DEFAULTS, cfg or {})
    config.check(cfg, config.DEMO_RULES)
    comp, study = cfg["compute"], cfg["study"]
    check_scheduler(comp["scheduler"])
    out = Path(cfg["output"])
    paths = layout(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; the demo writes a folder (phantom.zarr, study/, demo.png): "
                          "choose another output folder")
    for written in paths.values():
        outputs.check_new(written, overwrite)
    if overwrite:  # everything is checked: the earlier demo goes, so that its study folder does not resume
        for written in paths.values():
            outputs.remove(written)
    run = {"device": comp["device"], "scheduler": comp["scheduler"], "workers": comp["workers"], "progress": progress}
    store = os.fspath(paths["phantom"])
    phantom.generate(store, cfg["phantom"]["preset"], cfg["phantom"]["shape"], cfg["phantom"]["seed"],
                     chunks=comp["chunks"], voxel_size_nm=float(cfg["phantom"]["voxel_size_nm"]), **run)
    raw, truth = f"{store}/raw", f"{store}/truth"
    report = run_study(raw, paths["study"], truth=truth, protocols=study["protocols"], users=study["users"],
                       seed=study["seed"], variants=study["variants"], features=study["features"],
                       trees=study["trees"], figures=True, chunks=comp["chunks"], **run)
    log.info("drawing %s", paths["figure"])
    _figure(report, os.fspath(paths["study"]), raw, truth, paths["figure"], comp, cfg["phantom"]["preset"])
    return {"report": report, "phantom": store, "raw": raw, "truth": truth, "study": os.fspath(paths["study"]),
            "html": os.fspath(paths["study"] / "study.html"), "figure": os.fspath(paths["figure"])}


def summary(report: Mapping[str, Any]) -> list[str]:
    """Lines that read the study's table: the truth's active fraction, and which variant and protocol gave the
    smallest and the largest spread, share of differing voxels and (with a truth) mean accuracy.

    Examples
    --------
    >>> r = {"truth_fractions": {"fractions": {"1": 0.5}}, "results": [
    ...     {"variant": "raw", "protocol": "S2", "active_fraction_std": 0.04, "mean_pairwise_percent": 5.0,
    ...      "users": [{"accuracy": 0.9}, {"accuracy": 0.8}]},
    ...     {"variant": "filtered", "protocol": "cWS", "active_fraction_std": 0.01, "mean_pairwise_percent": 1.0,
    ...      "users": [{"accuracy": 0.95}, {"accuracy": 0.97}]}]}
    >>> print("\\n".join(summary(r)))
    truth's active-material fraction: 0.5000
    spread of the active fraction across users (std): smallest filtered cWS 0.0100, largest raw S2 0.0400
    voxels two users label differently (mean %): fewest filtered cWS 1.000, most raw S2 5.000
    mean accuracy against the truth: best filtered cWS 0.9600, worst raw S2 0.8500
    """
    results = report["results"]
    lines = []
    truth = (report.get("truth_fractions") or {}).get("fractions", {}).get("1")
    if truth is not None:
        lines.append(f"truth's active-material fraction: {truth:.4f}")

    def mean_accuracy(res: Mapping[str, Any]) -> float | None:
        found = [u["accuracy"] for u in res["users"] if u.get("accuracy") is not None]
        return sum(found) / len(found) if found else None

    # (what, its value per row, format, the word for the better end, for the worse end, whether larger is better)
    for what, value, fmt, good, bad, larger in (
            ("spread of the active fraction across users (std)", lambda r: r["active_fraction_std"], ".4f",
             "smallest", "largest", False),
            ("voxels two users label differently (mean %)", lambda r: r["mean_pairwise_percent"], ".3f",
             "fewest", "most", False),
            ("mean accuracy against the truth", mean_accuracy, ".4f", "best", "worst", True)):
        found = [(v, r) for r in results if (v := value(r)) is not None]
        if len(found) > 1:
            low, high = min(found, key=lambda f: f[0]), max(found, key=lambda f: f[0])
            better, worse = (high, low) if larger else (low, high)
            lines.append(f"{what}: {good} {better[1]['variant']} {better[1]['protocol']} {better[0]:{fmt}}, "
                         f"{bad} {worse[1]['variant']} {worse[1]['protocol']} {worse[0]:{fmt}}")
    return lines


def shown(report: Mapping[str, Any]) -> tuple[str, str, str]:
    """The segmentation ``demo.png`` shows: ``(variant, protocol, user)``: the first user's S2 (their own threshold)
    of the filtered tomogram, else the first protocol and variant the study ran.

    Examples
    --------
    >>> shown({"results": [{"variant": "raw", "protocol": "gWS", "users": [{"user": "u1"}]}]})
    ('raw', 'gWS', 'u1')
    """
    results = report["results"]
    variant = "filtered" if any(r["variant"] == "filtered" for r in results) else results[0]["variant"]
    mine = [r for r in results if r["variant"] == variant]
    res = next((r for r in mine if r["protocol"] == "S2"), mine[0])
    return variant, res["protocol"], res["users"][0]["user"]


def _figure(report: Mapping[str, Any], study: str, raw: str, truth: str, path: str | os.PathLike[str],
            compute: Mapping[str, Any], preset: str = "") -> None:
    """Central z slices of the raw and filtered tomogram, one user's segmentation (:func:`shown`), the truth and
    where the two differ, and the histogram with that user's threshold. Only those slices and the histogram's
    one pass are read."""
    from matplotlib.patches import Patch

    from .io.slices import read_slices
    from .metrics import difference_block
    from .plots import DIFF_COLOURS, class_handles, draw_histogram, draw_slice, grey_range
    from .segment.threshold import histogram

    variant, protocol, user = shown(report)
    res = next(r for r in report["results"] if r["variant"] == variant and r["protocol"] == protocol)
    seg = os.path.join(study, next(u["path"] for u in res["users"] if u["user"] == user))
    decided = next(u["decisions"][variant] for u in report["users"] if u["user"] == user)
    filtered = os.path.join(study, "filtered.zarr")
    greys = {"raw": raw, **({"filtered": filtered} if os.path.exists(filtered) else {})}
    views = {name: read_slices(p, axes=(0,)) for name, p in {**greys, "segmentation": seg, "truth": truth}.items()}
    first = views["raw"]
    shape, z, voxel = first.shape, first.indices[0], first.voxel_size
    fig, ax = subplots(2, 3, figsize=(12, 7.6), layout="constrained")
    sigma = views["filtered"].attrs.get("sigma") if "filtered" in views else None
    titles = {"raw": "tomogram (synthetic CT)",
              "filtered": f"Gaussian filtered, σ = {sigma[0]:g} voxel" if sigma else "Gaussian filtered"}
    for a, name in zip(ax[0, :2], greys):
        image = views[name].images[0]
        art = draw_slice(a, image, axis=0, index=z, shape=shape, voxel_size=voxel, grey_range=grey_range([image]),
                         title=titles[name])
        fig.colorbar(art, ax=a, shrink=0.8, pad=0.02).set_label("grey value", fontsize=8)
    if len(greys) == 1:
        ax[0, 1].set_axis_off()
    for a, name, text in ((ax[1, 0], "segmentation", f"{user}'s {protocol} segmentation ({variant})"),
                          (ax[1, 1], "truth", "truth (phantom labels)")):
        view = views[name]
        draw_slice(a, view.images[0], axis=0, index=z, shape=shape, voxel_size=voxel, kind="labels", title=text)
        named = metadata.label_names(view.values(), view.attrs)
        a.legend(handles=class_handles({v: [n] for v, n in named.items()}), loc="upper center",
                 bbox_to_anchor=(0.5, -0.06), ncols=3, fontsize=7, frameon=False)
    diff = np.asarray(difference_block(views["segmentation"].images[0], views["truth"].images[0], phase=1))
    draw_slice(ax[1, 2], diff, axis=0, index=z, shape=shape, voxel_size=voxel, kind="difference",
               title=f"segmentation − truth: {100 * np.mean(diff != 0):.1f} % differ")
    ax[1, 2].legend(handles=[Patch(color=DIFF_COLOURS[1], label="only the segmentation is active"),
                             Patch(color=DIFF_COLOURS[-1], label="only the truth is active")],
                    loc="upper center", bbox_to_anchor=(0.5, -0.06), fontsize=7, frameon=False)
    # as the study computed it (same chunks): the histogram the user read their threshold off
    counts, centers = histogram(greys[variant], chunks=compute.get("chunks"), device="cpu", scheduler=compute.get("scheduler"),
                                workers=compute.get("workers"))
    draw_histogram(ax[0, 2], counts, centers, thresholds={user: decided["threshold"]},
                   xlabel=f"grey value ({variant})")
    ax[0, 2].set_title(f"histogram of the {variant} tomogram", fontsize=8)
    ax[0, 2].xaxis.label.set_size(8), ax[0, 2].yaxis.label.set_size(8)
    size = f", voxel {voxel[2]:g} nm" if voxel else ""
    fig.suptitle(f"gpuseg demo: {' × '.join(map(str, shape))} synthetic electrode{f' ({preset})' if preset else ''}{size}: one simulated user's "
                 f"segmentation against the truth (the whole study: study/study.html)", fontsize=10)
    save_figure(fig, path, dpi=90)
