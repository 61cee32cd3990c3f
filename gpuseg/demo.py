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

from . import config, filters, io, phantom
from .io import metadata


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
    from skimage.filters import threshold_otsu

    cfg = config.merge(config.DEMO_DEFAULTS, cfg or {})
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    store = out / "demo.zarr"
    comp = cfg["compute"]
    shape = tuple(cfg["phantom"]["shape"])
    raw, truth = phantom.make("nmc-2", shape, cfg["phantom"]["seed"], voxel_size_nm=float(cfg["phantom"]["voxel_size_nm"]))
    attrs = {metadata.VOXEL_SIZE_KEY: [float(cfg["phantom"]["voxel_size_nm"])] * 3, **metadata.provenance()}
    chunks = io.zarrio.normalize_chunks(comp["chunks"], shape)
    for name, data in (("raw", raw), ("truth", truth)):
        io.create_array(f"{store}/{name}", shape, data.dtype, chunks, attrs, overwrite=True)[:] = data
    filters.gaussian(
        f"{store}/raw", cfg["filter"]["sigma"], truncate=cfg["filter"]["truncate"], output=f"{store}/smooth",
        device=comp["device"], scheduler=comp["scheduler"], workers=comp["workers"], chunks=comp["chunks"],
        overwrite=True, progress=progress,
    )
    smooth = io.open_array(f"{store}/smooth")[:]
    threshold = float(threshold_otsu(smooth))
    seg = np.where(smooth > threshold, 1, 2).astype(np.uint8)
    io.create_array(f"{store}/segmentation", shape, np.uint8, chunks, attrs, overwrite=True)[:] = seg
    fractions = {"active": float(np.mean(seg == 1)), "non-active": float(np.mean(seg == 2))}
    # The truth has three phases (1 active, 2 carbon-binder, 3 pore); non-active is 2 or 3.
    truth_fractions = {"active": float(np.mean(truth == 1)), "non-active": float(np.mean(truth >= 2))}
    figure = out / "demo.png"
    _figure(raw, smooth, seg, threshold, figure)
    return {"store": str(store), "figure": str(figure), "threshold": threshold,
            "fractions": fractions, "truth_fractions": truth_fractions}


def _figure(raw, smooth, seg, threshold, path: os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = raw.shape[0] // 2
    fig, ax = plt.subplots(1, 4, figsize=(14, 3.6))
    ax[0].imshow(raw[z], cmap="gray"), ax[0].set_title("tomogram (central z-slice)")
    ax[1].imshow(smooth[z], cmap="gray"), ax[1].set_title("Gaussian filtered")
    ax[2].imshow(seg[z], cmap="viridis", vmin=0, vmax=2), ax[2].set_title("segmentation (1 = active)")
    for a in ax[:3]:
        a.axis("off")
    ax[3].hist(smooth.ravel(), bins=128, color="0.3")
    ax[3].axvline(threshold, color="C3", label=f"Otsu {threshold:.1f}")
    ax[3].set_xlabel("grey value (filtered)"), ax[3].set_ylabel("voxels"), ax[3].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
