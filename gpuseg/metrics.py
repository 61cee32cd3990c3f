"""Voxel counts, volume fractions, variability across users and deviation from a truth, in one pass.

Everything comes from integer voxel counts summed over chunks
(:func:`gpuseg.engine.reduce.sum_over_chunks`): per volume, the count of every label; per pair
of volumes (every pair of segmentations, and each segmentation with the truth), the joint
counts of label pairs. One pass reads each chunk of every volume once; the sums are exact
int64 under any scheduler, including a dask.distributed cluster.

Definitions (label 0 = not assigned):

* fraction of phase p = voxels labelled p / voxels labelled 1..P;
* std of a phase fraction across the K segmentations with ddof = 1 (n − 1), as the study;
* a pair's differing voxels: voxels assigned in both whose labels differ; its percentage
  is relative to the voxels assigned in both (the study's image subtraction A − B);
* against a truth, every number is taken over the voxels the truth assigns (truth ≠ 0):
  confusion matrix ``C[t, s]`` (rows truth 0..P, columns segmentation 0..P),
  accuracy = Σ_p C[p, p] / voxels assigned in the truth, Dice_p = 2 C[p, p] / (row_p + col_p),
  IoU_p = C[p, p] / (row_p + col_p − C[p, p]) with col_p counted where the truth is assigned;
  fraction deviation = fraction − truth fraction, relative = that / truth fraction.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import backend
from .engine import Operation, Result, is_path, reduce, run, staging
from .engine.identity import input_signature
from .errors import InputError, ParameterError
from .io import metadata, zarrio
from .io.volume import info

MAX_DEFAULT_PHASES = 3
ACTIVE = 1


# --------------------------------------------------------------------------- the one pass


def counts_block(*blocks: Any, phases: int, two_phase: bool = False) -> Any:
    """Label counts of every block and joint counts of every pair, as one int64 vector.

    With ``two_phase``, every label above 1 (carbon-binder, pore, …) counts as 2, non-active.
    Labels outside ``0..phases`` are counted in an extra bin ``phases + 1``. Layout: for
    each of the V blocks ``phases + 2`` counts, then for each pair ``(i, j)``, ``i < j``,
    ``(phases + 2)²`` joint counts indexed ``a * (phases + 2) + b``.
    """
    xp = backend.for_array(blocks[0]).xp
    n = phases + 2
    clipped = []
    for b in blocks:
        flat = b.ravel()
        if two_phase:
            flat = xp.where(flat > ACTIVE, 2, flat)
        bad = (flat < 0) | (flat > phases) if np.dtype(b.dtype).kind == "i" else flat > phases
        clipped.append(xp.where(bad, phases + 1, flat).astype(xp.int32))
    parts = [backend.count(c, n) for c in clipped]
    for i, j in itertools.combinations(range(len(blocks)), 2):
        parts.append(backend.count(clipped[i] * n + clipped[j], n * n))
    return xp.concatenate(parts)


def _unpack(vector: np.ndarray, volumes: int, phases: int) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    n = phases + 2
    counts = vector[: volumes * n].reshape(volumes, n)
    joint, pos = {}, volumes * n
    for pair in itertools.combinations(range(volumes), 2):
        joint[pair] = vector[pos : pos + n * n].reshape(n, n)
        pos += n * n
    return counts, joint


def _check_dtype(x: Any, name: str) -> None:
    dtype = np.dtype(x.dtype)
    if dtype.kind not in "ui":
        raise InputError(f"{name}: dtype {dtype} is not a segmentation; labels must be integers (0 = unassigned, 1.. = phases)")


def _declared_phases(sources: Sequence[Any]) -> int | None:
    found: list[int] = []
    for s in sources:
        if is_path(s) and (declared := metadata_phases(s)) is not None:
            found.append(declared)
    return max(found) if found else None


def metadata_phases(path: str | os.PathLike) -> int | None:
    """The ``phases`` attribute gpuseg writes on segmentations, if ``path`` is zarr and has one."""
    from .io.paths import parse
    from .io.volume import info

    if parse(path).kind != "zarr":
        return None
    value = info(path).attrs.get("phases")
    return int(value) if value is not None else None


def _name(source: Any, index: int) -> str:
    return os.fspath(source) if is_path(source) else f"segmentation {index}"


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


# --------------------------------------------------------------------------- public API


def compare(
    segmentations: Sequence[Any],
    truth: Any = None,
    *,
    phases: int | None = None,
    two_phase: bool = False,
    names: Sequence[str] | None = None,
    chunks: int | Sequence[int] | None = None,
    device: str = "cpu",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fractions, user variability and (with a truth) accuracy of K segmentations, in one pass.

    Parameters
    ----------
    segmentations : sequence of paths or arrays
        uint8 (any integer) labels: 0 = not assigned, 1..P = phases (1 = active material).
    truth : path or array, optional
        A base truth labelled the same way.
    phases : int, optional
        P. Default: the largest ``phases`` attribute of the inputs, else up to 3, and the
        phases reported are 1..(largest label found).
    two_phase : bool
        Count every label above 1 as 2 (non-active: carbon-binder and pore together), as the
        study's image subtraction does; compares two-phase segmentations with a three-phase truth.
    names : sequence of str, optional
        Names in the report (default: the paths).
    chunks : int or (z, y, x), optional
        Read chunk shape (default: the first input's chunks).
    device, scheduler, workers, progress : see :func:`gpuseg.engine.reduce.sum_over_chunks`.

    Returns
    -------
    dict
        JSON-ready: ``phases``, ``segmentations`` (name, path, counts, assigned voxels,
        ``fractions``, and with a truth ``accuracy``, ``confusion``, ``dice``, ``iou``,
        ``fraction_deviation``, ``relative_fraction_deviation``), ``fraction_std`` (per phase),
        ``active_fraction_std``, ``pairs`` (``a``, ``b``, ``differing``, ``compared``,
        ``percent``), ``mean_pairwise_percent``, and ``truth`` (name, counts, fractions).

    Raises
    ------
    InputError
        Shapes differ, a volume is not of integers, or holds labels outside ``0..P``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[[1, 1, 2, 2]]], np.uint8)
    >>> b = np.array([[[1, 2, 2, 2]]], np.uint8)
    >>> r = compare([a, b], truth=a, scheduler="synchronous")
    >>> [s["fractions"]["1"] for s in r["segmentations"]], r["pairs"][0]["percent"]
    ([0.5, 0.25], 25.0)
    >>> [s["accuracy"] for s in r["segmentations"]]
    [1.0, 0.75]
    >>> three = np.array([[[1, 3, 2, 3]]], np.uint8)  # 1 active, 2 carbon-binder, 3 pore
    >>> compare([a], truth=three, two_phase=True, scheduler="synchronous")["segmentations"][0]["accuracy"]
    0.75
    """
    segmentations = list(segmentations)
    if not segmentations:
        raise ParameterError("compare needs at least one segmentation")
    sources = segmentations + ([truth] if truth is not None else [])
    labels = [_name(s, i) for i, s in enumerate(segmentations)]
    if names is not None:
        if len(names) != len(segmentations):
            raise ParameterError(f"{len(names)} names given for {len(segmentations)} segmentations")
        labels = list(names)
    all_names = labels + ([os.fspath(truth) if is_path(truth) else "truth"] if truth is not None else [])
    if two_phase:
        if phases not in (None, 2):
            raise ParameterError(f"phases {phases} contradicts two_phase (active and non-active: 2 phases)")
        phases = 2
    declared = phases if phases is not None else _declared_phases(sources)
    limit = declared if declared is not None else MAX_DEFAULT_PHASES
    if limit < 1 or limit > 254:
        raise ParameterError(f"phases {limit} must be between 1 and 254")
    with contextlib.ExitStack() as stack:
        arrays = [stack.enter_context(reduce.open_dask(s, chunks, progress=progress)) for s in sources]
        for x, name in zip(arrays, all_names):
            _check_dtype(x, name)
            if x.ndim != 3:
                raise InputError(f"{name}: expected a 3-D segmentation (z, y, x), found shape {x.shape}")
        for x, name in zip(arrays[1:], all_names[1:]):
            if x.shape != arrays[0].shape:
                raise InputError(
                    f"{name}: shape {x.shape} differs from {all_names[0]} {arrays[0].shape}; compare segmentations of the same volume"
                )
        vector = reduce.sum_over_chunks(
            counts_block, arrays, kwargs={"phases": limit, "two_phase": two_phase}, device=device, scheduler=scheduler,
            workers=workers, progress=progress, desc="compare",
        )
    counts, joint = _unpack(vector, len(sources), limit)
    for name, c in zip(all_names, counts):
        if c[-1]:
            raise InputError(
                f"{name}: {int(c[-1])} voxels have labels outside 0..{limit}; label phases 1..{limit} "
                f"(0 = unassigned){'' if phases else ', or pass --phases (or --two-phase to merge all non-active phases)'}"
            )
    top = declared if declared is not None else max(1, int(max(np.flatnonzero(c[: limit + 1]).max(initial=0) for c in counts)))
    report = summarize(counts[:, : top + 1], {k: v[: top + 1, : top + 1] for k, v in joint.items()}, labels,
                       all_names[-1] if truth is not None else None)
    for seg, source in zip(report["segmentations"], segmentations):
        seg["path"] = os.fspath(source) if is_path(source) else None
    report["phase_names"] = {str(p): n for p, n in _phase_names(sources, report["phases"], two_phase).items()}
    return report


