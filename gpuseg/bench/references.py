"""Whole-array references for the benchmark stages: scipy, scikit-image, scikit-learn and numpy in memory.

Each reference reads its whole input from the same zarr array the gpuseg stage reads,
computes on the whole array, and writes its whole result to zarr, so that its time covers
the same work as the out-of-core stage (I/O included). Each is run in a fresh process
(:func:`gpuseg.bench.measure.peak_rss_of`) and only when :func:`estimate_bytes` fits
comfortably in the memory available (:func:`fits`).

=========== =========================================================================
stage       reference
=========== =========================================================================
ingest      ``tifffile.imread`` of the slices into one array, written to zarr whole
filter      ``scipy.ndimage.gaussian_filter`` (float32, mode reflect)
otsu        ``skimage.filters.threshold_otsu`` and the comparison ``x > t``
watershed   ``skimage.segmentation.watershed`` on the whole volume (same seeds, same gradient)
rf-predict  ``skimage.feature.multiscale_basic_features`` + ``skimage.future.predict_segmenter``
            (a forest of the same size fitted on the same scribbles; fitting not timed)
compare     numpy counts on the whole arrays (two-phase accuracy, fractions, pairs)
=========== =========================================================================
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import io, volumes

NAMES = {
    "ingest": "tifffile + zarr (whole array)",
    "filter": "scipy.ndimage.gaussian_filter",
    "otsu": "skimage threshold_otsu",
    "watershed": "skimage watershed (whole volume)",
    "rf-predict": "skimage multiscale_basic_features + predict_segmenter",
    "compare": "numpy (whole arrays)",
}
#: Peak bytes per voxel of each reference beyond the interpreter (input, output, the algorithm's
#: temporaries): measured by ``gpuseg bench`` at 128³ (peak RSS less the interpreter's ~52 MiB, per
#: voxel: filter 16, otsu 21, watershed 94, compare 18), rounded up; rf-predict at 256³, where the
#: fixed costs of scikit-learn's thread pool no longer dominate (5.88 GiB: 377; at 128³ it was 740).
BYTES_PER_VOXEL = {"filter": 16, "otsu": 24, "watershed": 96, "rf-predict": 400, "compare": 24}
#: A reference runs only if its estimate is at most this share of the memory available.
MEMORY_SHARE = 0.5
#: multiscale_basic_features in 3-D: 5 channels per sigma, 4 sigmas = the 20 channels of gpuseg's ``default``.
SKIMAGE_SIGMAS = {"sigma_min": 0.7, "sigma_max": 5.0, "num_sigma": 4}


def estimate_bytes(stage: str, voxels: int, raw_itemsize: int) -> int:
    """Peak memory of the whole-array reference of ``stage``.

    Examples
    --------
    >>> estimate_bytes("ingest", 100, 2), estimate_bytes("filter", 100, 2)
    (400, 1800)
    """
    if stage == "ingest":
        return 2 * raw_itemsize * voxels  # the stacked slices, and the pages being decoded
    return (BYTES_PER_VOXEL[stage] + (raw_itemsize if stage in ("filter", "rf-predict") else 0)) * voxels


def fits(stage: str, voxels: int, raw_itemsize: int, available: int | None = None) -> str | None:
    """None if the reference fits comfortably in memory, else the reason it is skipped.

    Examples
    --------
    >>> fits("compare", 1000, 1, available=10**6) is None
    True
    >>> fits("rf-predict", 512**3, 2, available=16 * 2**30)
    'needs about 50.2 GiB (whole-array estimate), more than 50 % of the 16.0 GiB available'
    """
    if stage not in NAMES:
        return "no whole-array reference for this stage"
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    need = estimate_bytes(stage, voxels, raw_itemsize)
    if need > MEMORY_SHARE * available:
        return (f"needs about {need / 2**30:.1f} GiB (whole-array estimate), more than "
                f"{MEMORY_SHARE * 100:.0f} % of the {available / 2**30:.1f} GiB available")
    return None


def _write(path: str, data: np.ndarray, chunks: Any) -> None:
    volumes.save(data, path, chunks=chunks, overwrite=True)


def _read(path: str) -> np.ndarray:
    return np.asarray(io.open_array(path)[:])


def _timed(t0: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": time.perf_counter() - t0, "extra": extra}


# --------------------------------------------------------------------------- references (run in fresh processes)


def ref_ingest(slices: str, out: str, chunks: Any) -> dict[str, Any]:
    """All slices read into one array with tifffile, written to zarr whole."""
    import tifffile

    files = sorted(Path(slices).glob("*.tif*"))
    t0 = time.perf_counter()
    _write(out, tifffile.imread(files), chunks)
    return _timed(t0)


def ref_filter(raw: str, out: str, chunks: Any, sigma: float) -> dict[str, Any]:
    """``scipy.ndimage.gaussian_filter`` of the whole raw (float32, mode reflect), written whole."""
    import scipy.ndimage as ndi

    t0 = time.perf_counter()
    _write(out, ndi.gaussian_filter(_read(raw), sigma, mode="reflect", output=np.float32), chunks)
    return _timed(t0)


def ref_otsu(filtered: str, out: str, chunks: Any) -> dict[str, Any]:
    """``skimage.filters.threshold_otsu`` of the whole filtered volume, labels written whole; ``extra``: the threshold."""
    from skimage.filters import threshold_otsu

    t0 = time.perf_counter()
    x = _read(filtered)
    t = float(threshold_otsu(x))
    _write(out, (x <= t).view(np.uint8) + np.uint8(1), chunks)  # 1 above, 2 at or below, as gpuseg labels
    return _timed(t0, threshold=t)


def ref_watershed(filtered: str, out: str, chunks: Any, window: Sequence[float]) -> dict[str, Any]:
    """scikit-image's seeded watershed of the whole filtered volume (gpuseg's block function on one block)."""
    from ..segment.watershed import watershed_block

    t0 = time.perf_counter()
    _write(out, watershed_block(_read(filtered), low=window[0], high=window[1]), chunks)
    return _timed(t0)


def skimage_classifier(raw: np.ndarray, scribbles: np.ndarray, trees: int, workers: int | None) -> dict[str, Any]:
    """scikit-image's pixel classifier on a whole volume: features, a forest fitted on the scribbles, labels.

    Returns the labels, the number of feature channels and the seconds of features, fit and prediction.
    """
    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    feats = multiscale_basic_features(raw, workers=workers, **SKIMAGE_SIGMAS)
    t1 = time.perf_counter()
    clf = fit_segmenter(scribbles, feats, RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=workers))
    t2 = time.perf_counter()
    labels = predict_segmenter(feats, clf)
    t3 = time.perf_counter()
    return {"labels": labels, "channels": int(feats.shape[-1]), "features": t1 - t0, "fit": t2 - t1, "predict": t3 - t2}


def ref_rf_predict(raw: str, scribbles: str, out: str, chunks: Any, trees: int, workers: int | None) -> dict[str, Any]:
    """scikit-image's features and ``predict_segmenter`` on the whole raw; the fit is not timed."""
    labels_drawn = _read(scribbles)
    t0 = time.perf_counter()
    x = _read(raw)
    t_read = time.perf_counter() - t0
    r = skimage_classifier(x, labels_drawn, trees, workers)
    t1 = time.perf_counter()
    _write(out, r["labels"].astype(np.uint8), chunks)
    seconds = t_read + r["features"] + r["predict"] + (time.perf_counter() - t1)  # the fit is not timed, as in gpuseg
    return {"seconds": seconds, "extra": {"channels": r["channels"], "fit_seconds": r["fit"]}}


