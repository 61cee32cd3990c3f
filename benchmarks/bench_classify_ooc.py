"""Out-of-core random-forest segmentation: phantom → scribbles → train → predict → compare, peak RSS per step.

    python benchmarks/bench_classify_ooc.py --size 1024 --workdir /tmp/gpuseg-rf

Every step is the real CLI in a fresh process (peak RSS summed over its process tree):

1. ``gpuseg phantom`` writes an ``nmc-1`` tomogram and its truth (SIZE³, uint16 + uint8);
2. scribbles on 7 equally spaced z-slices, 10 % of each, drawn from the truth one slice at a
   time into a sparse zarr (untimed);
3. ``gpuseg train`` (``--features``, ``--trees``): features only around the annotated slices;
4. ``gpuseg predict`` block by block: the step the memory goal is about (issue 5: 1024³ with
   the ``default`` features under 3 GiB; issue 6: 2048³ end to end under 4 GiB);
5. ``gpuseg compare --two-phase`` against the truth: active-material accuracy and |Δ fraction|.

Nothing here holds the volume: the scribbles are written slice by slice and the comparison
is chunked. ``--keep`` leaves the work folder for a rerun with ``--reuse``.

``--old-tree DIR`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/old COMMIT``)
runs step 4 alternately with that code (``PYTHONPATH=DIR``) and with this one, ``--repeat``
times each, on the same model and input: an A/B of the predictor on one machine under one load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import fmt_bytes, fmt_rate, machine, peak_rss_of_command, table

from gpuseg.bench.pipeline import write_scribbles  # scribbles on 7 slices, 10 %, slice by slice

GOALS = {1024: 3 * 2**30, 2048: 4 * 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--features", default="default")
    parser.add_argument("--trees", type=int, default=None,
                        help="grow and keep N trees (default: gpuseg's default, a forest sized by the data)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", default="/tmp/gpuseg-rf")
    parser.add_argument("--reuse", action="store_true", help="keep an existing phantom, scribbles and model")
    parser.add_argument("--keep", action="store_true", help="leave the work folder behind")
    parser.add_argument("--old-tree", help="a checkout of earlier code: predict with it too, alternately (A/B)")
    parser.add_argument("--repeat", type=int, default=1, help="predict runs per code (with --old-tree)")
    args = parser.parse_args()
    work = Path(args.workdir)
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    gpuseg = str(Path(sys.executable).with_name("gpuseg"))
    common = ["--workers", str(args.workers), "-q"]
    n, size = args.size**3, f"{args.size}³"
    rows = []

    def step(name: str, argv: list[str], what: str, prefix: tuple[str, ...] | list[str] = ()) -> int:
        t, rss = peak_rss_of_command([*prefix, gpuseg, *argv])
        rows.append([name, what, fmt_rate(n, t), f"{t:.0f} s", fmt_bytes(rss)])
        print(rows[-1], flush=True)
        return rss

    v = work / "v.zarr"
    if not (args.reuse and (work / "model.npz").exists()):
        step("phantom nmc-1", ["phantom", str(v), "--preset", "nmc-1", "--shape", *[str(args.size)] * 3,
                                "--device", args.device, *common], f"{size} raw + truth")
        write_scribbles(v / "truth", work / "scribbles.zarr/labels")
        trees = [] if args.trees is None else ["--trees", str(args.trees)]
        step(f"train ({args.features}, {'sized' if args.trees is None else args.trees} trees)",
             ["train", str(v / "raw"), "--labels", str(work / "scribbles.zarr/labels"), "--model", str(work / "model.npz"),
              "--features", args.features, *trees, "--device", args.device, *common],
             "7 slices × 10 %")
    predict = ["predict", str(v / "raw"), "--model", str(work / "model.npz"), str(work / "seg.zarr/labels"),
               "--device", args.device, *common]
    for _ in range(args.repeat if args.old_tree else 1):
        if args.old_tree:
            shutil.rmtree(work / "seg.zarr", ignore_errors=True)
            step("predict, old code", predict, f"{size} → uint8", ["env", f"PYTHONPATH={args.old_tree}"])
        shutil.rmtree(work / "seg.zarr", ignore_errors=True)
        rss = step("predict", predict, f"{size} → uint8")
    (work / "report.json").unlink(missing_ok=True)  # a --reuse run writes it again
    step("compare --two-phase", ["compare", str(work / "seg.zarr/labels"), "--truth", str(v / "truth"), "--two-phase",
                                 "--json", str(work / "report.json"), *common], f"{size} × 2")
    report = json.loads((work / "report.json").read_text())
    print(f"machine: {machine()}")
    from gpuseg import classify

    forest = classify.load(work / "model.npz")
    print(f"forest: {forest.n_trees} trees ({'sized by the data' if args.trees is None else 'fixed'}), "
          f"{forest.n_nodes} nodes, features {args.features!r}, {args.workers} workers, device {args.device}")
    print(table(rows, ["step", "input", "throughput", "time", "peak RSS"]))
    goal = GOALS.get(args.size)
    if goal:
        print(f"predict peak RSS {fmt_bytes(rss)} (goal < {fmt_bytes(goal)}: {'met' if rss < goal else 'NOT met'})")
    seg = report["segmentations"][0]
    print(f"active material vs truth: accuracy {seg['accuracy'] * 100:.2f} %, "
          f"Δ fraction {seg['fraction_deviation']['1']:+.4f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