def _phase_names(sources: Sequence[Any], phases: Sequence[int], two_phase: bool) -> dict[int, str]:
    """Names of the phases compared: those the segmentations store (the first that names a phase), else the
    convention. Two-phase comparisons are active / non-active whatever the inputs call their labels."""
    if two_phase:
        return dict(metadata.PHASE_NAMES[2])
    stored: dict[int, str] = {}
    for source in sources:
        attrs = info(source).attrs if is_path(source) else dict(getattr(source, "attrs", {}) or {})
        stored = {**metadata.stored_label_names(attrs), **stored}
    return metadata.label_names(phases, {"phase_names": stored})


def summarize(
    counts: np.ndarray, joint: Mapping[tuple[int, int], np.ndarray], names: Sequence[str], truth_name: str | None
) -> dict[str, Any]:
    """Turn label counts ``(V, P + 1)`` and pair joint counts ``(P + 1, P + 1)`` into the report.

    The last volume is the truth when ``truth_name`` is given.
    """
    phases = counts.shape[1] - 1
    keys = [str(p) for p in range(1, phases + 1)]
    k = len(names)

    def fractions(c: np.ndarray) -> dict[str, float | None]:
        assigned = int(c[1:].sum())
        return {key: _ratio(c[p], assigned) for key, p in zip(keys, range(1, phases + 1))}

    segs: list[dict[str, Any]] = []
    for i in range(k):
        c = counts[i]
        segs.append({
            "name": names[i], "counts": {str(p): int(c[p]) for p in range(phases + 1)},
            "assigned": int(c[1:].sum()), "fractions": fractions(c),
        })
    report: dict[str, Any] = {"phases": list(range(1, phases + 1)), "voxels": int(counts[0].sum()), "segmentations": segs}
    fr = np.array([[np.nan if s["fractions"][key] is None else s["fractions"][key] for key in keys] for s in segs])
    std = np.std(fr, axis=0, ddof=1) if k > 1 else np.full(phases, np.nan)
    report["fraction_std"] = {key: _float(v) for key, v in zip(keys, std)}
    report["active_fraction_std"] = report["fraction_std"].get(str(ACTIVE))
    pairs = []
    for i, j in itertools.combinations(range(k), 2):
        m = joint[(i, j)][1:, 1:]
        compared, same = int(m.sum()), int(np.trace(m))
        pairs.append({"a": names[i], "b": names[j], "differing": compared - same, "compared": compared,
                      "percent": _pct(compared - same, compared)})
    report["pairs"] = pairs
    report["mean_pairwise_percent"] = _float(np.mean([p["percent"] for p in pairs])) if pairs and all(p["percent"] is not None for p in pairs) else None
    if truth_name is not None:
        t = counts[k]
        report["truth"] = {"name": truth_name, "counts": {str(p): int(t[p]) for p in range(phases + 1)},
                           "fractions": fractions(t)}
        for i, seg in enumerate(segs):
            seg.update(_against_truth(joint[(i, k)].T, seg["fractions"], report["truth"]["fractions"], keys))
    return report


