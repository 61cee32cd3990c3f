"""Which feature set should ``default`` be? Accuracy against cost, beside scikit-image, on the validation volumes.

For each validation volume (the six phantom presets, plus low-SNR variants from the noise
sweep) at SIZE³ this draws study-like scribbles (7 equally spaced z-slices, 10 % of each
painted from the truth: active material, carbon-binder, pore), then for every candidate
feature set:

* computes the feature stack of the whole volume on the CPU, one thread
  (gpuseg: ``features.compute_block``, ilastik mode; scikit-image:
  ``multiscale_basic_features(intensity, edges, texture, sigma_min=0.5, sigma_max=16)``
  in 3-D, ``workers=1``), and times it;
* trains scikit-learn's ``RandomForestClassifier`` (100 trees, ``random_state=0``,
  ``n_jobs=2``) on the feature vectors of the scribbled voxels;
* predicts every unlabelled voxel and scores active material vs the rest against the truth.

It prints the volume × set accuracy table, channels, feature seconds, and for every set its
worst-case difference to scikit-image's accuracy over the volumes (>= 0: never worse).

Usage: ``python benchmarks/feature_defaults.py [--size 80] [--quick] [--sets NAME ...] [--volumes NAME ...]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import machine, table

TREES = 100
SKIMAGE = "skimage"

DEFAULT_ITEMS = ("gaussian:0.7,gaussian:1,gaussian:1.6,gaussian:3.5,gaussian:5,laplacian:1,laplacian:3.5,"
                 "gradient:1,gradient:3.5,dog:1.6,dog:3.5,st:1.6,hessian:1,hessian:3.5")

#: Candidate sets: name → gpuseg specification text, or SKIMAGE.
CANDIDATES: dict[str, str] = {
    "default": "default",
    "ilastik-full": "ilastik-full",
    SKIMAGE: SKIMAGE,
    # default plus intensity at a small scale (ilastik mode: 0.3 smoothed twice, about 0.42)
    "default+g0.3": DEFAULT_ITEMS + ",gaussian:0.3",
    # default plus context: smoothing at the largest ilastik scale (cupping, drift, low SNR)
    "default+g10": DEFAULT_ITEMS + ",gaussian:10",
    "default+g0.3+g10": DEFAULT_ITEMS + ",gaussian:0.3,gaussian:10",
    # default plus the Hessian eigenvalues at a small and at a larger scale
    "default+g0.3+h0.7": DEFAULT_ITEMS + ",gaussian:0.3,hessian:0.7",
    "default+g10+h5": DEFAULT_ITEMS + ",gaussian:10,hessian:5",
    # plain mode (no ilastik pre-smoothing: scales <= 1 are not doubled) with intensity at 0.5, like scikit-image's
    "plain:default+g0.5": "plain:" + DEFAULT_ITEMS + ",gaussian:0.5",
    # fewer scales, wider span: a cheap set that still reaches 10
    "lean": "gaussian:0.7,gaussian:1.6,gaussian:3.5,gaussian:10,gradient:1,gradient:3.5,dog:3.5,hessian:1,hessian:3.5,hessian:10",
}

#: Validation volumes: name → (preset, snr or None for the preset's own).
VOLUMES: dict[str, tuple[str, float | None]] = {
    "nmc-1": ("nmc-1", None), "nmc-2": ("nmc-2", None), "gra-1": ("gra-1", None), "gra-2": ("gra-2", None),
    "nex-v": ("nex-v", None), "nex-u": ("nex-u", None),
    "nmc-2@snr1.5": ("nmc-2", 1.5), "nmc-1@snr1.5": ("nmc-1", 1.5),
}
QUICK_SETS = ("default", SKIMAGE, "default+g0.3", "default+g0.3+g10")
QUICK_VOLUMES = ("nmc-1", "gra-1", "nmc-2@snr1.5")


def feature_stack(image: np.ndarray, candidate: str) -> tuple[np.ndarray, float]:
    """(channels, z, y, x) float32 features of ``image`` and the seconds they took."""
    from gpuseg import features

    t0 = time.perf_counter()
    if candidate == SKIMAGE:
        from skimage.feature import multiscale_basic_features

        stack = multiscale_basic_features(image, intensity=True, edges=True, texture=True, sigma_min=0.5,
                                          sigma_max=16, channel_axis=None, workers=1)
        stack = np.moveaxis(stack, -1, 0).astype(np.float32, copy=False)
    else:
        mode, _, text = candidate.partition(":") if candidate.startswith("plain:") else ("ilastik", "", candidate)
        stack = features.compute_block(image.astype(np.float32), features.parse_features(text, mode=mode))
    return np.ascontiguousarray(stack), time.perf_counter() - t0


def accuracy(stack: np.ndarray, scribbles: np.ndarray, truth: np.ndarray) -> float:
    """Active-material accuracy (%) on the unlabelled voxels of a forest trained on the scribbled ones."""
    from sklearn.ensemble import RandomForestClassifier

    labelled = scribbles > 0
    X = stack.reshape(stack.shape[0], -1).T
    flat = labelled.ravel()
    clf = RandomForestClassifier(n_estimators=TREES, random_state=0, n_jobs=2)
    clf.fit(X[flat], scribbles.ravel()[flat])
    predicted = clf.predict(X[~flat])
    right = (predicted == 1) == (truth.ravel()[~flat] == 1)
    return float(right.mean() * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="edge of the cubic volumes (default 64)")
    parser.add_argument("--quick", action="store_true",
                        help=f"48³, sets {', '.join(QUICK_SETS)}, volumes {', '.join(QUICK_VOLUMES)}")
    parser.add_argument("--sets", nargs="+", choices=list(CANDIDATES), default=None)
    parser.add_argument("--volumes", nargs="+", choices=list(VOLUMES), default=None)
    parser.add_argument("--seed", type=int, default=0, help="phantom and scribble seed")
    args = parser.parse_args()
    from gpuseg import phantom
    from gpuseg.classify.scribbles import random_scribbles

    size = 48 if args.quick and args.size == 64 else args.size
    sets = args.sets or list(QUICK_SETS if args.quick else CANDIDATES)
    if SKIMAGE not in sets:
        sets.append(SKIMAGE)
    volumes = args.volumes or list(QUICK_VOLUMES if args.quick else VOLUMES)
    print(f"{machine()}; {size}³, seed {args.seed}, {TREES} trees", flush=True)

    acc: dict[tuple[str, str], float] = {}
    secs: dict[tuple[str, str], float] = {}
    channels: dict[str, int] = {}
    t_start = time.perf_counter()
    for vname in volumes:
        preset, snr = VOLUMES[vname]
        raw, truth = phantom.make(preset, (size,) * 3, seed=args.seed, snr=snr)
        scribbles = random_scribbles(truth, seed=args.seed)
        for sname in sets:
            stack, seconds = feature_stack(raw, CANDIDATES[sname])
            channels[sname] = stack.shape[0]
            acc[vname, sname] = accuracy(stack, scribbles, truth)
            secs[vname, sname] = seconds
            del stack
            print(f"  {vname:>13} {sname:<22} {channels[sname]:>3} ch  {seconds:6.2f} s  {acc[vname, sname]:6.2f} %"
                  f"  [{time.perf_counter() - t_start:.0f} s]", flush=True)

    header = ["set", "channels", "feature s (mean)", *volumes, "mean", "worst vs skimage"]
    rows = []
    for sname in sets:
        values = [acc[v, sname] for v in volumes]
        worst = min(acc[v, sname] - acc[v, SKIMAGE] for v in volumes)
        rows.append([sname, channels[sname], f"{np.mean([secs[v, sname] for v in volumes]):.2f}",
                     *(f"{a:.2f}" for a in values), f"{np.mean(values):.2f}", f"{worst:+.2f}"])
    print()
    print(table(rows, header))
    print()
    for sname in sets:
        if CANDIDATES[sname] not in (SKIMAGE, "default", "ilastik-full"):
            print(f"{sname}: {channels[sname]} channels, spec {CANDIDATES[sname]}")
    ok = [s for s in sets if s != SKIMAGE and all(acc[v, s] >= acc[v, SKIMAGE] for v in volumes)]
    ok.sort(key=lambda s: (channels[s], np.mean([secs[v, s] for v in volumes])))
    print(f"sets never below scikit-image on these volumes, cheapest first: {', '.join(ok) or 'none'}")


if __name__ == "__main__":
    main()
