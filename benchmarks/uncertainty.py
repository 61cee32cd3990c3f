"""How well one user's interval predicts the spread the other simulated users show.

    python benchmarks/uncertainty.py [--presets nmc-1 ...] [--seeds 0 1] [--size 80] [--users 4] \\
        [--protocols MLX10,MLX25,ML1] [--trees 20] [--workdir DIR] [--analyze-only]

For every phantom preset × seed (``SIZE³``, the phantom's truth) it runs ``gpuseg study`` (the protocols given,
raw and filtered, USERS simulated users, forests of TREES trees) into ``WORKDIR/PRESET-sSEED`` (a rerun resumes
it), and keeps, per variant × protocol, each user's active fraction (their labels) and the voxel counts of their
forest's probabilities (:class:`gpuseg.study.uncertainty.ProbabilitySummary`) in ``WORKDIR/records.json``.
Everything below is computed from those records (``--analyze-only`` recomputes it without running anything).

Each method turns one user's probabilities into an interval with one free parameter, calibrated so that the
other users' fractions fall inside a user's interval in :data:`gpuseg.study.uncertainty.COVERAGE` of the cases:

* ``threshold ±δ``: the fraction as the decision threshold on p(active) moves by ± δ;
* ``threshold ±0.25 × c``: that interval at δ = 0.25 (:data:`gpuseg.study.uncertainty.DELTA`), widened c times
  around the fraction (what gpuseg reports, c = :data:`gpuseg.study.uncertainty.WIDEN`);
* ``soft − hard``: the labels' fraction ± c · |mean p(active) − the labels' fraction|;
* ``mean margin``: ± c · the mean of ``1 − |p(active) − p(rest)|`` (ilastik's uncertainty);
* ``Bernoulli``: ± 1.645 · √(Σ p (1 − p)) / N, every voxel an independent coin (no calibration: what
  treating the probabilities as independent errors promises);
* ``constant``: ± c, the same for every user (the baseline a method must beat: it knows nothing of the forest).

Held out: the parameter is calibrated on seed 0 of three presets and reported on seed 1 of the other three,
and the other way round (:data:`FOLDS`); each held-out group is seen by one calibration only. Reported per
protocol: how often the other users' fractions fall inside (coverage), the Pearson and Spearman correlation
across groups (phantom × seed × variant) of the users' mean interval width with the observed std (n − 1), and
the median width / std; how repeatable the observed std itself is (seed 0 against seed 1); the parameter
calibrated on every group, and the coverage of gpuseg's own constants on these records (on records of
another size or seed, that is a further held-out check). Then the MLX result after the central slice alone
against after the corrections.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _util import machine

from gpuseg import io, phantom
from gpuseg.study import protocols as pr
from gpuseg.study import run_study, uncertainty

PRESETS = ("nmc-1", "nmc-2", "gra-1", "gra-2", "nex-v", "nex-u")
FOLDS = (("nmc-1", "gra-1", "nex-v"), ("nmc-2", "gra-2", "nex-u"))
"""Calibrate on seed 0 of one set, report on seed 1 of the other (low-noise and high-noise presets mixed)."""
Z90 = 1.6448536269514722  # the normal quantile of a two-sided 90 % interval
SHIPPED = "threshold ±0.25 × c"


# --------------------------------------------------------------------------- running the studies


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every preset × seed's study (resumed where done); the records of its forest users."""
    records: list[dict[str, Any]] = []
    path = Path(args.workdir, "records.json")
    kept = {(r["preset"], r["seed"]) for r in json.loads(path.read_text())} if path.exists() else set()
    if kept:
        records = json.loads(path.read_text())
    for preset in args.presets:
        for seed in args.seeds:
            if (preset, seed) in kept:
                continue
            start = time.perf_counter()
            records += study_records(args, preset, seed)
            print(f"{preset} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
            path.write_text(json.dumps(records))
    return [r for r in records if r["preset"] in args.presets and r["seed"] in args.seeds]


def study_records(args: argparse.Namespace, preset: str, seed: int) -> list[dict[str, Any]]:
    folder = Path(args.workdir, f"{preset}-s{seed}")
    store = folder / "phantom.zarr"
    if not (store / "truth").exists():
        raw, truth = phantom.make(preset, (args.size,) * 3, seed=seed)
        for name, values in (("raw", raw), ("truth", truth)):
            io.create_array(store / name, values.shape, values.dtype, (args.size // 2,) * 3)[:] = values
    report = run_study(store / "raw", folder / "study", truth=store / "truth", protocols=args.protocols, users=args.users,
                       seed=seed, trees=args.trees, figures=False, device="cpu", workers=args.workers)
    out = []
    for res in report["results"]:
        if "interval_check" not in res:
            continue
        protocol = next(p for p in pr.parse_protocols(res["protocol"]))
        users = []
        for u in res["users"]:
            work = os.path.join(folder, "study", "work", res["variant"], res["protocol"], u["user"])
            users.append({"fraction": u["active_fraction"], "error": u["active_fraction_error"],
                          "accuracy": u["accuracy"],
                          "summary": uncertainty.summarize(os.path.join(work, pr.PROBABILITIES)).to_dict()})
        central = res.get("central_slice") or {}
        out.append({"preset": preset, "seed": seed, "variant": res["variant"], "protocol": res["protocol"],
                    "kind": protocol.kind, "truth_fraction": report["truth_fractions"]["fractions"]["1"], "users": users,
                    "central": [{"fraction": u["active_fraction"], "error": u["active_fraction_error"],
                                 "accuracy": u["accuracy"]} for u in central.get("users", [])]})
    return out


# --------------------------------------------------------------------------- the methods


Interval = Callable[[uncertainty.ProbabilitySummary, float, float], tuple[float, float]]


def _threshold(s: uncertainty.ProbabilitySummary, fraction: float, delta: float) -> tuple[float, float]:
    found = s.interval(delta, widen=1)
    return found.low, found.high


def _widened(s: uncertainty.ProbabilitySummary, fraction: float, c: float) -> tuple[float, float]:
    found = s.interval(uncertainty.DELTA, widen=c)
    return found.low, found.high


def _symmetric(spread: Callable[[uncertainty.ProbabilitySummary, float], float]) -> Interval:
    def interval(s: uncertainty.ProbabilitySummary, fraction: float, c: float) -> tuple[float, float]:
        half = c * spread(s, fraction)
        return fraction - half, fraction + half
    return interval


def _mean_margin(s: uncertainty.ProbabilitySummary, fraction: float) -> float:
    margin = np.abs(np.arange(-uncertainty.LEVELS, uncertainty.LEVELS + 1)) / uncertainty.LEVELS
    return float(s.margin_counts @ (1 - margin)) / s.voxels


def _bernoulli(s: uncertainty.ProbabilitySummary, fraction: float) -> float:
    p = np.arange(uncertainty.LEVELS + 1) / uncertainty.LEVELS
    return math.sqrt(float(s.probability_counts @ (p * (1 - p)))) / s.voxels


METHODS: dict[str, tuple[Interval, np.ndarray | None]] = {  # the interval, and the grid its parameter is chosen on
    "threshold ±δ": (_threshold, np.arange(0, 2 * uncertainty.LEVELS // 2 + 1) / (2 * uncertainty.LEVELS)),
    "threshold ±0.25 × c": (_widened, np.linspace(0, 10, 1001)),
    "soft − hard": (_symmetric(lambda s, f: abs(s.soft_fraction() - f)), np.linspace(0, 100, 2001)),
    "mean margin": (_symmetric(_mean_margin), np.linspace(0, 2, 801)),
    "Bernoulli": (_symmetric(_bernoulli), None),
    "constant": (_symmetric(lambda s, f: 1.0), np.linspace(0, 0.5, 1001)),
}


def intervals(records: Sequence[dict[str, Any]], method: str, parameter: float) -> list[list[tuple[float, float]]]:
    func = METHODS[method][0]
    return [[func(uncertainty.ProbabilitySummary.from_dict(u["summary"]), u["fraction"], parameter) for u in r["users"]]
            for r in records]


def coverage(records: Sequence[dict[str, Any]], found: Sequence[Sequence[tuple[float, float]]]) -> tuple[int, int]:
    """Other users' fractions inside each user's interval, and how many were compared."""
    inside = compared = 0
    for r, group in zip(records, found):
        for i, (low, high) in enumerate(group):
            for j, other in enumerate(r["users"]):
                if i != j:
                    compared += 1
                    inside += low <= other["fraction"] <= high
    return inside, compared


def calibrate(records: Sequence[dict[str, Any]], method: str, target: float) -> float:
    """The smallest parameter on the method's grid whose intervals hold ``target`` of the others (nested in it)."""
    grid = METHODS[method][1]
    if grid is None:
        return Z90
    for value in grid:
        inside, compared = coverage(records, intervals(records, method, float(value)))
        if inside >= target * compared:
            return float(value)
    return float(grid[-1])


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def evaluate(records: Sequence[dict[str, Any]], method: str, parameters: Sequence[float]) -> dict[str, Any]:
    """Coverage of the others, of the truth, and how the mean width follows the observed std across groups;
    ``parameters``: the method's parameter for each record (that of the calibration that did not see it)."""
    found = [intervals([r], method, p)[0] for r, p in zip(records, parameters)]
    inside, compared = coverage(records, found)
    width = np.array([np.mean([h - lo for lo, h in g]) for g in found])
    std = np.array([_std([u["fraction"] for u in r["users"]]) for r in records])
    truth = sum(lo <= r["truth_fraction"] <= h for r, g in zip(records, found) for lo, h in g)
    varies = len(records) > 2 and width.std() > 0
    return {"coverage": inside / compared, "compared": compared, "truth_inside": truth / sum(len(g) for g in found),
            "pearson": float(np.corrcoef(width, std)[0, 1]) if varies else float("nan"),
            "spearman": _spearman(width, std) if varies else float("nan"),
            "ratio": float(np.median(width / np.maximum(std, 1e-12))), "mean_width": float(width.mean()),
            "mean_std": float(std.mean())}


# --------------------------------------------------------------------------- the tables


def analyze(records: list[dict[str, Any]], target: float) -> None:
    protocols = sorted({r["protocol"] for r in records}, key=lambda p: (p.startswith("ML") and not p.startswith("MLX"), p))
    groups = {"all forests": protocols, **{p: [p] for p in protocols}}
    print(f"\n{len(records)} groups (phantom × seed × variant × protocol), "
          f"{len(records[0]['users'])} users each; target coverage {target:.0%}\n")
    folded = any(r["seed"] == 0 for r in records) and any(r["seed"] == 1 for r in records)
    if folded:
        print("| method | protocols | parameter (fold 1 / 2) | coverage of others | truth inside | width / std (median) "
              "| Pearson r | Spearman ρ |")
        print("|---|---|---|---|---|---|---|---|")
    for method in METHODS if folded else []:
        for label, names in groups.items():
            held: list[dict[str, Any]] = []
            per_record: list[float] = []
            params = []
            for calibrate_on, report_on in (FOLDS, FOLDS[::-1]):
                cal = [r for r in records if r["preset"] in calibrate_on and r["seed"] == 0 and r["protocol"] in names]
                out = [r for r in records if r["preset"] in report_on and r["seed"] == 1 and r["protocol"] in names]
                if not cal or not out:
                    continue
                params.append(calibrate(cal, method, target))
                held += out
                per_record += [params[-1]] * len(out)
            if not held:
                continue
            pooled = evaluate(held, method, per_record)
            print(f"| {method} | {label} | {' / '.join(f'{p:.3g}' for p in params)} | {pooled['coverage']:.0%} "
                  f"({pooled['compared']}) | {pooled['truth_inside']:.0%} | {pooled['ratio']:.2f} | "
                  f"{pooled['pearson']:+.2f} | {pooled['spearman']:+.2f} |")
    repeatability(records, groups)
    print(f"\ngpuseg's interval, c calibrated on every group here, and gpuseg's constants (δ {uncertainty.DELTA:g}, "
          f"c {uncertainty.WIDEN:g}) on them:")
    for label, names in groups.items():
        chosen = [r for r in records if r["protocol"] in names]
        c = calibrate(chosen, SHIPPED, target)
        e = evaluate(chosen, SHIPPED, [uncertainty.WIDEN] * len(chosen))
        print(f"  {label}: c = {c:.3g}; with c {uncertainty.WIDEN:g}: coverage of others {e['coverage']:.0%} "
              f"({e['compared']}), truth inside {e['truth_inside']:.0%}, mean width {e['mean_width']:.4f}, mean std "
              f"{e['mean_std']:.4f}, Pearson r {e['pearson']:+.2f}")
    soft = [abs(uncertainty.ProbabilitySummary.from_dict(u["summary"]).soft_fraction() - r["truth_fraction"])
            for r in records for u in r["users"]]
    hard = [abs(u["error"]) for r in records for u in r["users"]]
    print(f"\npoint estimates, mean |fraction − truth's|: labels (hard) {np.mean(hard):.4f}, mean p (soft) "
          f"{np.mean(soft):.4f}")
    central_table(records)


def repeatability(records: list[dict[str, Any]], groups: dict[str, list[str]]) -> None:
    """How well the observed std of one seed predicts that of the other seed of the same preset, variant and
    protocol: the most any one-user prediction could be expected to reach with this many users."""
    print("\nrepeatability of the observed spread itself: the std (n − 1) of seed 0 against seed 1 of the same "
          "preset × variant × protocol")
    for label, names in groups.items():
        pairs = {}
        for r in records:
            if r["protocol"] in names:
                pairs.setdefault((r["preset"], r["variant"], r["protocol"]), {})[r["seed"]] = \
                    _std([u["fraction"] for u in r["users"]])
        both = np.array([[v[0], v[1]] for v in pairs.values() if 0 in v and 1 in v])
        if len(both) > 2:
            print(f"  {label}: Pearson r {np.corrcoef(both.T)[0, 1]:+.2f}, Spearman ρ {_spearman(*both.T):+.2f} "
                  f"({len(both)} pairs)")


def central_table(records: list[dict[str, Any]]) -> None:
    """MLX: mean |error| and misclassified share after the central slice alone and after the corrections."""
    rows = [r for r in records if r["central"]]
    if not rows:
        return
    print("\nMLX after the central slice alone vs after the six correction slices (mean over users; ratio = after / "
          "before, the issue asks ≤ 0.5)\n")
    print("| protocol | variant | groups | |error| before | |error| after | ratio | groups ≤ 0.5 | misclassified before "
          "| after | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for protocol in sorted({r["protocol"] for r in rows}):
        for variant in ("raw", "filtered"):
            chosen = [r for r in rows if r["protocol"] == protocol and r["variant"] == variant]
            if not chosen:
                continue
            before = [np.mean([abs(u["error"]) for u in r["central"]]) for r in chosen]
            after = [np.mean([abs(u["error"]) for u in r["users"]]) for r in chosen]
            wrong_before = np.mean([1 - u["accuracy"] for r in chosen for u in r["central"]])
            wrong_after = np.mean([1 - u["accuracy"] for r in chosen for u in r["users"]])
            halved = sum(a <= 0.5 * b for a, b in zip(after, before))
            print(f"| {protocol} | {variant} | {len(chosen)} | {np.mean(before):.4f} | {np.mean(after):.4f} | "
                  f"{np.mean(after) / np.mean(before):.2f} | {halved}/{len(chosen)} | {wrong_before:.4f} | "
                  f"{wrong_after:.4f} | {wrong_after / wrong_before:.2f} |")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--size", type=int, default=80)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--protocols", default="MLX10,MLX25,ML1")
    p.add_argument("--trees", type=int, default=20)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--coverage", type=float, default=uncertainty.COVERAGE, help="the target coverage of others")
    p.add_argument("--workdir", default="uncertainty-bench")
    p.add_argument("--analyze-only", action="store_true", help="recompute the tables from WORKDIR/records.json")
    args = p.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}")
    print("command: python " + " ".join(sys.argv))
    start = time.perf_counter()
    if args.analyze_only:
        records = json.loads(Path(args.workdir, "records.json").read_text())
    else:
        records = run(args)
        print(f"studies: {time.perf_counter() - start:.0f} s wall")
    analyze(records, args.coverage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
