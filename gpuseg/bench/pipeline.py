"""The stages of the end-to-end benchmark, each a module-level function run in a fresh process.

For a size N the work folder holds (setup, untimed): a phantom (``phantom.zarr`` with
``raw`` and ``truth``), its raw tomogram exported as a folder of TIFF slices, and
scribbles on 7 equally spaced z-slices (10 % of each, drawn from the truth slice by slice).
Then, per device, the stages run the gpuseg API out of core, zarr to zarr:

========== ================================================================= ===========================
stage      what                                                              needs
========== ================================================================= ===========================
ingest     TIFF slices → chunked zarr (:func:`gpuseg.volumes.ingest`; host only)   setup
filter     Gaussian filter, float32 (:func:`gpuseg.filters.gaussian`)         ingest
otsu       histogram + Otsu threshold of the filtered volume, labels written  filter
watershed  seeded watershed of the filtered volume, window around Otsu's      filter, otsu
rf-train   features around the scribbles + forest fit (``classify.train``)   ingest
rf-predict features + forest on every raw voxel (``classify.predict``)          rf-train
compare    the three segmentations against the truth, two-phase               otsu, watershed, rf-predict
========== ================================================================= ===========================

Every stage returns its wall time (imports and device start-up excluded), the phase sums
of its blocks (:func:`gpuseg.engine.timing.collect`) and dask tasks (:func:`.measure.task_phases`),
the peak of cupy's memory pool on the GPU, and what it found (``extra``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError

STAGES = ("ingest", "filter", "otsu", "watershed", "rf-train", "rf-predict", "compare")
NEEDS = {
    "ingest": (), "filter": ("ingest",), "otsu": ("filter",), "watershed": ("filter", "otsu"),
    "rf-train": ("ingest",), "rf-predict": ("rf-train",), "compare": ("otsu", "watershed", "rf-predict"),
}
HOST_ONLY = ("ingest",)  # no device work: measured once, reported under "cpu"
SCRIBBLE_SLICES = 7
SCRIBBLE_FRACTION = 0.10
#: The watershed's grey window spans this fraction of the distance from Otsu's threshold to each class mean.
WINDOW_FRACTION = 0.25
SEGMENTATIONS = ("otsu", "watershed", "rf")


def plan(stages: Iterable[str]) -> list[str]:
    """The asked-for stages with everything they need, in running order.

    Examples
    --------
    >>> plan(["watershed"])
    ['ingest', 'filter', 'otsu', 'watershed']
    >>> plan(["rf-predict", "ingest"])
    ['ingest', 'rf-train', 'rf-predict']
    """
    wanted: set[str] = set()

    def add(stage: str) -> None:
        if stage not in NEEDS:
            raise ParameterError(f"unknown stage {stage!r}: use any of {', '.join(STAGES)}")
        if stage not in wanted:
            wanted.add(stage)
            for need in NEEDS[stage]:
                add(need)

    for s in stages:
        add(s)
    return [s for s in STAGES if s in wanted]


# --------------------------------------------------------------------------- where things are


def paths(folder: str | Path, device: str = "cpu") -> dict[str, str]:
    """Every file of one size's work folder; per-device outputs under ``folder/device``."""
    f, d = Path(folder), Path(folder) / device
    return {
        "phantom": str(f / "phantom.zarr"), "truth": str(f / "phantom.zarr/truth"), "source": str(f / "phantom.zarr/raw"),
        "slices": str(f / "slices"), "scribbles": str(f / "scribbles.zarr/labels"), "raw": str(f / "ingested.zarr/raw"),
        "filtered": str(d / "filtered.zarr/data"), "otsu": str(d / "otsu.zarr/labels"),
        "watershed": str(d / "watershed.zarr/labels"), "model": str(d / "model.npz"), "rf": str(d / "rf.zarr/labels"),
        "ref": str(f / "reference"),
    }


# --------------------------------------------------------------------------- setup (untimed)