def _against_truth(conf_full: np.ndarray, fr: Mapping[str, Any], truth_fr: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Scores of one segmentation from ``conf_full[t, s]`` (truth rows, segmentation columns)."""
    conf = conf_full[1:, :]  # voxels the truth assigns
    evaluated = int(conf.sum())
    out: dict[str, Any] = {"confusion": conf_full.astype(int).tolist(), "evaluated": evaluated,
                           "accuracy": _ratio(sum(int(conf[p - 1, p]) for p in range(1, len(keys) + 1)), evaluated)}
    dice: dict[str, float | None] = {}
    iou: dict[str, float | None] = {}
    dev: dict[str, float | None] = {}
    rel: dict[str, float | None] = {}
    for p, key in enumerate(keys, start=1):
        tp, row, col = int(conf[p - 1, p]), int(conf[p - 1, :].sum()), int(conf[:, p].sum())
        dice[key] = _ratio(2 * tp, row + col)
        iou[key] = _ratio(tp, row + col - tp)
        if fr[key] is None or truth_fr[key] is None:
            dev[key] = rel[key] = None
        else:
            dev[key] = deviation = fr[key] - truth_fr[key]
            rel[key] = _ratio(deviation, truth_fr[key])
    out.update(dice=dice, iou=iou, fraction_deviation=dev, relative_fraction_deviation=rel,
               active_fraction_deviation=dev.get(str(ACTIVE)), relative_active_fraction_deviation=rel.get(str(ACTIVE)))
    return out


def _pct(num: int, den: int) -> float | None:
    return 100.0 * num / den if den else None


def _float(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


# --------------------------------------------------------------------------- difference volume


def difference_block(a: Any, b: Any, *, phase: int = ACTIVE) -> Any:
    """The study's A − B image of one phase: +1 only A has it, −1 only B, 0 same or unassigned (int8)."""
    xp = backend.for_array(a).xp
    assigned = (a != 0) & (b != 0)
    diff = (a == phase).astype(xp.int8) - (b == phase).astype(xp.int8)
    return xp.where(assigned, diff, xp.int8(0)).astype(xp.int8)


def write_difference(
    a: str | os.PathLike,
    b: str | os.PathLike,
    output: str | os.PathLike,
    *,
    phase: int = ACTIVE,
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> str:
    """Write the difference volume (int8, −1/0/+1) of two zarr segmentations, block by block.

    Returns
    -------
    str
        ``output``.
    """
    if os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b)):
        raise InputError(f"{a}: is given twice; compare two different segmentations")
    with staging.zarr_output(output, overwrite, progress) as target, \
            staging.zarr_input(a, output, chunks, progress) as xa, staging.zarr_input(b, f"{output}-b", chunks, progress) as xb:
        if xa.shape != xb.shape:
            raise InputError(f"{b}: shape {xb.shape} differs from {a} {xa.shape}; compare segmentations of the same volume")
        attrs = metadata.provenance(source=f"{a} - {b}", phase=phase, meaning="+1: only A has the phase; -1: only B",
                                    **metadata.inherit(xa.attrs.asdict()))
        run.run(DIFFERENCE.bind({"phase": int(phase)}, np.int8), [xa, xb], {"output": target}, shape=xa.shape,
                chunks=zarrio.normalize_chunks(chunks or xa.chunks, xa.shape), attrs=attrs,
                identity=[input_signature(a), input_signature(b)], input_paths=[a, b], device="cpu",
                scheduler=scheduler, workers=workers, overwrite=overwrite, progress=progress)
    return os.fspath(output)


DIFFERENCE = Operation("difference", difference_block, results={"output": Result(np.int8)},
                       same_on_every_device=True)
