"""The study's figures: the users' spread per protocol, the coverage curve, the users' differences on
orthoslices, and the grey histogram with every user's thresholds and windows.

Each is built from the report and from what :mod:`gpuseg.plots` reads (a histogram, three slices),
so it works on tomograms of any size. Users keep one colour in every figure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import plots


def _colours(users: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    return {u: matplotlib.colormaps["tab10"](i % 10) for i, u in enumerate(users)}


def spread(report: Mapping[str, Any], variant: str, path: str | os.PathLike[str]) -> str:
    """The volume fraction of active material per protocol: each user's bar, the std and the disagreement."""
    reports = {res["protocol"]: res["compare"] for res in report["results"] if res["variant"] == variant}
    return plots.variability_figure(reports, path, title=f"gpuseg study, {variant} tomogram: active material per protocol")


def coverage_curve(report: Mapping[str, Any], path: str | os.PathLike[str]) -> str | None:
    """For the MLX protocols: the spread across users (and the error, with a truth) against painted coverage.

    Returns None (no figure) without an MLX protocol.
    """
    rows: dict[str, list[tuple[float, Mapping[str, Any]]]] = {}
    for res in report["results"]:
        if res["protocol"].startswith("MLX"):
            rows.setdefault(res["variant"], []).append((float(res["protocol"][3:]), res))
    if not rows:
        return None
    truth = report.get("truth") is not None
    fig, axes = plots.subplots(1, 3 if truth else 2, figsize=(11 if truth else 8, 3.6), squeeze=False,
                               layout="constrained")
    for variant, points in rows.items():
        points.sort(key=lambda p: p[0])
        x = [p[0] for p in points]
        style = {"marker": "o", "label": f"{variant} tomogram", "ls": "-" if variant == "raw" else "--"}
        axes[0, 0].plot(x, [_n(p[1]["active_fraction_std"]) for p in points], **style)
        axes[0, 1].plot(x, [_n(p[1]["mean_pairwise_percent"]) for p in points], **style)
        if truth:
            errors = [np.mean([abs(_n(u["active_fraction_error"])) for u in p[1]["users"]]) for p in points]
            axes[0, 2].plot(x, errors, **style)
    titles = ["std of the active fraction across users (n − 1)", "differing voxels per pair of users (mean %)",
              "|active fraction − truth's| (mean over users)"]
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("share of each annotated slice painted (%)")
        ax.set_xlim(0, 100)
        ax.margins(y=0.15)
    axes[0, 0].legend(fontsize=8, frameon=False)
    fig.suptitle("gpuseg study: random forests on painted scribbles (MLX) against their coverage", fontsize=10)
    plots.save_figure(fig, path, dpi=100)
    return os.fspath(path)


def _n(value: Any) -> float:
    return float("nan") if value is None else float(value)


def differences(report: Mapping[str, Any], outdir: str, variant: str, grey: str, truth: str | None,
                path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """Orthoslices of the users' segmentations of the protocol on which they differ most, and their differences.

    Returns
    -------
    (path, protocol) or None when the variant has no result.
    """
    found = [r for r in report["results"] if r["variant"] == variant and r["mean_pairwise_percent"] is not None]
    if not found:
        return None
    worst = max(found, key=lambda r: r["mean_pairwise_percent"])
    segs = [os.path.join(outdir, u["path"]) for u in worst["users"]]
    plots.orthoslices_figure(segs, path, grey=grey, truth=truth, names=[f"{u['user']} {worst['protocol']}" for u in worst["users"]])
    return os.fspath(path), worst["protocol"]


def histogram(report: Mapping[str, Any], variant: str, hist: tuple[np.ndarray, np.ndarray],
              path: str | os.PathLike[str]) -> str:
    """The grey histogram with each user's threshold (S2 solid, S1/S3 dotted), gWS window (shaded) and cWS window
    (a bar above the histogram)."""
    counts, centers = (np.asarray(a) for a in hist)
    users = [u["user"] for u in report["users"]]
    colours = _colours(users)
    fig, ax = plots.subplots(figsize=(8, 4.2), layout="constrained")
    plots.draw_histogram(ax, counts, centers)
    top = float(counts.max()) if counts.size else 1.0
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    offset = 10.0
    for k, u in enumerate(report["users"]):
        seen = u["decisions"].get(variant)
        if not seen:
            continue
        c, t = colours[u["user"]], seen["threshold"]
        ax.axvline(t, color=c, lw=1.6)
        for dt in (-offset, offset):
            ax.axvline(t + dt, color=c, lw=1.0, ls=":")
        ax.axvspan(*seen["gWS"], color=c, alpha=0.18, lw=0)
        y = top * (1.08 + 0.05 * k)
        ax.plot(seen["cWS"], [y, y], color=c, lw=3, solid_capstyle="butt")
        handles.append(Line2D([], [], color=c, lw=1.6, label=f"{u['user']}: S2 = {t:.5g}, gWS {_span(seen['gWS'])}, "
                                                             f"cWS {_span(seen['cWS'])}"))
    ax.set_ylim(0, top * (1.12 + 0.05 * len(users)))
    handles += [Line2D([], [], color="0.3", lw=1, ls=":", label="S1 / S3: S2 ∓ 10"),
                Patch(color="0.3", alpha=0.18, label="gWS window (shaded)"),
                Line2D([], [], color="0.3", lw=3, label="cWS window (bar above)")]
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper right")
    fig.suptitle(f"gpuseg study, {variant} tomogram: grey histogram and every user's thresholds and windows",
                 fontsize=10)
    plots.save_figure(fig, path, dpi=100)
    return os.fspath(path)


def _span(window: Sequence[float]) -> str:
    return f"{window[0]:.5g}–{window[1]:.5g}"


def write_all(report: Mapping[str, Any], outdir: str, images: Mapping[str, str], truth: str | None,
              hists: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, str]]:
    """Every figure of the study into ``outdir/figures``; ``(path relative to outdir, caption)`` of each."""
    folder = os.path.join(outdir, "figures")
    os.makedirs(folder, exist_ok=True)
    made: list[tuple[str, str]] = []

    def at(name: str) -> str:
        return os.path.join(folder, name)

    for variant in images:
        spread(report, variant, at(f"spread-{variant}.png"))
        made.append((f"figures/spread-{variant}.png", f"Active-material fraction per protocol on the {variant} tomogram: "
                     "each user's bar, the standard deviation across users (n − 1), the mean pairwise disagreement."))
    if coverage_curve(report, at("coverage.png")):
        made.append(("figures/coverage.png", "Spread across users (and error) of the painted-scribble forests (MLX) "
                                             "against the share of each slice painted."))
    for variant, grey in images.items():
        found = differences(report, outdir, variant, grey, truth, at(f"differences-{variant}.png"))
        if found:
            made.append((f"figures/differences-{variant}.png", f"Central orthoslices of the users' {found[1]} segmentations "
                         f"of the {variant} tomogram (the protocol on which they differ most) and each pair's differences."))
        histogram(report, variant, hists[variant], at(f"histogram-{variant}.png"))
        made.append((f"figures/histogram-{variant}.png", f"Grey histogram of the {variant} tomogram with every user's "
                     "thresholds (S1, S2, S3) and watershed windows (gWS, cWS)."))
    return made
