"""Figures of the study: grey histogram with thresholds, orthoslices with differences, variability bars.

Every figure names what it shows inside itself (a title with the method and the input), names each
user or method in a legend, keys every label class by its name (from the volume's attributes:
``phase_names`` of a threshold/watershed output, ``class_names`` of a ``gpuseg predict`` output),
gives grey images a colour bar, and gives every slice panel its axis and index ("z = 48 of 96") and,
when the voxel size is known (the ``voxel_size_nm`` attribute), a scale bar of a round length.

Every function reads only what it draws (a histogram, three slices), so it works on volumes of any
size. The ``build_*`` functions return a :class:`matplotlib.figure.Figure` (no pyplot, no global
backend); the ``*_figure`` functions build and write a PNG.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .io import metadata
from .io.slices import Slices, read_slices, volume_name

PHASE_COLOURS = {0: (0, 0, 0, 0), 1: (0.89, 0.35, 0.13, 0.55), 2: (0.2, 0.45, 0.85, 0.35), 3: (0.3, 0.75, 0.3, 0.35)}
"""Overlay colour (RGBA) of each label value over a grey image; 0 (unassigned) is transparent."""

TWO_PHASE_NAMES, THREE_PHASE_NAMES = metadata.PHASE_NAMES[2], metadata.PHASE_NAMES[3]
UNASSIGNED_COLOUR = (0.82, 0.82, 0.82, 1.0)
DIFF_COLOURS = {1: (0.84, 0.1, 0.1, 1.0), -1: (0.1, 0.25, 0.85, 1.0)}  # +1 only A has the phase, -1 only B
AXES = "zyx"
SCALE_STEPS = (1, 2, 5)


def save_figure(fig: Any, path: str | os.PathLike, *, palette: bool = False, **options: Any) -> None:
    """Save ``fig`` through a hidden sibling, replacing ``path`` only once the file is complete.

    ``palette``: write a PNG as 256 colours (a third of the size for noisy grey images; smooth
    gradients such as a colour bar show steps).
    """
    from .engine import outputs

    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with outputs.staged(path, overwrite=True) as tmp:
        if not (palette and fmt == "png"):
            fig.savefig(tmp, format=fmt, **options)
            return
        import io as _io

        from PIL import Image

        buffer = _io.BytesIO()
        fig.savefig(buffer, format="png", **options)
        buffer.seek(0)
        with Image.open(buffer) as image:
            quantized = image.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            quantized.save(tmp, format="png", optimize=True)


def subplots(*args: Any, figsize: tuple[float, float] | None = None, dpi: float | None = None,
             layout: Any = None, **kwargs: Any) -> Any:
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot: no global backend is chosen or changed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    return fig, fig.subplots(*args, **kwargs)


# --------------------------------------------------------------------------- names, colours, sizes


def short_name(name: str, width: int = 28) -> str:
    """A path-like name cut to its last components so that it fits a legend or a title.

    Examples
    --------
    >>> short_name("U1"), short_name("/data/study/nmc1.zarr/S1", 16)
    ('U1', '…/nmc1.zarr/S1')
    """
    name = str(name)
    if len(name) <= width:
        return name
    parts = name.replace(os.sep, "/").rstrip("/").split("/")
    out = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 3 + len(out) > width:
            break
        out = f"{part}/{out}"
    return out if out == name else f"…/{out}"


def class_label(value: int, name: str) -> str:
    """``"1 active"``, or ``"class 4"`` where the name is the number itself."""
    return f"class {value}" if name in (str(value), f"class {value}") else f"{value} {name}"


def class_colour(value: int, *, opaque: bool = False) -> tuple[float, float, float, float]:
    """The colour of a label value (as overlay: with its transparency; ``opaque``: for keys and label images)."""
    import matplotlib

    if value == 0:
        return UNASSIGNED_COLOUR if opaque else (0.0, 0.0, 0.0, 0.0)
    rgba = PHASE_COLOURS.get(value) or (*matplotlib.colormaps["tab10"]((value + 3) % 10)[:3], 0.45)
    return (*rgba[:3], 1.0) if opaque else tuple(rgba)  # type: ignore[return-value]


def label_image(labels: np.ndarray, *, overlay: bool) -> np.ndarray:
    """RGBA image of a label slice: transparent overlay colours (over grey) or opaque colours."""
    rgba = np.zeros((*labels.shape, 4))
    for value in np.unique(labels).tolist():
        rgba[labels == value] = class_colour(int(value), opaque=not overlay)
    return rgba


def _overlay(labels: np.ndarray) -> np.ndarray:
    return label_image(labels, overlay=True)


def nice_length(nm: float) -> float:
    """The largest round length (1, 2 or 5 × 10^k nm) not above ``nm``.

    Examples
    --------
    >>> nice_length(7940.0), nice_length(1.2e4), nice_length(450.0)
    (5000.0, 10000.0, 200.0)
    """
    if not nm > 0:
        raise ValueError(f"length {nm!r} must be positive")
    exp = math.floor(math.log10(nm))
    best = 10.0**exp
    for step in SCALE_STEPS:
        if step * 10.0**exp <= nm * (1 + 1e-9):
            best = step * 10.0**exp
    return float(best)


def format_length(nm: float) -> str:
    """A length in nm as text in nm, µm or mm.

    Examples
    --------
    >>> format_length(500.0), format_length(10000.0), format_length(2.5e6)
    ('500 nm', '10 µm', '2.5 mm')
    """
    for unit, scale in (("mm", 1e6), ("µm", 1e3)):
        if nm >= scale:
            return f"{nm / scale:g} {unit}"
    return f"{nm:g} nm"


def add_scale_bar(ax: Any, width_px: int, pixel_nm: float, height_px: int, *, fraction: float = 0.3) -> float:
    """Draw a scale bar of a round length (at most ``fraction`` of the panel width) at the panel's lower left.

    The bar is a :class:`~matplotlib.patches.Rectangle` with gid ``"scale-bar"`` whose width is
    in pixels (data units of an ``imshow``), and a text with gid ``"scale-bar-label"``.

    Returns
    -------
    float
        The bar's length in nm.
    """
    from matplotlib.patches import Rectangle

    length_nm = nice_length(width_px * pixel_nm * fraction)
    length_px = length_nm / pixel_nm
    x0 = 0.05 * width_px - 0.5
    thick = max(0.022 * height_px, 0.8)
    y0 = height_px - 0.5 - 0.05 * height_px - thick  # images are drawn origin upper: larger y is lower
    ax.add_patch(Rectangle((x0, y0), length_px, thick, facecolor="black", edgecolor="white", linewidth=0.8,
                           gid="scale-bar", zorder=5))
    box = {"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
    ax.text(x0 + length_px / 2, y0 - 0.03 * height_px, format_length(length_nm), color="black", ha="center",
            va="bottom", fontsize=7, gid="scale-bar-label", zorder=5, bbox=box)
    return length_nm


def slice_title(axis: int, index: int, size: int) -> str:
    """``"z = 48 of 96"``: the slice's axis and (0-based) index, of how many."""
    return f"{AXES[axis]} = {index} of {size}"


