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
from .io import metadata
from .plots import save_figure, subplots


def run_demo(cfg: dict[str, Any] | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Run the demo pipeline and return what it measured.

    Parameters
    ----------
    cfg : dict, optional
        A config like ``configs/demo.yaml`` (default: :data:`gpuseg.config.DEMO_DEFAULTS`).

    Returns
    -------
    dict
        ``fractions`` (measured), ``truth_fractions``, ``threshold``, ``figure`` and ``store`` paths.
    """
    from .metrics import compare
    from .segment.threshold import histogram, otsu

    cfg = config.merge(config.DEMO_DEFAULTS, cfg or {})
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    store = out / "demo.zarr"
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
    """Central z-slices of raw, filtered and segmented volume (only those slices are read), and the histogram."""
    slices = {name: io.open_array(f"{store}/{name}") for name in ("raw", "smooth", "segmentation")}
    z = slices["raw"].shape[0] // 2
    fig, ax = subplots(1, 4, figsize=(14, 3.6))
    ax[0].imshow(slices["raw"][z], cmap="gray"), ax[0].set_title("tomogram (central z-slice)")
    ax[1].imshow(slices["smooth"][z], cmap="gray"), ax[1].set_title("Gaussian filtered")
    ax[2].imshow(slices["segmentation"][z], cmap="viridis", vmin=0, vmax=2), ax[2].set_title("segmentation (1 = active)")
    for a in ax[:3]:
        a.axis("off")
    counts, centers = hist
    ax[3].bar(centers, counts, width=float(np.median(np.diff(centers))), color="0.3", linewidth=0)
    ax[3].axvline(threshold, color="C3", label=f"Otsu {threshold:.1f}")
    ax[3].set_xlabel("grey value (filtered)"), ax[3].set_ylabel("voxels"), ax[3].legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
