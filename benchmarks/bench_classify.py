"""Pixel classification end to end (features + forest prediction): gpuseg beside scikit-image, same input, same run.

For each size N this makes an ``nmc-1`` phantom tomogram of N³ (gpuseg.phantom), scribbles
on 7 equally spaced z-slices (10 % of each slice, drawn from the truth), and times, each in
a fresh process (wall time of features + prediction, peak RSS of the whole process):

* gpuseg: ``default`` features (20 channels, ilastik mode) and a 100-tree forest trained
  once on the scribbles (``gpuseg.classify.train``, outside the timing), then
  ``classify.predict`` zarr → zarr, block by block (64³ chunks), on the CPU with 1 and 2
  workers (threads), and on the GPU when one is usable;
* scikit-image: ``skimage.feature.multiscale_basic_features`` (intensity, edges, texture;
  4 sigmas in 3-D = 20 channels), ``skimage.future.fit_segmenter`` (the same 100-tree
  ``RandomForestClassifier``, same seed, same scribbles; its time is excluded) and
  ``predict_segmenter``, the whole stack in memory, ``n_jobs`` = 2.

The table gives voxels/s of features + prediction, peak RSS, and the ratio of each
gpuseg row's throughput to scikit-image's at the same size.

Usage: ``python benchmarks/bench_classify.py [--sizes 128 256] [--skip-skimage-above 256]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import fmt_bytes, fmt_rate, machine, peak_rss_of, table

CHUNK = 64
TREES = 100


def prepare(n: int, folder: Path) -> None:
    """Phantom, scribbles and the gpuseg model, written to ``folder``."""
    from gpuseg import classify, io, phantom
    from gpuseg.classify.scribbles import random_scribbles

    raw, truth = phantom.make("nmc-1", (n, n, n), seed=0)
    io.create_array(folder / "v.zarr/raw", raw.shape, raw.dtype, (CHUNK,) * 3)[:] = raw
    np.save(folder / "raw.npy", raw)
    np.save(folder / "scribbles.npy", random_scribbles(truth))
    np.save(folder / "truth.npy", truth)
    classify.train(folder / "v.zarr/raw", folder / "scribbles.npy", features="default", trees=TREES,
                   model=folder / "model.npz", device="cpu")


def run_gpuseg(folder: str, device: str, workers: int, tag: str) -> dict:
    from gpuseg import classify, io

    folder = Path(folder)
    t0 = time.perf_counter()
    classify.predict(folder / "v.zarr/raw", folder / "model.npz", folder / f"{tag}.zarr/labels", device=device,
                     chunks=CHUNK, scheduler="threads", workers=workers)
    seconds = time.perf_counter() - t0
    labels = io.open_array(folder / f"{tag}.zarr/labels")[:]
    truth = np.load(folder / "truth.npy")
    return {"seconds": seconds, "accuracy": float(np.mean((labels == 1) == (truth == 1)))}


def run_skimage(folder: str, workers: int) -> dict:
    from gpuseg.bench.references import skimage_classifier

    folder = Path(folder)
    r = skimage_classifier(np.load(folder / "raw.npy"), np.load(folder / "scribbles.npy"), TREES, workers)
    truth = np.load(folder / "truth.npy")
    return {"seconds": r["features"] + r["predict"], "fit": r["fit"], "channels": r["channels"],
            "accuracy": float(np.mean((r["labels"] == 1) == (truth == 1)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--skip-skimage-above", type=int, default=256, help="scikit-image holds the whole stack in memory")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="gpuseg CPU worker counts")
    args = parser.parse_args()
    from gpuseg.backend import gpu_status

    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-classify-{n}-") as tmp:
            _, _, _ = peak_rss_of(prepare, n, Path(tmp))
            results = []
            if n <= args.skip_skimage_above:
                _, rss, r = peak_rss_of(run_skimage, tmp, 2)
                results.append((f"scikit-image ({r['channels']} ch), 2 threads", r, rss))
            ref = results[0][1]["seconds"] if results else None
            for w in args.workers:
                _, rss, r = peak_rss_of(run_gpuseg, tmp, "cpu", w, f"cpu{w}")
                results.append((f"gpuseg default (20 ch), CPU, {w} worker(s)", r, rss))
            if gpu_status()[0]:
                _, rss, r = peak_rss_of(run_gpuseg, tmp, "gpu", 1, "gpu")
                results.append(("gpuseg default (20 ch), GPU", r, rss))
            for name, r, rss in results:
                ratio = f"{ref / r['seconds']:.2f}x" if ref else "-"
                rows.append([f"{n}³", name, f"{r['seconds']:.1f} s", fmt_rate(n**3, r["seconds"]), fmt_bytes(rss),
                             ratio, f"{r['accuracy'] * 100:.2f} %"])
    print(f"machine: {machine()}")
    print(f"forest: {TREES} trees, scribbles on 7 slices (10 %), nmc-1 phantom; times: features + prediction")
    print(table(rows, ["size", "method", "time", "throughput", "peak RSS", "vs scikit-image", "AM accuracy"]))


if __name__ == "__main__":
    main()
