"""Run the benchmark: for every size, set up once, then every stage on every device beside its reference.

Each stage and each reference runs in a fresh spawned process (:func:`.measure.peak_rss_of`),
so its peak RSS is its own (worker threads included) and nothing it allocated is carried
into the next measurement. The records are JSON-ready dicts (see :func:`run`).
"""

from __future__ import annotations

import datetime
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..engine import outputs
from . import measure, pipeline, references
from .report import fmt_bytes, fmt_rate

PHASES_SPLIT = ("read", "to_device", "compute", "to_host", "write")


def shares_of(out: dict[str, Any]) -> tuple[dict[str, float] | None, str]:
    """I/O, transfer and compute shares of a stage's measured phase time, or None and why not.

    Examples
    --------
    >>> out = {"phase_seconds": {"read": 1.0, "to_device": 0.0, "compute": 2.0, "to_host": 0.0, "write": 1.0, "unsplit": 0.0}}
    >>> shares_of(out)[0]
    {'io': 0.5, 'transfer': 0.0, 'compute': 0.5}
    >>> out["phase_seconds"]["unsplit"] = 1.0
    >>> shares_of(out)[0] is None
    True
    """
    if out.get("shares") is not None:
        return out["shares"], out.get("shares_note", "")
    if out.get("shares_reason"):
        return None, out["shares_reason"]
    ph = out["phase_seconds"]
    split = sum(ph[p] for p in PHASES_SPLIT)
    if ph["unsplit"] > 0:
        return None, (f"{ph['unsplit']:.3g} s of the {split + ph['unsplit']:.3g} s of task time read and computed in one "
                      "task (dask fuses chunk reads into reductions such as min/max; on the GPU a reduction's "
                      "host-device copies are not timed apart); phase sums in phase_seconds")
    if split <= 0:
        return None, "no block or task time was measured"
    return ({"io": (ph["read"] + ph["write"]) / split, "transfer": (ph["to_device"] + ph["to_host"]) / split,
             "compute": ph["compute"] / split},
            "shares of the block and task time summed over all worker threads")


