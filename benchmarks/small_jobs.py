"""Small jobs as a new user runs them: whole-process `gpuseg train` + `predict` against scikit-image's trainable segmentation.

    python benchmarks/small_jobs.py --quick        # 5 x 499 x 601 stack (--2d) and 71 x 256 x 256 (about 2-5 min)
    python benchmarks/small_jobs.py                # adds 256^3
    python benchmarks/small_jobs.py --no-profile   # only the timings
    python benchmarks/small_jobs.py --quick --repeat 3   # three rounds taking turns; medians (a shared machine)

Inputs (gpuseg.phantom, preset nmc-2, seed 0) are written as TIFF, with their truth. Scribbles are a label TIFF:
blobs (a smoothed random field above its quantile) covering ``--coverage`` (volumes: 7 equally spaced slices,
10 %) or ``--stack-coverage`` (the stack: every slice, 2 %) of each painted slice, labelled with the truth.

Timed as whole processes (wall clock, peak RSS summed over the process tree):

* gpuseg: ``gpuseg train IMG --labels S.tif --model m.npz [--2d] -q`` + ``gpuseg predict IMG --model m.npz out.tif -q``
  (default forest sizing), and the same with ``--full-forest`` for the label agreement with the full forest;
* scikit-image: this file run as ``--skimage-ref IMG S.tif OUT [--2d]`` in its own process (imports numpy,
  tifffile, scikit-image and scikit-learn only): ``multiscale_basic_features`` (sigma 0.7-5, 4 scales, as
  ``gpuseg bench``; per slice with ``--2d``, 3-D otherwise), ``fit_segmenter`` with
  ``RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)``, ``predict_segmenter``, TIFF out.

Accuracy: active material (truth 1) against the rest, over the voxels the truth assigns (> 0).

The profile (the stack; skip with ``--no-profile``): ``python -X importtime`` of each command, ``gpuseg -v``
log lines, and cProfile of train and predict under ``--scheduler synchronous`` (cProfile sees one thread
only), summarised into categories; the halo overhead compares the block-wise features with one
``features.compute_block`` call on the whole volume.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TREES = 100
JOBS = 2
SIGMAS = {"sigma_min": 0.7, "sigma_max": 5.0, "num_sigma": 4}  # gpuseg.bench.references.SKIMAGE_SIGMAS


# ------------------------------------------------------------------ the scikit-image reference (own process)


def skimage_ref(image: str, scribbles: str, out: str, twod: bool) -> None:
    import tifffile
    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    t = [time.perf_counter()]
    raw = tifffile.imread(image)
    labels = tifffile.imread(scribbles)
    if twod:
        feats = np.stack([multiscale_basic_features(s, workers=JOBS, **SIGMAS) for s in raw])
    else:
        feats = multiscale_basic_features(raw, workers=JOBS, **SIGMAS)
    t.append(time.perf_counter())
    clf = fit_segmenter(labels, feats, RandomForestClassifier(n_estimators=TREES, n_jobs=JOBS, random_state=0))
    t.append(time.perf_counter())
    result = predict_segmenter(feats, clf)
    t.append(time.perf_counter())
    tifffile.imwrite(out, result.astype(np.uint8))
    t.append(time.perf_counter())
    d = np.diff(t)
    print(f"skimage phases: read+features {d[0]:.1f} s, fit {d[1]:.1f} s, predict {d[2]:.1f} s, write {d[3]:.1f} s",
          file=sys.stderr)


# ------------------------------------------------------------------ inputs


def blobs(shape: tuple[int, ...], coverage: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage as ndi

    field = ndi.gaussian_filter(rng.random(shape), 6)
    return field > np.quantile(field, 1 - coverage)


def make_case(work: Path, name: str, shape: tuple[int, int, int], coverage: float, every_slice: bool) -> dict:
    import tifffile

    from gpuseg import phantom

    raw, truth = phantom.make("nmc-2", shape, seed=0)
    rng = np.random.default_rng(0)
    scrib = np.zeros_like(truth)
    zs = range(shape[0]) if every_slice else np.linspace(0, shape[0] - 1, 9).round().astype(int)[1:-1]
    for z in zs:
        m = blobs(shape[1:], coverage, rng) & (truth[z] > 0)
        scrib[z][m] = truth[z][m]
    paths = {k: str(work / f"{name}_{k}.tif") for k in ("img", "scrib", "truth")}
    tifffile.imwrite(paths["img"], raw)
    tifffile.imwrite(paths["scrib"], scrib)
    tifffile.imwrite(paths["truth"], truth)
    return {"name": name, "shape": shape, "twod": every_slice, "labelled": int((scrib > 0).sum()),
            "slices": len(list(zs)), **paths}


# ------------------------------------------------------------------ timing


def timed(argv: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS of the process tree, stderr of a command."""
    from gpuseg.bench.measure import TreeSampler

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)  # its stdout is not the report
        sampler = TreeSampler(proc.pid)
        code = proc.wait()
        seconds = time.perf_counter() - t0
        peak = sampler.stop()
        err.seek(0)
        text = err.read()
    if code:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}:\n{text[-3000:]}")
    return seconds, peak, text