# --------------------------------------------------------------------------- slice panels


def _plane(axis: int) -> tuple[int, int]:
    """(vertical, horizontal) axes of the image of a slice across ``axis``."""
    return tuple(a for a in range(3) if a != axis)  # type: ignore[return-value]


def draw_slice(ax: Any, image: np.ndarray, *, axis: int, index: int, shape: Sequence[int],
               voxel_size: Sequence[float] | None, kind: str = "grey", under: np.ndarray | None = None,
               grey_range: tuple[float, float] | None = None, title: str | None = None, scale_bar: bool = True) -> Any:
    """One slice panel of ``kind`` ``"grey"`` (gray colour map), ``"labels"`` (opaque class colours, or
    overlaid on the grey slice ``under``) or ``"difference"`` (−1 blue, +1 red, 0 white).

    The title says the slice (``"z = 48 of 96"``, after ``title`` if given) and the x label names the
    horizontal axis; with a voxel size the pixels keep their physical aspect and a scale bar is drawn.
    Returns the grey image artist (for a colour bar), or None.
    """
    vert, horiz = _plane(axis)
    aspect = voxel_size[vert] / voxel_size[horiz] if voxel_size else 1.0
    vmin, vmax = grey_range if grey_range is not None else (None, None)
    grey_artist = None
    if kind == "labels":
        if under is not None:
            grey_artist = ax.imshow(under, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
        ax.imshow(label_image(image, overlay=under is not None), aspect=aspect, interpolation="nearest")
    elif kind == "difference":
        rgba = np.ones((*image.shape, 4))
        for v, colour in DIFF_COLOURS.items():
            rgba[image == v] = colour
        ax.imshow(rgba, aspect=aspect, interpolation="nearest")
    elif kind == "grey":
        grey_artist = ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
    else:
        raise ValueError(f"panel kind {kind!r}: use grey, labels or difference")
    where = slice_title(axis, index, int(shape[axis]))
    ax.set_title(f"{title} · {where}" if title else where, fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_xlabel(f"{AXES[horiz]} →", fontsize=7, labelpad=1)
    if voxel_size and scale_bar:
        add_scale_bar(ax, image.shape[1], voxel_size[horiz], image.shape[0])
    return grey_artist


def grey_range(images: Sequence[np.ndarray]) -> tuple[float, float]:
    """A shared display window for grey slices: the 0.5th to 99.5th percentile of their values."""
    values = np.concatenate([np.asarray(im, dtype=np.float64).ravel() for im in images])
    lo, hi = np.percentile(values, (0.5, 99.5)) if values.size else (0.0, 1.0)
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def class_handles(names: Mapping[int, Sequence[str]], *, unassigned: bool = False) -> list[Any]:
    """Legend patches keying each label value's colour to its name(s)."""
    from matplotlib.patches import Patch

    handles = []
    if unassigned:
        handles.append(Patch(facecolor=UNASSIGNED_COLOUR, edgecolor="0.4", label="0 unassigned"))
    for value in sorted(names):
        text = " / ".join(dict.fromkeys(names[value]))
        handles.append(Patch(facecolor=class_colour(value, opaque=True), edgecolor="0.4", label=class_label(value, text)))
    return handles


# --------------------------------------------------------------------------- histogram


def _phase_edges(thresholds: Sequence[float]) -> list[tuple[float, float, int]]:
    """(low, high, label) of the grey ranges ``apply_thresholds`` gives each label: brightest is 1 (active)."""
    ts = sorted(thresholds)
    bounds = [-np.inf, *ts, np.inf]
    n = len(ts) + 1
    return [(bounds[k], bounds[k + 1], n - k) for k in range(n)]


def draw_histogram(ax: Any, counts: np.ndarray, centers: np.ndarray, *,
                   thresholds: Mapping[str, float] | Sequence[float] = (), window: tuple[float, float] | None = None,
                   phase_names: Mapping[int, str] | None = None, xlabel: str = "grey value") -> None:
    """Draw a grey-value histogram: bars coloured by the phase each threshold range gives (when thresholds
    are given, 1 above the highest), labelled threshold lines, and a watershed window shaded with its seeds.
    """
    from matplotlib.patches import Patch

    counts, centers = np.asarray(counts), np.asarray(centers)
    named = dict(thresholds) if isinstance(thresholds, Mapping) else {f"t{i + 1}": t for i, t in enumerate(thresholds)}
    width = float(np.median(np.diff(centers))) if len(centers) > 1 else 1.0
    handles: list[Any] = []
    if named and len(named) <= 2:
        ranges = _phase_edges(list(named.values()))
        names = phase_names or (TWO_PHASE_NAMES if len(ranges) == 2 else THREE_PHASE_NAMES)
        for lo, hi, label in ranges:
            inside = (centers >= lo) & (centers < hi)
            ax.bar(centers[inside], counts[inside], width=width, linewidth=0, color=class_colour(label, opaque=True))
            handles.append(Patch(color=class_colour(label, opaque=True), label=class_label(label, names.get(label, str(label)))))
    elif window is not None:
        names = phase_names or TWO_PHASE_NAMES
        parts = ((centers < window[0], 2, "seeds"), ((centers >= window[0]) & (centers <= window[1]), 0, None),
                 (centers > window[1], 1, "seeds"))
        for inside, label, what in parts:
            colour = class_colour(label, opaque=True) if label else "0.55"
            ax.bar(centers[inside], counts[inside], width=width, linewidth=0, color=colour)
            text = f"{what} {class_label(label, names.get(label, str(label)))}" if label else "window: flooded from the seeds"
            handles.append(Patch(color=colour, label=text))
    else:
        ax.bar(centers, counts, width=width, color="0.35", linewidth=0)
    top = float(counts.max()) if counts.size else 1.0
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    marks = [(value, f"{what} {value:g}", "--", "window-line") for value, what in
             (zip(window, ("low", "high")) if window is not None else ())]
    marks += [(t, f"{name} = {t:.5g}", "-", "threshold-line") for name, t in named.items()]
    for value, text, style, gid in marks:
        ax.axvline(value, color="k", lw=1.3, ls=style, gid=gid)
        ax.annotate(text, (value, 1), xycoords=("data", "axes fraction"), xytext=(-2, -4), textcoords="offset points",
                    rotation=90, ha="right", va="top", fontsize=7, bbox=box, gid=f"{gid}-label")
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel(xlabel), ax.set_ylabel("voxels")
    if handles:
        ax.legend(handles=handles, frameon=False, fontsize=7, loc="best", title="label given", title_fontsize=7)


def build_histogram(
    counts: np.ndarray,
    centers: np.ndarray,
    *,
    thresholds: Mapping[str, float] | Sequence[float] = (),
    window: tuple[float, float] | None = None,
    title: str = "",
    phase_names: Mapping[int, str] | None = None,
) -> Any:
    """The grey-value histogram figure (see :func:`histogram_figure`); returns the Figure."""
    fig, ax = subplots(figsize=(6.4, 3.8), layout="constrained")
    draw_histogram(ax, counts, centers, thresholds=thresholds, window=window, phase_names=phase_names)
    total = int(np.sum(counts))
    head = title or "grey-value histogram"
    fig.suptitle(f"{head}\n{total:,} voxels in {len(np.asarray(centers))} bins".replace(",", " "), fontsize=9)
    return fig


def histogram_figure(
    counts: np.ndarray,
    centers: np.ndarray,
    path: str | os.PathLike,
    *,
    thresholds: Mapping[str, float] | Sequence[float] = (),
    window: tuple[float, float] | None = None,
    title: str = "",
    phase_names: Mapping[int, str] | None = None,
) -> str:
    """Grey-value histogram with the chosen threshold(s) as labelled lines and a watershed window shaded.

    With one or two thresholds the bars are coloured by the phase the threshold gives them (above the
    highest: 1 active); with a window, by the seed they become (below: non-active, above: active).

    Parameters
    ----------
    counts, centers : arrays
        From :func:`gpuseg.segment.threshold.histogram`.
    path : path
        PNG to write.
    thresholds : mapping name → value, or values
    window : (low, high), optional
    title : str
        First line of the figure's title (say the method and the input).
    phase_names : mapping label → name, optional
        Default: 1 active, 2 non-active (three phases: 2 carbon-binder, 3 pore).

    Returns
    -------
    str
        ``path``.
    """
    fig = build_histogram(counts, centers, thresholds=thresholds, window=window, title=title, phase_names=phase_names)
    save_figure(fig, path, dpi=100)
    return os.fspath(path)


# --------------------------------------------------------------------------- orthoslices


def build_orthoslices(
    segmentations: Sequence[Any],
    *,
    grey: Any = None,
    truth: Any = None,
    names: Sequence[str] | None = None,
    phase: int = 1,
    indices: Sequence[int | None] | None = None,
) -> Any:
    """The orthoslice figure (see :func:`orthoslices_figure`); returns the Figure."""
    from .errors import ParameterError
    from .metrics import difference_block

    names = [str(n) for n in (names or [f"S{i + 1}" for i in range(len(segmentations))])]
    if len(names) != len(segmentations):
        raise ParameterError(f"{len(names)} names given for {len(segmentations)} segmentations")
    segs = [read_slices(s, indices=indices) for s in segmentations]
    ref = read_slices(truth, indices=indices) if truth is not None else None
    base = read_slices(grey, indices=indices) if grey is not None else None
    for other in [*segs[1:], *([ref] if ref else []), *([base] if base else [])]:
        if other.shape != segs[0].shape:
            raise ParameterError(f"{other.name}: shape {other.shape} differs from {segs[0].name} {segs[0].shape}")
    shape = segs[0].shape
    voxel = next((s.voxel_size for s in [base, *segs, ref] if s is not None and s.voxel_size), None)
    window = grey_range(base.images) if base is not None else None
    rows: list[tuple[str, Slices]] = [(n, s) for n, s in zip(names, segs)]
    if ref is not None:
        rows.append(("truth", ref))
    pairs = list(itertools.combinations(range(len(segs)), 2))
    n_rows = len(rows) + len(pairs)
    heights = [shape[1]] + [shape[0]] * 2  # the panels' heights decide the rows' proportions
    row_height = 2.55 * max(max(heights) / max(shape[1:]), 0.45)
    fig, axes = subplots(n_rows, 3, figsize=(9.2, 1.7 + row_height * n_rows), squeeze=False, layout="constrained")
    keys: dict[int, list[str]] = {}
    unassigned = False
    grey_artist = None
    for r, (name, sl) in enumerate(rows):
        named = metadata.label_names(sl.values(), sl.attrs)
        for value, text in named.items():
            keys.setdefault(value, []).append(text)
        unassigned |= base is None and 0 in sl.values()
        for c in range(3):
            art = draw_slice(axes[r, c], sl.images[c], axis=sl.axes[c], index=sl.indices[c], shape=shape, voxel_size=voxel,
                             kind="labels", under=base.images[c] if base is not None else None, grey_range=window)
            grey_artist = grey_artist or art
        axes[r, 0].set_ylabel(short_name(name, 22), fontsize=9, fontweight="bold")
    for r, (i, j) in enumerate(pairs, start=len(rows)):
        for c in range(3):
            d = np.asarray(difference_block(segs[i].images[c], segs[j].images[c], phase=phase), dtype=np.int8)
            share = 100 * float(np.mean(d != 0))
            draw_slice(axes[r, c], d, axis=segs[i].axes[c], index=segs[i].indices[c], shape=shape, voxel_size=voxel,
                       kind="difference", title=f"{share:.1f} % differ")
        axes[r, 0].set_ylabel(f"{short_name(names[i], 12)} − {short_name(names[j], 12)}", fontsize=9, fontweight="bold")
    from matplotlib.patches import Patch

    phase_name = " / ".join(dict.fromkeys(keys.get(phase, []))) or metadata.label_names([phase]).get(phase, str(phase))
    handles = class_handles(keys, unassigned=unassigned)
    if pairs:
        handles += [Patch(facecolor=DIFF_COLOURS[1], label=f"A − B: only A is {phase_name}"),
                    Patch(facecolor=DIFF_COLOURS[-1], label=f"A − B: only B is {phase_name}"),
                    Patch(facecolor="white", edgecolor="0.4", label="A − B: same, or unassigned")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8, frameon=False)
    if grey_artist is not None:
        share = min(1.0, 0.9 * len(rows) / n_rows)
        cbar = fig.colorbar(grey_artist, ax=axes, shrink=share, aspect=12 * len(rows), pad=0.01, anchor=(0.0, 1.0))
        cbar.set_label(f"grey value ({short_name(volume_name(grey), 30)})", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    what = ", ".join(short_name(n, 20) for n in names) + (" and the truth" if ref is not None else "")
    over = f" over {short_name(volume_name(grey), 36)}" if grey is not None else ""
    size = f"voxel {format_length(voxel[2])}" if voxel else "voxel size unknown: no scale bar"
    diff = f"; rows A − B: where only one of a pair labels {class_label(phase, phase_name)}" if pairs else ""
    fig.suptitle(f"Orthoslices through ({', '.join(str(i) for i in segs[0].indices)}) of {what}{over}\n"
                 f"shape {' × '.join(map(str, shape))}, {size}{diff}", fontsize=9)
    return fig


def orthoslices_figure(
    segmentations: Sequence[Any],
    path: str | os.PathLike,
    *,
    grey: Any = None,
    names: Sequence[str] | None = None,
    phase: int = 1,
    truth: Any = None,
    indices: Sequence[int | None] | None = None,
) -> str:
    """The study's Fig. 1: central orthoslices of each segmentation (and the truth), and every pairwise difference.

    One row per segmentation (overlaid on ``grey`` if given, with a grey colour bar), a row for
    ``truth`` if given, then one row per pair A−B of the ``phase`` (red: only A has it, blue:
    only B), for the z, y and x slices through ``indices`` (default: the centre). Only those slices
    are read; the PNG has 256 colours (see :func:`save_figure`). A legend keys every label class by its name (from the volumes' attributes, else
    1 active, 2 non-active or carbon-binder, 3 pore); with the voxel size (the ``voxel_size_nm``
    attribute) each panel gets a scale bar.

    Returns
    -------
    str
        ``path``.
    """
    fig = build_orthoslices(segmentations, grey=grey, truth=truth, names=names, phase=phase, indices=indices)
    save_figure(fig, path, dpi=90, palette=True)
    return os.fspath(path)


# --------------------------------------------------------------------------- variability


def _phase_label(phase: int, reports: Mapping[str, Mapping[str, Any]]) -> str:
    counts = [len(r.get("phases") or []) for r in reports.values()]
    names = THREE_PHASE_NAMES if counts and max(counts) >= 3 and phase != 2 else TWO_PHASE_NAMES
    return class_label(phase, names.get(phase, str(phase)))


def build_variability(reports: Mapping[str, Mapping[str, Any]], *, phase: int = 1, title: str = "") -> Any:
    """The variability figure (see :func:`variability_figure`); returns the Figure."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    key = str(phase)
    methods = list(reports)
    users = list(dict.fromkeys(str(s["name"]) for rep in reports.values() for s in rep["segmentations"]))
    import matplotlib

    colours = {u: matplotlib.colormaps["tab10"](i % 10) for i, u in enumerate(users)}
    fig, (ax_f, ax_s, ax_d) = subplots(1, 3, figsize=(12, 4.4), layout="constrained")
    has_truth = False
    for m, method in enumerate(methods):
        rep = reports[method]
        segs = rep["segmentations"]
        fr = [s["fractions"].get(key) or 0.0 for s in segs]
        n = len(fr)
        w = 0.8 / max(n, 1)
        xs = m + (np.arange(n) - (n - 1) / 2) * w
        ax_f.bar(xs, fr, width=w, color=[colours[str(s["name"])] for s in segs], edgecolor="k", lw=0.3)
        truth = rep.get("truth", {}).get("fractions", {}).get(key) if "truth" in rep else None
        if truth is not None:
            ax_f.hlines(truth, m - 0.45, m + 0.45, colors="k", linestyles="--", lw=1.2, gid="truth-line")
            ax_f.annotate(f"{truth:.3f}", (m + 0.45, truth), fontsize=7, ha="right", va="bottom")
            has_truth = True
        std = rep["fraction_std"].get(key)
        bars = ax_s.bar(m, std or 0.0, color="0.45", width=0.6)
        ax_s.bar_label(bars, ["n/a" if std is None else f"{std:.4f}"], fontsize=7)
        pct = rep.get("mean_pairwise_percent")
        bars = ax_d.bar(m, pct or 0.0, color="0.45", width=0.6)
        ax_d.bar_label(bars, ["n/a" if pct is None else f"{pct:.2f} %"], fontsize=7)
    label = _phase_label(phase, reports)
    for ax, text in ((ax_f, f"volume fraction of {label}, per user"),
                     (ax_s, "std of that fraction across users (n − 1)"),
                     (ax_d, "differing voxels per pair of users (mean %)")):
        if len(methods) > 1:
            ax.set_xticks(range(len(methods)), [short_name(m, 20) for m in methods],
                          rotation=20 if len(methods) > 3 else 0, ha="right" if len(methods) > 3 else "center", fontsize=8)
        else:
            ax.set_xticks([])
        ax.set_title(text, fontsize=9)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.margins(y=0.12)
    ax_f.set_ylabel("volume fraction"), ax_s.set_ylabel("std of the fraction"), ax_d.set_ylabel("% of voxels")
    handles: list[Any] = [Patch(facecolor=colours[u], edgecolor="k", lw=0.3, label=short_name(u, 24)) for u in users]
    if has_truth:
        handles.append(Line2D([], [], color="k", ls="--", label="truth"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8), fontsize=8, frameon=False,
               title="users (colour), truth (dashed)" if has_truth else "users", title_fontsize=8)
    head = title or f"User variability per method: {', '.join(short_name(m, 20) for m in methods)}"
    fig.suptitle(f"{head} ({label})", fontsize=10)
    return fig


def variability_figure(reports: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, *, phase: int = 1,
                       title: str = "") -> str:
    """The study's Fig. 3: per method, the phase fraction of each user, its std, and pairwise differences.

    Parameters
    ----------
    reports : mapping method name → report of :func:`gpuseg.metrics.compare`
        The users are the reports' segmentation names (``compare --names``); each gets one colour,
        keyed in the legend; the truth, where a report has one, is a dashed line over its method.
    path : path
        PNG to write.
    phase : int
        Label whose fraction is shown (1: active).
    title : str
        The figure's title (default: names the methods).

    Returns
    -------
    str
        ``path``.
    """
    fig = build_variability(reports, phase=phase, title=title)
    save_figure(fig, path, dpi=100)
    return os.fspath(path)