def write_scribbles(truth_path: str | Path, out_path: str | Path, fraction: float = SCRIBBLE_FRACTION, seed: int = 0) -> int:
    """Scribbles on 7 equally spaced z-slices (``fraction`` of each), drawn from the truth one slice at a time.

    Returns the number of labelled voxels.
    """
    from .. import io
    from ..engine import outputs
    from ..io import metadata

    truth = io.open_array(truth_path)
    rng = np.random.default_rng(seed)
    labelled = 0
    with outputs.staged(out_path, overwrite=True) as staged:  # the truth's phase names: a label image
        out = io.create_array(staged, truth.shape, np.uint8, (1, *truth.chunks[1:]),
                              metadata.inherit(truth.attrs.asdict(), names=True))
        for z in np.linspace(0, truth.shape[0] - 1, SCRIBBLE_SLICES + 2).round().astype(int)[1:-1]:
            page = np.asarray(truth[int(z)])
            drawn = np.where(rng.random(page.shape) < fraction, page, 0).astype(np.uint8)
            out[int(z)] = drawn
            labelled += int(np.count_nonzero(drawn))
    return labelled


def setup(folder: str, size: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """Phantom (raw + truth), its raw as TIFF slices, and the scribbles."""
    from .. import phantom, volumes

    p = paths(folder)
    t0 = time.perf_counter()
    group = phantom.generate(p["phantom"], params["preset"], (size,) * 3, seed=params.get("seed", 0),
                             chunks=params["chunks"], device=params.get("setup_device", "cpu"),
                             scheduler="threads", workers=params.get("workers"))
    volumes.export(p["source"], p["slices"])
    labelled = write_scribbles(p["truth"], p["scribbles"])
    return {"seconds": time.perf_counter() - t0, "raw_dtype": str(group["raw"].dtype),
            "fractions": group.attrs["phantom"]["fractions"], "scribbled_voxels": labelled}


# --------------------------------------------------------------------------- measuring one stage


def _start(device: str) -> None:
    """Load the modules and start the device outside the timing (as the references are measured)."""
    import dask.threaded  # noqa: F401  (loaded before the clock starts)

    from .. import backend

    be = backend.resolve(device)
    if be.name == "gpu":
        int(be.xp.arange(4).sum())


def _gpu_pool_bytes(device: str) -> int:
    import cupy

    return int(cupy.get_default_memory_pool().total_bytes())


def _measured(device: str, work: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    from ..engine import timing
    from . import measure

    _start(device)
    on_gpu = device == "gpu"
    with timing.collect() as blocks, measure.task_phases(on_gpu) as tasks:
        t0 = time.perf_counter()
        extra = work() or {}
        seconds = time.perf_counter() - t0
    phases = {
        "read": blocks["read"] + tasks["read"], "to_device": blocks["to_device"], "compute": blocks["compute"] + tasks["compute"],
        "to_host": blocks["to_host"], "write": blocks["write"], "unsplit": tasks["unsplit"],
        "wait": blocks.get("wait", 0.0),  # blocks queued for a device slot: not work, so in no share
    }
    # cupy's pool keeps freed blocks, so its size at the end is the most it ever held.
    gpu_peak = max(int(blocks["gpu_pool_peak"]), _gpu_pool_bytes(device)) if on_gpu else None
    return {"seconds": seconds, "phase_seconds": phases, "blocks": int(blocks["blocks"]), "tasks": int(tasks["tasks"]),
            "peak_gpu_bytes": gpu_peak, "extra": extra}


def _compute(params: Mapping[str, Any], device: str) -> dict[str, Any]:
    return {"device": device, "scheduler": "threads", "workers": params.get("workers")}


# --------------------------------------------------------------------------- the stages


def run_ingest(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """TIFF slices → ``ingested.zarr/raw`` (host only; all I/O)."""
    from .. import volumes

    p = paths(folder, device)

    def work():
        volumes.ingest(p["slices"], p["raw"], chunks=params["chunks"])

    out = _measured("cpu", work)
    out["phase_seconds"] = None  # not block work: the whole stage is reading and writing
    out["shares"] = {"io": 1.0, "compute": 0.0, "transfer": 0.0}
    out["shares_note"] = "ingest reads TIFF slices and writes zarr chunks: all I/O (TIFF decoding and zstd compression included)"
    return out


def run_filter(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Gaussian filter of the ingested raw → ``filtered.zarr/data`` (float32)."""
    from .. import filters

    p = paths(folder, device)

    def work():
        filters.gaussian(p["raw"], params["sigma"], output=p["filtered"], chunks=params["chunks"], **_compute(params, device))

    return _measured(device, work)


def _window(counts: np.ndarray, centers: np.ndarray, threshold: float) -> list[float]:
    """The watershed's grey window: from ``threshold`` part of the way to the mean of each class."""
    below = centers <= threshold
    mean_low = float(np.average(centers[below], weights=counts[below]))
    mean_high = float(np.average(centers[~below], weights=counts[~below]))
    return [threshold - WINDOW_FRACTION * (threshold - mean_low), threshold + WINDOW_FRACTION * (mean_high - threshold)]


def run_otsu(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Histogram and Otsu threshold of the filtered volume, labels → ``otsu.zarr/labels``.

    ``extra``: the threshold and the watershed window.
    """
    from .. import backend
    from ..segment import threshold

    p = paths(folder, device)

    def work():
        hist = threshold.histogram(p["filtered"], device=backend.resolve(device).name, scheduler="threads",
                                   workers=params.get("workers"))
        _, values = threshold.otsu(p["filtered"], hist=hist, output=p["otsu"], chunks=params["chunks"],
                                   **_compute(params, device))
        return {"threshold": values[0], "window": _window(*hist, values[0])}

    return _measured(device, work)


def run_watershed(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Seeded watershed of the filtered volume in the window found by :func:`run_otsu` → ``watershed.zarr/labels``."""
    from ..segment import watershed

    p = paths(folder, device)
    low, high = found["otsu"]["window"]

    def work():
        watershed.watershed(p["filtered"], low, high, output=p["watershed"], chunks=params["chunks"], **_compute(params, device))
        return {"window": [low, high]}

    return _measured(device, work)


def run_rf_train(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Forest trained on the scribbles (features around them only) → ``model.npz``; ``extra``: samples."""
    from .. import classify

    p = paths(folder, device)
    Path(p["model"]).parent.mkdir(parents=True, exist_ok=True)

    def work():
        result = classify.train(p["raw"], p["scribbles"], features=params["features"], trees=params["trees"],
                                model=p["model"], **_compute(params, device))
        return {"samples": result.samples[-1], "trees": params["trees"], "features": params["features"]}

    out = _measured(device, work)
    out["shares_reason"] = ("features are read and computed inside one task per scribble block and the forest is fitted "
                          "in this process, so reading, transfer and compute are not timed apart")
    return out


def run_rf_predict(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Every voxel of the ingested raw through the forest → ``rf.zarr/labels``."""
    from .. import classify

    p = paths(folder, device)

    def work():
        classify.predict(p["raw"], p["model"], p["rf"], chunks=params["chunks"], **_compute(params, device))

    return _measured(device, work)


def run_compare(folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """The three segmentations against the truth, two-phase; ``extra``: accuracies, fraction deviations, pairwise disagreement."""
    from .. import metrics

    p = paths(folder, device)

    def work():
        report = metrics.compare([p[s] for s in SEGMENTATIONS], p["truth"], two_phase=True, names=list(SEGMENTATIONS),
                                 **_compute(params, device))
        return {
            "accuracy": {s["name"]: s["accuracy"] for s in report["segmentations"]},
            "active_fraction_deviation": {s["name"]: s["active_fraction_deviation"] for s in report["segmentations"]},
            "mean_pairwise_percent": report["mean_pairwise_percent"],
        }

    return _measured(device, work)


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ingest": run_ingest, "filter": run_filter, "otsu": run_otsu, "watershed": run_watershed,
    "rf-train": run_rf_train, "rf-predict": run_rf_predict, "compare": run_compare,
}


def run_stage(stage: str, folder: str, device: str, params: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Run one stage (in the calling process); ``found`` holds earlier stages' ``extra`` by stage name."""
    return RUNNERS[stage](folder, device, params, found)