def two_phase(labels: np.ndarray) -> np.ndarray:
    """Every label above 1 (carbon-binder, pore, …) as 2, non-active; 0 and 1 kept.

    Examples
    --------
    >>> two_phase(np.array([0, 1, 2, 3], np.uint8)).tolist()
    [0, 1, 2, 2]
    """
    return np.where(labels > 1, np.uint8(2), labels).astype(np.uint8, copy=False)


def compare_numpy(segmentations: Mapping[str, np.ndarray], truth: np.ndarray) -> dict[str, Any]:
    """Two-phase accuracy of each segmentation over the voxels the truth assigns, and the mean pairwise disagreement (%).

    Examples
    --------
    >>> t = np.array([1, 2, 3, 1], np.uint8)
    >>> r = compare_numpy({"a": np.array([1, 2, 2, 2], np.uint8), "b": t}, t)
    >>> r["accuracy"], r["mean_pairwise_percent"]
    ({'a': 0.75, 'b': 1.0}, 25.0)
    """
    t = two_phase(truth).ravel()
    vols = {name: two_phase(v).ravel() for name, v in segmentations.items()}
    accuracy = {}
    for name, s in vols.items():
        confusion = np.bincount(t * np.uint8(3) + s, minlength=9).reshape(3, 3)  # rows truth, columns segmentation
        accuracy[name] = float(np.trace(confusion[1:, 1:]) / confusion[1:].sum())
    percents = []
    for a, b in itertools.combinations(vols.values(), 2):
        both = (a != 0) & (b != 0)
        percents.append(100.0 * np.count_nonzero(both & (a != b)) / np.count_nonzero(both))
    return {"accuracy": accuracy, "mean_pairwise_percent": float(np.mean(percents)) if percents else None}


def ref_compare(segmentations: Mapping[str, str], truth: str) -> dict[str, Any]:
    """numpy counts on the whole segmentations and truth; ``extra``: accuracies and pairwise disagreement."""
    t0 = time.perf_counter()
    result = compare_numpy({name: _read(p) for name, p in segmentations.items()}, _read(truth))
    return _timed(t0, **result)
