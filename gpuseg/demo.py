"""``gpuseg demo``: the whole job on a small synthetic tomogram, end to end.

Makes a synthetic electrode tomogram with known phases (the ``nmc-2`` phantom of
:mod:`gpuseg.phantom`), filters it, segments it into active and non-active material,
prints the phase volume fractions beside the truth, and writes a figure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import config, filters, io, phantom, volumes
from .engine import outputs
from .errors import OutputError
from .io import metadata
from .plots import save_figure, subplots


def run_demo(cfg: dict[str, Any] | None = None, *, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the demo pipeline and return what it measured.

    Parameters
    ----------
    cfg : dict, optional
        A config like ``configs/demo.yaml`` (default: :data:`gpuseg.config.DEMO_DEFAULTS`).
    overwrite : bool
        Replace the ``demo.zarr`` and ``demo.png`` of an earlier demo in the output folder.

    Returns
    -------
    dict
        ``fractions`` (measured), ``truth_fractions``, ``threshold``, ``figure`` and ``store`` paths.
    """
    from .metrics import compare
    from .segment.threshold import histogram, otsu

    cfg = config.merge(config.DEMO_DEFAULTS, cfg or {})
    config.check(cfg, config.DEMO_RULES)
    out = Path(cfg["output"])
    store = out / "demo.zarr"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; the demo writes a folder (demo.zarr, demo.png): choose another --output")
    for written in (store, out / "demo.png"):
        outputs.check_new(written, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    comp = cfg["compute"]
    run = {"scheduler": comp["scheduler"], "workers": comp["workers"], "progress": progress}
    shape = tuple(cfg["phantom"]["shape"])
    raw, truth = phantom.make("nmc-2", shape, cfg["phantom"]["seed"], voxel_size_nm=float(cfg["phantom"]["voxel_size_nm"]))
    attrs = {metadata.VOXEL_SIZE_KEY: [float(cfg["phantom"]["voxel_size_nm"])] * 3, **metadata.provenance()}
    chunks = io.zarrio.normalize_chunks(comp["chunks"], shape)
    for name, data in (("raw", raw), ("truth", truth)):
        volumes.save(data, f"{store}/{name}", chunks=chunks, attrs=attrs, overwrite=True)
    smooth = filters.gaussian(
        f"{store}/raw", cfg["filter"]["sigma"], truncate=cfg["filter"]["truncate"], output=f"{store}/smooth",
        device=comp["device"], chunks=comp["chunks"], overwrite=True, **run,
    )
    # one pass for the histogram: it gives the Otsu threshold and the figure's histogram panel
    hist = histogram(smooth, scheduler=comp["scheduler"], workers=comp["workers"])
    segmentation, thresholds = otsu(
        smooth, hist=hist, output=f"{store}/segmentation", device=comp["device"], chunks=comp["chunks"],
        overwrite=True, **run,
    )
    # the truth has three phases (1 active, 2 carbon-binder, 3 pore); non-active is 2 or 3
    report = compare([segmentation], f"{store}/truth", two_phase=True, scheduler=comp["scheduler"], workers=comp["workers"])
    measured, true = report["segmentations"][0]["fractions"], report["truth"]["fractions"]
    figure = out / "demo.png"
    _figure(store, hist, thresholds[0], figure)
    return {"store": str(store), "figure": str(figure), "threshold": float(thresholds[0]),
            "fractions": {"active": measured["1"], "non-active": measured["2"]},
            "truth_fractions": {"active": true["1"], "non-active": true["2"]},
            "accuracy": report["segmentations"][0]["accuracy"]}


def _figure(store: Path, hist, threshold: float, path: os.PathLike) -> None:
    """Central z-slices of raw, filtered, segmented volume and truth, where segmentation and truth differ, and the
    histogram with the Otsu threshold. Only those slices are read."""
    from matplotlib.patches import Patch

    from .io.slices import read_slices
    from .metrics import difference_block
    from .plots import DIFF_COLOURS, class_handles, draw_histogram, draw_slice, grey_range

    views = {name: read_slices(f"{store}/{name}", axes=(0,)) for name in ("raw", "smooth", "segmentation", "truth")}
    raw = views["raw"]
    shape, z, voxel = raw.shape, raw.indices[0], raw.voxel_size
    fig, ax = subplots(2, 3, figsize=(12, 7.6), layout="constrained")
    sigma = views["smooth"].attrs.get("sigma")
    titles = {"raw": "tomogram (synthetic CT)",
              "smooth": f"Gaussian filtered, σ = {sigma[0]:g} voxel" if sigma else "Gaussian filtered"}
    for a, name in zip(ax[0, :2], ("raw", "smooth")):
        image = views[name].images[0]
        art = draw_slice(a, image, axis=0, index=z, shape=shape, voxel_size=voxel, grey_range=grey_range([image]),
                         title=titles[name])
        fig.colorbar(art, ax=a, shrink=0.8, pad=0.02).set_label("grey value", fontsize=8)
    for a, name, text in ((ax[1, 0], "segmentation", f"Otsu segmentation (t = {threshold:.1f})"),
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
    counts, centers = hist
    draw_histogram(ax[0, 2], counts, centers, thresholds={"Otsu": threshold}, xlabel="grey value (filtered)")
    ax[0, 2].set_title("histogram of the filtered volume", fontsize=8)
    ax[0, 2].xaxis.label.set_size(8), ax[0, 2].yaxis.label.set_size(8)
    size = f", voxel {voxel[2]:g} nm" if voxel else ""
    fig.suptitle(f"gpuseg demo: {' × '.join(map(str, shape))} synthetic electrode (nmc-2){size}: "
                 f"filter, Otsu threshold, compare with the truth", fontsize=10)
    save_figure(fig, path, dpi=90)