def default_chunks(size: int) -> int:
    """Chunk edge for an N³ benchmark: 128 (the project's default), smaller for small volumes so every worker has blocks.

    Examples
    --------
    >>> [default_chunks(n) for n in (32, 128, 256, 1024)]
    [16, 32, 64, 128]
    """
    return min(128, max(16, size // 4))


def _reference(stage: str, folder: str, device: str, params: dict, found: dict, voxels: int, itemsize: int) -> dict:
    """Measure the whole-array reference of ``stage`` on the outputs of ``device``, or say why not."""
    why = references.fits(stage, voxels, itemsize)
    if why:
        return {"name": references.NAMES.get(stage), "skipped": why}
    p = pipeline.paths(folder, device)
    ref = Path(p["ref"])
    ref.mkdir(parents=True, exist_ok=True)
    chunks = params["chunks"]
    calls: dict[str, tuple] = {
        "ingest": (references.ref_ingest, p["slices"], str(ref / "ingest.zarr/raw"), chunks),
        "filter": (references.ref_filter, p["raw"], str(ref / "filter.zarr/data"), chunks, params["sigma"]),
        "otsu": (references.ref_otsu, p["filtered"], str(ref / "otsu.zarr/labels"), chunks),
        "watershed": (references.ref_watershed, p["filtered"], str(ref / "watershed.zarr/labels"), chunks,
                      found.get("otsu", {}).get("window")),
        "rf-predict": (references.ref_rf_predict, p["raw"], p["scribbles"], str(ref / "rf.zarr/labels"), chunks,
                       params["trees"], params.get("workers")),
        "compare": (references.ref_compare, {s: p[s] for s in pipeline.SEGMENTATIONS}, p["truth"]),
    }
    func, *args = calls[stage]
    try:
        _, rss, out = measure.peak_rss_of(func, *args)
    except RuntimeError as exc:  # e.g. MemoryError on a machine busier than estimated: report, go on
        return {"name": references.NAMES[stage], "skipped": f"failed: {exc}"}
    return {"name": references.NAMES[stage], "seconds": out["seconds"], "voxels_per_s": voxels / out["seconds"],
            "peak_rss_bytes": int(rss), "extra": out["extra"]}


def _check(stage: str, extra: dict, ref: dict) -> dict | None:
    """Whether gpuseg and the reference found the same (where the stage has one number to compare)."""
    if "seconds" not in ref:
        return None
    key = {"otsu": "threshold", "compare": "accuracy"}.get(stage)
    if key is None:
        return None
    ours, theirs = extra.get(key), ref["extra"].get(key)
    return {"what": key, "gpuseg": ours, "reference": theirs, "equal": ours == theirs}


def _line(r: dict) -> str:
    text = (f"bench {r['size']}³ {r['stage']:<10} {r['device']}: {r['seconds']:.2f} s, {fmt_rate(r['voxels_per_s'])}, "
            f"peak RSS {fmt_bytes(r['peak_rss_bytes'])}")
    if r["peak_gpu_bytes"] is not None:
        text += f", GPU pool {fmt_bytes(r['peak_gpu_bytes'])}"
    ref = r["reference"]
    if ref is None:
        return text
    if "seconds" in ref:
        return text + f"; {ref['name']} {ref['seconds']:.2f} s, ratio {r['ratio']:.2f}"
    return text + f"; reference skipped: {ref['skipped']}"


def run(
    sizes: Sequence[int],
    stages: Sequence[str] = pipeline.STAGES,
    devices: Sequence[str] = ("cpu",),
    *,
    preset: str = "nmc-1",
    sigma: float = 1.0,
    trees: int = 100,
    features: str = "default",
    chunks: int | None = None,
    workers: int | None = None,
    workdir: str | Path | None = None,
    keep: bool = False,
    command: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the pipeline; return the JSON-ready result.

    Parameters
    ----------
    sizes : sequence of int
        Edge N of the N³ phantoms.
    stages : sequence of str
        Stages wanted (:data:`.pipeline.STAGES`); the stages they need run too.
    devices : sequence of {"cpu", "gpu"}
    preset, sigma, trees, features, chunks, workers
        Phantom preset, Gaussian sigma, forest size and features, chunk edge (default
        :func:`default_chunks`), worker threads.
    workdir : path, optional
        Where the data go (default: a temporary folder). What this run creates there is
        removed at the end unless ``keep``.
    command : str, optional
        The command line to record (default: this process's).
    say : callable, optional
        Called with one line per finished stage.

    Returns
    -------
    dict
        ``gpuseg_version``, ``date``, ``command``, ``machine``, ``parameters``, ``setup``
        (per size) and ``results``: one record per (size, stage, device) with ``voxels``,
        ``seconds``, ``voxels_per_s``, ``peak_rss_bytes``, ``peak_gpu_bytes`` (None on the
        CPU), ``shares`` ({io, compute, transfer} or None) with ``shares_note``, ``phase_seconds``,
        ``blocks``, ``reference`` ({name, seconds, voxels_per_s, peak_rss_bytes} or {name, skipped}),
        ``ratio`` (gpuseg voxels/s ÷ reference voxels/s, or None) and ``check``.
    """
    order = pipeline.plan(stages)
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    params = {"preset": preset, "sigma": float(sigma), "trees": int(trees), "features": features,
              "chunks": int(chunks) if chunks else None,
              "workers": workers, "setup_device": "auto" if "gpu" in devices else "cpu"}
    result: dict[str, Any] = {
        "gpuseg_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "machine": measure.machine(),
        "parameters": {"sizes": [int(s) for s in sizes], "stages_asked": list(stages), "stages": order,
                       "devices": list(devices), "scheduler": "threads", **{k: v for k, v in params.items() if k != "setup_device"}},
        "setup": [], "results": [],
    }
    made_root = workdir is None
    root = Path(tempfile.mkdtemp(prefix="gpuseg-bench-")) if workdir is None else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    try:
        for size in sizes:
            folder = root / f"s{size}"
            folder.mkdir()
            made.append(folder)
            sized = {**params, "chunks": params["chunks"] or default_chunks(int(size))}
            seconds, rss, info = measure.peak_rss_of(pipeline.setup, str(folder), int(size), sized)
            result["setup"].append({"size": int(size), "chunks": sized["chunks"], "seconds": seconds,
                                    "peak_rss_bytes": int(rss), **info})
            say(f"bench {size}³ setup (untimed): phantom {preset}, TIFF slices, scribbles in {seconds:.1f} s")
            _run_size(result, folder, int(size), order, list(stages), list(devices), sized,
                      np.dtype(info["raw_dtype"]).itemsize, say)
    finally:
        if not keep:
            for folder in made:
                outputs.remove(folder)
            if made_root:
                outputs.remove(root)
    result["workdir"] = str(root) if keep else None
    return result


def _run_size(result, folder: Path, size: int, order, asked, devices, params, itemsize: int, say) -> None:
    voxels = size**3
    found: dict[str, dict[str, Any]] = {d: {} for d in devices}
    failed: dict[str, set[str]] = {d: set() for d in ("cpu", *devices)}
    refs: dict[str, dict] = {}
    for stage in order:
        for device in ["cpu"] if stage in pipeline.HOST_ONLY else devices:
            record: dict[str, Any] = {"size": size, "stage": stage, "device": device, "voxels": voxels,
                                      "chunks": params["chunks"], "requested": stage in asked}
            missing = [n for n in pipeline.NEEDS[stage] if n in failed["cpu" if n in pipeline.HOST_ONLY else device]]
            if missing:
                failed[device].add(stage)
                result["results"].append({**record, "error": f"not run: needs {', '.join(missing)}, which failed"})
                continue
            try:
                seconds, rss, out = measure.peak_rss_of(pipeline.run_stage, stage, str(folder), device, params, found[device])
            except RuntimeError as exc:
                failed[device].add(stage)
                result["results"].append({**record, "error": str(exc)})
                say(f"bench {size}³ {stage} {device}: FAILED: {exc}")
                continue
            for d in found if stage in pipeline.HOST_ONLY else [device]:
                found[d][stage] = out["extra"]
            shares, note = shares_of(out)
            record.update(seconds=out["seconds"], voxels_per_s=voxels / out["seconds"], peak_rss_bytes=int(rss),
                          peak_gpu_bytes=out["peak_gpu_bytes"], shares=shares, shares_note=note,
                          phase_seconds=out.get("phase_seconds"), blocks=out["blocks"], extra=out["extra"])
            if stage not in refs:
                refs[stage] = (_reference(stage, str(folder), device, params, found[device], voxels, itemsize)
                               if stage in references.NAMES else {"name": None, "skipped": "no whole-array reference for this stage"})
            ref = refs[stage]
            record["reference"] = ref
            record["ratio"] = record["voxels_per_s"] / ref["voxels_per_s"] if "seconds" in ref else None
            record["check"] = _check(stage, out["extra"], ref)
            result["results"].append(record)
            say(_line(record))
