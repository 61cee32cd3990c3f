"""The forest's accuracy/cost curve: trees × depth × min_samples_leaf against accuracy, agreement and node visits.

    python benchmarks/forest_size.py [--size 96] [--presets nmc-1 ...] [--real-noise nmc-1 nmc-2] [--msl 1 3 10]

For each case — the six phantom presets at SIZE³, and a simulated CT of the central SIZE³ of the real
NMC-1 geometry in ``../shared/data`` at two noise levels (skipped where the folder is absent) — the study's
scribbles (7 slices × 10 %, three classes) train 100-tree forests with each ``min_samples_leaf``, on the
``default`` features. Then:

* **sizing** (what ``gpuseg train`` does by default): :func:`gpuseg.classify.sizing.size` on the unlabelled
  voxels of the central 64³ crop: kept trees K and cut depth, agreement with the grown forest there;
* **held-out**: up to 250 000 unlabelled voxels outside that crop (never used for the choice): the kept
  forest's agreement with the grown forest, accuracy of both against the phantom's truth (active material
  vs the rest, as ``docs/classify.md``), and mean inner-node visits per voxel summed over the trees;
* **curve**: the same on the held-out voxels for the first k trees, cut at each depth.

Prints the machine, the inputs and three tables (markdown).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
from _util import machine

from gpuseg import classify, phantom
from gpuseg import features as feat
from gpuseg.classify import cpu, sizing
from gpuseg.classify import forest as fo
from gpuseg.classify.scribbles import random_scribbles
from gpuseg.volumes import central_region

DATA = Path(__file__).resolve().parents[2] / "shared/data/nmc-1-cal_generatedCBD_bridge.tif"
PRESETS = ("nmc-1", "nmc-2", "gra-1", "gra-2", "nex-v", "nex-u")


def cases(args):
    for preset in args.presets:
        yield preset, lambda p=preset: phantom.make(p, (args.size,) * 3, seed=args.seed)
    if args.real_noise and not DATA.exists():
        print(f"({DATA} absent: the real geometry is skipped)")
        return
    for noise in args.real_noise:
        def make(noise=noise):
            import tifffile

            labels = tifffile.imread(DATA)
            start = [(s - args.size) // 2 for s in labels.shape]
            labels = labels[tuple(slice(a, a + args.size) for a in start)]
            return phantom.make(noise, labels=labels, label_map={0: 3, 1: 1, 2: 2}, seed=args.seed)
        yield f"real NMC-1, {noise} noise", make


def run_case(name, make, args, summary, curve, grid):
    raw, truth = make()
    scribbles = random_scribbles(truth, seed=args.seed)
    spec = classify.feature_spec("default")
    X = feat.compute_block(raw.astype(np.float32), spec).reshape(spec.channels, -1).T
    labelled = scribbles.ravel() > 0
    crop = np.zeros(raw.shape, bool)
    crop[central_region(raw.shape, min(args.crop, *raw.shape))] = True
    crop = crop.ravel()
    sample = crop & ~labelled
    held = np.flatnonzero(~crop & ~labelled)
    rng = np.random.default_rng(args.seed)
    held = np.sort(rng.choice(held, min(len(held), args.held_out), replace=False))
    b = classify.pixel.SIZING_BLOCK
    blocks = np.indices(raw.shape).reshape(3, -1) // b
    groups = np.ravel_multi_index(tuple(blocks), tuple(-(-n // b) for n in raw.shape))
    truth_active = truth.ravel() == 1
    index = np.indices(raw.shape).reshape(3, -1)[:, held]
    inner = np.min(np.minimum(index, np.array(raw.shape)[:, None] - 1 - index), axis=0) >= args.edge
    for msl in args.msl:
        t0 = time.perf_counter()
        forest = fo.train(X[labelled], scribbles.ravel()[labelled], trees=args.trees, random_state=args.seed,
                          workers=args.workers, min_samples_leaf=msl)
        t1 = time.perf_counter()
        kept, s = sizing.size(forest, X[sample], groups=groups[sample])
        t2 = time.perf_counter()
        c = sizing.curves(forest, X[held], depths=args.depths,
                       score=lambda labels: float(np.mean((labels == 1) == truth_active[held])))
        grown_labels = forest.classes[np.argmax(cpu.predict_proba(X[held], forest), axis=1)]
        kept_labels = kept.classes[np.argmax(cpu.predict_proba(X[held], kept), axis=1)]
        acc = lambda labels: float(np.mean((labels == 1) == truth_active[held]))
        summary.append([name, msl, s.grown_depth, f"{forest.n_nodes / forest.n_trees:.0f}", s.trees,
                        s.depth if s.depth < s.grown_depth else "–", f"{100 * s.agreement:.3f} ± {100 * s.stderr:.3f}",
                        f"{100 * np.mean((kept_labels == grown_labels)[inner]):.3f} / "
                        f"{100 * np.mean((kept_labels == grown_labels)[~inner]):.3f}",
                        f"{s.grown_visits:.0f} → {s.visits:.0f} (−{100 * (1 - s.visits / s.grown_visits):.0f} %)",
                        f"{100 * acc(grown_labels):.2f} → {100 * acc(kept_labels):.2f}",
                        f"{t1 - t0:.1f} / {t2 - t1:.1f}"])
        ks = [k for k in args.ks if k <= forest.n_trees]
        if msl == args.msl[0]:
            curve.append([name, *(f"{100 * c.agreement[0, k - 1]:.2f} / {100 * c.score[0, k - 1]:.2f} / "
                                  f"{c.visits[0, k - 1]:.0f}" for k in ks)])
        for j, depth in enumerate(c.depths):
            grid.append([name, msl, f"{depth}{' (grown)' if j == 0 else ''}",
                         *(f"{100 * c.agreement[j, k - 1]:.2f} / {100 * c.score[j, k - 1]:.2f} / "
                           f"{c.visits[j, k - 1]:.0f}" for k in ks)])
        print(f"  {name}, min_samples_leaf {msl}: {summary[-1][4]} trees kept, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)


def table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="phantom edge and real-geometry crop (default 96)")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--real-noise", nargs="*", default=["nmc-1", "nmc-2"], help="noise presets of the real geometry")
    parser.add_argument("--msl", type=int, nargs="+", default=[1, 3, 10], help="min_samples_leaf values")
    parser.add_argument("--depths", type=int, nargs="+", default=[12, 8, 6], help="cut depths of the curve")
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 50, 80, 100], help="tree counts of the curve")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--crop", type=int, default=classify.COMPARE_SIZE, help="sizing crop edge (train's default)")
    parser.add_argument("--held-out", type=int, default=250_000)
    parser.add_argument("--edge", type=int, default=8, help="held-out voxels this close to a face are shown apart")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    summary, curve, grid = [], [], []
    start = time.perf_counter()
    for name, make in cases(args):
        run_case(name, make, args, summary, curve, grid)
    print(f"# forest size — {datetime.date.today()}, {machine()}")
    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(f"inputs: phantoms {args.size}³ (seed {args.seed}), real geometry central {args.size}³; scribbles 7 slices × 10 %, "
          f"`default` features, {args.trees} trees; sizing sample: unlabelled voxels of the central {args.crop}³; "
          f"held-out: ≤ {args.held_out} unlabelled voxels outside it, drawn at random; {time.perf_counter() - start:.0f} s in all\n")
    print(table(summary, ["case", "min_samples_leaf", "grown depth", "nodes/tree", "K kept", "cut depth",
                          "agreement on crop, % (± s.e.)",
                          f"held-out agreement, % (≥ / < {args.edge} voxels from a face)", "node visits/voxel grown → kept",
                          "accuracy %, grown → kept", "fit / sizing s"]))
    print()
    print("Curve, min_samples_leaf", args.msl[0], "uncut; each cell: agreement with all trees % / accuracy % / "
          "node visits per voxel, held-out voxels\n")
    print(table(curve, ["case", *(f"k = {k}" for k in args.ks)]))
    print("\nGrid: trees × depth × min_samples_leaf; each cell: agreement with the grown forest of the same "
          "min_samples_leaf % / accuracy % / node visits per voxel, held-out voxels\n")
    print(table(grid, ["case", "min_samples_leaf", "depth", *(f"k = {k}" for k in args.ks)]))


if __name__ == "__main__":
    main()