GPUSEG = [sys.executable, "-m", "gpuseg"]


def gpuseg_cmds(case: dict, tag: str, extra_train: list[str], pre: list[str] | None = None,
                opts: list[str] | None = None) -> tuple[list[str], list[str], str]:
    model = str(Path(case["img"]).with_name(f"{case['name']}_{tag}.npz"))
    out = str(Path(case["img"]).with_name(f"{case['name']}_{tag}_labels.tif"))
    base = pre if pre is not None else GPUSEG
    o = opts or []
    train = [*base, "train", case["img"], "--labels", case["scrib"], "--model", model,
             *(["--2d"] if case["twod"] else []), *extra_train, *o, "--overwrite", "-q"]
    predict = [*base, "predict", case["img"], "--model", model, out, *o, "--overwrite", "-q"]
    return train, predict, out


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    m = truth > 0
    return float(np.mean((labels[m] == 1) == (truth[m] == 1)))


def run_case(case: dict, rows: list, log, repeat: int = 1) -> None:
    """Time gpuseg (sized forest, full forest) and scikit-image on ``case``: ``repeat`` rounds, the three taking
    turns in each (so that a shared machine's load drifts over all of them alike); the median round counts."""
    import tifffile

    truth = tifffile.imread(case["truth"])
    runs: dict[str, list] = {"gpuseg": [], "gpuseg_full": [], "skimage": []}
    out = {}
    for _ in range(repeat):
        for tag, extra in (("gpuseg", []), ("gpuseg_full", ["--full-forest"])):
            train, predict, out[tag] = gpuseg_cmds(case, tag, extra)
            s1, p1, _ = timed(train)
            s2, p2, _ = timed(predict)
            runs[tag].append((s1 + s2, max(p1, p2), f"train {s1:.1f} + predict {s2:.1f}"))
            log(f"  {case['name']} {tag}: {runs[tag][-1][2]} s (load {os.getloadavg()[0]:.1f})")
        out["skimage"] = str(Path(case["img"]).with_name(f"{case['name']}_skimage_labels.tif"))
        s, p, err = timed([sys.executable, __file__, "--skimage-ref", case["img"], case["scrib"], out["skimage"],
                           *(["--2d"] if case["twod"] else [])])
        runs["skimage"].append((s, p, err.strip().splitlines()[-1].replace("skimage phases: ", "")))
        log(f"  {case['name']} skimage: {s:.1f} s ({runs['skimage'][-1][2]}; load {os.getloadavg()[0]:.1f})")
    res = {}
    for tag, timings in runs.items():
        sec, peak, detail = sorted(timings)[len(timings) // 2]
        if repeat > 1:
            detail += f" (median of {', '.join(f'{t[0]:.1f}' for t in timings)} s)"
        res[tag] = (sec, peak, tifffile.imread(out[tag]), detail)
    g, f, k = res["gpuseg"][2], res["gpuseg_full"][2], res["skimage"][2]
    shape = "×".join(map(str, case["shape"]))
    for tag, label in (("gpuseg", "gpuseg (sized forest)"), ("gpuseg_full", "gpuseg --full-forest"),
                       ("skimage", "scikit-image")):
        sec, peak, lab, detail = res[tag]
        rows.append([shape, label, f"{sec:.1f}", f"{res['skimage'][0] / sec:.2f}×", f"{peak / 2**20:.0f}",
                     f"{100 * accuracy(lab, truth):.2f}", detail])
    case["agreement"] = {
        "sized vs full forest (all labels)": 100 * float(np.mean(g == f)),
        "gpuseg vs scikit-image (all labels)": 100 * float(np.mean(g == k)),
        "gpuseg vs scikit-image (active vs rest)": 100 * float(np.mean((g == 1) == (k == 1))),
    }
    # the speed-up of each round (the load drifts less within a round than across), the median one counts
    rounds = sorted(k[0] / g[0] for g, k in zip(runs["gpuseg"], runs["skimage"]))
    case["ratio"] = rounds[len(rounds) // 2]
    case["rounds"] = rounds
    case["acc"] = (accuracy(g, truth), accuracy(k, truth))


# ------------------------------------------------------------------ profile


CATEGORIES = {  # category: (file substring, function name) whose cumulative time it is (largest match)
    "reading the input (into memory, or its TIFF→zarr copy when large)": [("engine/staging.py", "")],
    "features (blocks, with halos)": [("gpuseg/features.py", "compute_block")],
    "forest training": [("classify/forest.py", "train")],
    "forest sizing": [("classify/pixel.py", "_size")],
    "writing outputs": [("io/tiff.py", "write"), ("model_file.py", "save"), ("engine/outputs.py", "commit")],
}


def cumulative(stats, file_part: str, func: str) -> float:
    best = 0.0
    for (fname, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        if file_part in fname.replace("\\", "/") and (not func or func in name):
            best = max(best, ct)
    return best


def import_seconds(stderr: str) -> tuple[float, list[tuple[str, float]]]:
    top: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) == 1:  # a top-level import
            root = m.group(4).split(".")[0]
            top[root] = top.get(root, 0.0) + int(m.group(2)) / 1e6
    return sum(top.values()), sorted(top.items(), key=lambda kv: -kv[1])[:8]


def profile_case(case: dict, work: Path, log) -> dict:
    import pstats

    import tifffile

    from gpuseg import classify
    from gpuseg import features as feat

    out: dict = {"steps": {}}
    for step in ("train", "predict"):
        # 1. imports
        train, predict, _ = gpuseg_cmds(case, "prof", [], pre=[sys.executable, "-X", "importtime", "-m", "gpuseg"])
        argv = train if step == "train" else predict
        wall, _, err = timed(argv)
        imp, top = import_seconds(err)
        # 2. -v log (threads, as a user runs it)
        train, predict, _ = gpuseg_cmds(case, "prof", [], pre=[sys.executable, "-m", "gpuseg", "-v"])
        vwall, _, verr = timed(train if step == "train" else predict)
        vlines = [ln for ln in verr.splitlines() if ln.startswith("gpuseg:") or "kept" in ln]
        # 3. cProfile, synchronous scheduler
        prof = str(work / f"{step}.prof")
        train, predict, _ = gpuseg_cmds(case, "prof", [], pre=[sys.executable, "-m", "cProfile", "-o", prof,
                                                                "-m", "gpuseg"], opts=["--scheduler", "synchronous"])
        pwall, _, _ = timed(train if step == "train" else predict)
        stats = pstats.Stats(prof)
        total = max(ct for (_f, _l, _n), (_c, _nc, _t, ct, _cl) in stats.stats.items())
        cats = {"imports (cProfile, _find_and_load)": cumulative(stats, "importlib._bootstrap", "_find_and_load")}
        for cat, keys in CATEGORIES.items():
            cats[cat] = sum(cumulative(stats, f, n) for f, n in keys)
        # the scheduler's own time: dask's compute less the tasks it ran (a block, or a group of labelled voxels)
        cats["dask scheduling (compute − its tasks)"] = max(0.0, cumulative(stats, "engine/cluster.py", "compute")
                                                            - cumulative(stats, "engine/run.py", "_block_task")
                                                            - cumulative(stats, "classify/samples.py", "_features_at"))
        if step == "predict":
            cats["forest prediction (classify_block − features)"] = max(
                0.0, cumulative(stats, "classify/pixel.py", "classify_block") - cats["features (blocks, with halos)"])
        cats["other (interpreter, argparse, reads, scheduling)"] = max(0.0, total - sum(cats.values()))
        out["steps"][step] = {"wall_threads": wall, "wall_v": vwall, "wall_profiled": pwall, "imports_x": imp,
                              "top_imports": top, "log": vlines, "cats": cats, "total": total}
        log(f"  profiled {step}: {pwall:.1f} s under cProfile, {vwall:.1f} s with -v")
    # halo overhead: the features of the whole volume in one call
    raw = tifffile.imread(case["img"]).astype(np.float32)
    spec = classify.feature_spec("default", twod=case["twod"])
    t0 = time.perf_counter()
    feat.compute_block(raw, spec)
    out["whole_volume_features"] = time.perf_counter() - t0
    return out


def table(rows: list, header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--skimage-ref":
        skimage_ref(argv[1], argv[2], argv[3], "--2d" in argv[4:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="only the 5-slice stack and 71×256×256")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--coverage", type=float, default=0.10, help="painted fraction of the 7 slices (volumes)")
    p.add_argument("--stack-coverage", type=float, default=0.02, help="painted fraction of each stack slice")
    p.add_argument("--work", default=None, help="folder for inputs and outputs (default: a temporary one)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of the timed runs; the median counts (default 1)")
    args = p.parse_args(argv)

    from _util import machine

    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="small_jobs_"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"## Small jobs: whole-process gpuseg train + predict vs scikit-image ({datetime.date.today()})\n")
    print(f"Machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}\n")
    print(f"Command: `.venv/bin/python benchmarks/small_jobs.py {' '.join(argv)}`\n")
    specs = [("stack", (5, 499, 601), args.stack_coverage, True), ("v71", (71, 256, 256), args.coverage, False)]
    if not args.quick:
        specs.append(("v256", (256, 256, 256), args.coverage, False))
    cases = []
    for name, shape, cov, twod in specs:
        case = make_case(work, name, shape, cov, twod)
        log(f"{name}: {shape}, {case['labelled']} labelled voxels on {case['slices']} slices")
        cases.append(case)
    rows: list = []
    for case in cases:
        run_case(case, rows, log, args.repeat)
    print("Inputs: phantom nmc-2 seed 0; scribbles = blobs labelled with the truth: "
          + "; ".join(f"{'×'.join(map(str, c['shape']))}{' (--2d)' if c['twod'] else ''}: {c['labelled']} "
                      f"voxels on {c['slices']} slices" for c in cases) + "\n")
    print(table(rows, ["shape", "method", "wall s (train+predict)", "speed-up vs skimage", "peak RSS MiB",
                       "accuracy % (active vs rest)", "phases"]))
    print()
    agree = [["×".join(map(str, c["shape"])), *(f"{v:.3f}" for v in c["agreement"].values())] for c in cases]
    print(table(agree, ["shape", *(f"{k} %" for k in cases[0]["agreement"])]))
    print()
    print("Goals (≥ 5× at 256³, ≥ 1× on 5×499×601, sized labels within 0.2 % of the full forest's, accuracy ≥ skimage):")
    for c in cases:
        goal = 5.0 if c["shape"] == (256, 256, 256) else 1.0 if c["twod"] else None
        diff = 100 - c["agreement"]["sized vs full forest (all labels)"]
        print(f"- {'×'.join(map(str, c['shape']))}: speed-up {c['ratio']:.2f}×"
              + (f" (median round of {', '.join(f'{r:.2f}' for r in c['rounds'])})" if len(c["rounds"]) > 1 else "")
              + (f" ({'met' if c['ratio'] >= goal else 'NOT met'}, goal {goal:g}×)" if goal else " (no goal)")
              + f"; sized vs full {diff:.3f} % ({'met' if diff <= 0.2 else 'NOT met'})"
              + f"; accuracy {100 * c['acc'][0]:.2f} vs {100 * c['acc'][1]:.2f} % "
              + f"({'met' if c['acc'][0] >= c['acc'][1] else 'NOT met'})")
    print()
    if not args.no_profile:
        log("profiling the stack")
        prof = profile_case(cases[0], work, log)
        for step, s in prof["steps"].items():
            print(f"### Profile of `gpuseg {step}` on 5×499×601 --2d\n")
            print(f"Wall: {s['wall_threads']:.1f} s (threads, -X importtime), {s['wall_v']:.1f} s (-v), "
                  f"{s['wall_profiled']:.1f} s (cProfile, synchronous); python -X importtime: "
                  f"{s['imports_x']:.2f} s of imports, top: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in s["top_imports"]) + "\n")
            total = s["total"]
            crow = [[k, f"{v:.2f}", f"{100 * v / total:.0f} %"] for k, v in s["cats"].items()]
            print(table(crow, ["category (cProfile cumulative, synchronous)", "s", "share"]))
            print("\n`gpuseg -v` lines: " + " / ".join(f"`{ln}`" for ln in s["log"][:8]) + "\n")
        blocks = prof["steps"]["predict"]["cats"]["features (blocks, with halos)"]
        whole = prof["whole_volume_features"]
        print(f"Halo overhead: predict's block-wise features {blocks:.2f} s vs one compute_block on the whole "
              f"volume {whole:.2f} s (×{blocks / max(whole, 1e-9):.2f}).\n")
    print(f"(whole run {time.perf_counter() - t_start:.0f} s; load average at the end {os.getloadavg()[0]:.2f}; "
          f"work folder {work})")


if __name__ == "__main__":
    main()
