"""Figures of the study: grey histogram with thresholds, orthoslices with differences, variability bars.

Every function reads only what it draws (a histogram, three central slices), so it works on
volumes of any size, and writes a PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PHASE_COLOURS = {0: (0, 0, 0, 0), 1: (0.89, 0.35, 0.13, 0.55), 2: (0.2, 0.45, 0.85, 0.35), 3: (0.3, 0.75, 0.3, 0.35)}


def save_figure(fig: Any, path: str | os.PathLike, **options: Any) -> None:
    """Save ``fig`` through a hidden sibling, replacing ``path`` only once the file is complete."""
    from .engine import outputs

    with outputs.staged(path, overwrite=True) as tmp:
        fig.savefig(tmp, format=os.path.splitext(os.fspath(path))[1].lstrip(".") or "png", **options)


def subplots(*args: Any, figsize: tuple[float, float] | None = None, dpi: float | None = None, **kwargs: Any) -> Any:
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot: no global backend is chosen or changed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(*args, **kwargs)


def histogram_figure(
    counts: np.ndarray,
    centers: np.ndarray,
    path: str | os.PathLike,
    *,
    thresholds: Mapping[str, float] | Sequence[float] = (),
    window: tuple[float, float] | None = None,
    title: str = "",
) -> str:
    """Grey-value histogram with the chosen threshold(s) as lines and a watershed window shaded.

    Parameters
    ----------
    counts, centers : arrays
        From :func:`gpuseg.segment.threshold.histogram`.
    path : path
        PNG to write.
    thresholds : mapping name → value, or values
    window : (low, high), optional

    Returns
    -------
    str
        ``path``.
    """
    named = dict(thresholds) if isinstance(thresholds, Mapping) else {f"t{i + 1}": t for i, t in enumerate(thresholds)}
    fig, ax = subplots(figsize=(6.4, 3.6))
    width = float(np.median(np.diff(centers))) if len(centers) > 1 else 1.0
    ax.bar(centers, counts, width=width, color="0.35", linewidth=0)
    if window is not None:
        ax.axvspan(window[0], window[1], color="C1", alpha=0.25, label=f"window [{window[0]:g}, {window[1]:g}]")
    for i, (name, t) in enumerate(named.items()):
        ax.axvline(t, color=f"C{(i + 3) % 10}", lw=1.5, label=f"{name} = {t:g}")
    ax.set_xlabel("grey value"), ax.set_ylabel("voxels")
    if named or window is not None:
        ax.legend(frameon=False, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return os.fspath(path)


def central_slices(volume: Any) -> list[np.ndarray]:
    """The central z, y and x slices of a volume (path or array), reading only those."""
    from .engine import is_path

    if is_path(volume):
        from .io.paths import parse

        if parse(volume).kind == "zarr":
            from .io import open_array

            volume = open_array(volume)
        else:  # other formats: read them through numpy (small volumes only)
            from .io.volume import iter_slabs

            volume = np.concatenate([s for _, s in iter_slabs(volume, 64)])
    z, y, x = (n // 2 for n in volume.shape)
    return [np.asarray(volume[z]), np.asarray(volume[:, y]), np.asarray(volume[:, :, x])]


def _overlay(labels: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*labels.shape, 4))
    for value, colour in PHASE_COLOURS.items():
        rgba[labels == value] = colour
    return rgba


def orthoslices_figure(
    segmentations: Sequence[Any],
    path: str | os.PathLike,
    *,
    grey: Any = None,
    names: Sequence[str] | None = None,
    phase: int = 1,
) -> str:
    """The study's Fig. 1: central orthoslices of each segmentation and every pairwise difference.

    One row per segmentation (overlaid on ``grey`` if given), then one row per pair A−B
    of the ``phase`` (red: only A has it, blue: only B), for the central z, y, x slices.

    Returns
    -------
    str
        ``path``.
    """
    from .metrics import difference_block

    names = list(names or [f"S{i + 1}" for i in range(len(segmentations))])
    segs = [central_slices(s) for s in segmentations]
    base = central_slices(grey) if grey is not None else None
    pairs = list(itertools.combinations(range(len(segs)), 2))
    rows = len(segs) + len(pairs)
    fig, axes = subplots(rows, 3, figsize=(9, 2.9 * rows), squeeze=False)
    for r, (name, views) in enumerate(zip(names, segs)):
        for c, view in enumerate(views):
            ax = axes[r, c]
            if base is not None:
                ax.imshow(base[c], cmap="gray")
            ax.imshow(_overlay(view) if base is not None else view, cmap=None if base is not None else "viridis",
                      interpolation="nearest")
            ax.set_title(f"{name}: {'zyx'[c]} = centre", fontsize=8)
    for r, (i, j) in enumerate(pairs, start=len(segs)):
        for c in range(3):
            d = difference_block(segs[i][c], segs[j][c], phase=phase)
            ax = axes[r, c]
            ax.imshow(d, cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(f"{names[i]} − {names[j]} ({100 * np.mean(d != 0):.1f} % differ)", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return os.fspath(path)


def variability_figure(reports: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, *, phase: int = 1) -> str:
    """The study's Fig. 3: per method, the phase fraction of each user, its std, and pairwise differences.

    Parameters
    ----------
    reports : mapping method name → report of :func:`gpuseg.metrics.compare`
    path : path
        PNG to write.

    Returns
    -------
    str
        ``path``.
    """
    key = str(phase)
    methods = list(reports)
    fig, (ax_f, ax_s, ax_d) = subplots(1, 3, figsize=(12, 3.8))
    truth = None
    for m, method in enumerate(methods):
        rep = reports[method]
        fr = [s["fractions"].get(key) or 0.0 for s in rep["segmentations"]]
        n = len(fr)
        xs = m + (np.arange(n) - (n - 1) / 2) * (0.8 / max(n, 1))
        ax_f.bar(xs, fr, width=0.8 / max(n, 1), color=[f"C{i}" for i in range(n)], edgecolor="k", lw=0.3)
        ax_s.bar(m, rep["fraction_std"].get(key) or 0.0, color="0.4")
        ax_d.bar(m, rep.get("mean_pairwise_percent") or 0.0, color="0.4")
        if "truth" in rep:
            truth = rep["truth"]["fractions"].get(key)
    if truth is not None:
        ax_f.axhline(truth, color="k", ls="--", lw=1, label=f"truth {truth:.3f}")
        ax_f.legend(frameon=False, fontsize=8)
    for ax, label in ((ax_f, f"phase {phase} volume fraction per user"), (ax_s, "std across users (n − 1)"),
                      (ax_d, "mean pairwise differing voxels (%)")):
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return os.fspath(path)
