"""Image-quality figures of a tomogram measured against its truth: SNR, CNR, separability.

Examples
--------
>>> import numpy as np
>>> from gpuseg.phantom import make
>>> raw, truth, info = make("nmc-2", (32, 32, 32), return_info=True, psf_sigma=0.0)
>>> q = contrast(raw, truth, info["zero_grey"], margin=1)
>>> abs(q["snr"] / 6.0 - 1) < 0.15
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage as ndi

from .ct import TRUNCATE


def interior(truth: np.ndarray, phase: int, margin: int) -> np.ndarray:
    """Voxels of ``phase`` farther than ``margin`` voxels (chessboard) from any other label."""
    mask = truth == phase
    if margin <= 0:
        return mask
    return ndi.binary_erosion(mask, structure=np.ones((3, 3, 3), bool), iterations=margin, border_value=1)


def psf_margin(psf_sigma: float) -> int:
    """The PSF's radius in voxels: phase interiors start this far from a boundary."""
    return int(TRUNCATE * psf_sigma + 0.5) if psf_sigma > 0 else 0


def contrast(raw: np.ndarray, truth: np.ndarray, zero_grey: float, margin: int) -> dict[str, Any]:
    """Measured SNR and CNR of ``raw`` (definitions in :mod:`gpuseg.phantom.presets`).

    Returns
    -------
    dict
        ``snr``, ``cnr`` (active vs pore), ``cnr_cbd`` (active vs carbon-binder, NaN without
        CBD interior), ``noise_std``, the interior means and their voxel counts.
    """
    raw = np.asarray(raw, np.float64)
    means, counts = {}, {}
    for phase, name in ((1, "active"), (2, "cbd"), (3, "pore")):
        inside = interior(truth, phase, margin)
        counts[name] = int(inside.sum())
        means[name] = float(raw[inside].mean()) if counts[name] else float("nan")
        if phase == 1:
            std = float(raw[inside].std(ddof=1))
    return {
        "snr": (means["active"] - zero_grey) / std,
        "cnr": abs(means["active"] - means["pore"]) / std,
        "cnr_cbd": abs(means["active"] - means["cbd"]) / std,
        "noise_std": std, "means": means, "counts": counts,
    }


def otsu_separability(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's separability η: the largest between-class variance over the total variance (0..1).

    Near 1 for two well separated peaks; lower for a histogram without two clear peaks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> two = np.concatenate([rng.normal(0, 1, 5000), rng.normal(8, 1, 5000)])
    >>> round(otsu_separability(two), 2), round(otsu_separability(rng.normal(0, 1, 10000)), 2)
    (0.94, 0.64)
    """
    hist, edges = np.histogram(np.asarray(values, np.float64).ravel(), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    p = hist / hist.sum()
    w0 = np.cumsum(p)[:-1]
    m = np.cumsum(p * centres)[:-1]
    mt = float((p * centres).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m) ** 2 / (w0 * (1 - w0))
    total = float((p * (centres - mt) ** 2).sum())
    return float(np.nanmax(between) / total)


def bimodality_coefficient(values: np.ndarray) -> float:
    """Sarle's bimodality coefficient ``(skew² + 1) / kurtosis``; above 5/9 suggests two peaks."""
    from scipy.stats import kurtosis, skew

    v = np.asarray(values, np.float64).ravel()
    return float((skew(v) ** 2 + 1) / (kurtosis(v, fisher=False)))
