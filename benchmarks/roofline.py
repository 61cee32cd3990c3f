"""Roofline per pipeline stage: bytes and operations per voxel against this machine's measured limits.

    python benchmarks/roofline.py [--model MODEL.npz] [--cores N] [--block 256]

What it does:

1. **Counts the work per voxel** of each stage by running gpuseg's own code on a small
   block: every separable 1-D filter pass (voxels × taps) of the Gaussian and of the
   ``default`` feature set is counted by wrapping ``gpuseg.filters``; the forest's node
   visits per voxel come from scikit-learn's ``decision_path`` on real features (a 100-tree
   forest trained on an ``nmc-1`` phantom's scribbles, or ``--model``).
2. **Measures the limits** of this machine: the codecs gpuseg writes with (zstd 3 for integers, bit-shuffled lz4 for
   floats) encode and decode per core on real chunks (CT grey values, float32 smoothed, uint8 labels), DRAM copy
   bandwidth, scipy's 1-D filter rate per core and scikit-learn's node-visit rate; on a
   GPU also device copy and host↔device bandwidth (pageable, as gpuseg copies).
3. **Prints the bound of each resource** per stage (voxels/s it would allow alone, for
   ``--cores`` cores) and which one binds. Halo re-reads enlarge the decoded bytes by
   ``((b + 2h) / b)³`` for ``--block`` b.

Measured throughputs to hold against the bounds are in ``RESULTS.md`` (and ``gpuseg bench``'s JSON).
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

SIGMA = 2.0  # the Gaussian stage as benchmarked (bench_filter.py, bench_out_of_core.py)


def rate(func, repeat: int = 3) -> float:
    """Best wall time of ``func()`` over ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------- work per voxel


def count_passes(func, *args, **kwargs) -> tuple[float, float]:
    """(1-D filter passes, taps summed over passes) per output voxel of ``func(*args)`` (gpuseg.filters wrapped)."""
    from gpuseg import filters

    seen = []
    original = filters._filter_1d

    def counting(data, sigma, order, axis, truncate=4.0, mode="reflect", kernel="scipy"):
        seen.append((data.size, 2 * filters.kernel_radius_1d(sigma, truncate) + 1))
        return original(data, sigma, order, axis, truncate, mode, kernel)

    filters._filter_1d = counting
    try:
        out = func(*args, **kwargs)
    finally:
        filters._filter_1d = original
    voxels = np.prod(out.shape[-3:])
    return sum(n for n, _ in seen) / voxels, sum(n * t for n, t in seen) / voxels


def feature_work(n: int = 128):
    from gpuseg import classify, features

    spec = classify.feature_spec("default")
    h = spec.halo[0]
    block = np.random.default_rng(0).random((n + 2 * h,) * 3, dtype=np.float32)
    inner = (slice(h, h + n),) * 3
    passes, taps = count_passes(features.compute_block, block, spec, inner=inner)
    return spec, passes, taps


def forest_and_features(model: str | None):
    """A forest (the given model, or 100 trees trained on an nmc-1 phantom's scribbles) and a block of its features."""
    from gpuseg import classify, features, phantom
    from gpuseg.classify import forest

    raw, truth = phantom.make("nmc-1", (96, 96, 96), seed=0)
    spec = classify.feature_spec("default")
    stack = features.compute_block(raw.astype(np.float32), spec)
    X = np.ascontiguousarray(stack.reshape(spec.channels, -1).T)
    if model:
        return classify.load(model), X
    rng = np.random.default_rng(0)
    picked = np.zeros(truth.shape, bool)
    for z in np.linspace(0, 95, 9).round().astype(int)[1:-1]:
        picked[z] = rng.random(truth.shape[1:]) < 0.10
    return forest.train(X[picked.ravel()], truth.ravel()[picked.ravel()], trees=100), X


def node_visits(fo_forest, X: np.ndarray) -> tuple[float, float]:
    """(mean inner-node visits per voxel over all trees, measured seconds per visit on one core)."""
    from gpuseg.classify import forest, layout, walk

    packed = layout.pack(fo_forest)
    sample = X[np.random.default_rng(1).choice(len(X), 20000, replace=False)]
    leaves = layout.breadth_first(fo_forest)[walk.apply(sample, packed)]  # (trees, rows)
    visits = float(forest.node_depth(fo_forest)[leaves].sum(axis=0).mean())  # a leaf at depth d: d inner nodes
    seconds = rate(lambda: walk.proba_sums(sample, packed), 2)
    return visits, seconds / (visits * len(sample))


# --------------------------------------------------------------------------- machine limits


def codec_speeds(chunk: np.ndarray) -> tuple[float, float, float]:
    """(encode B/s, decode B/s, compression ratio) on one core, in uncompressed bytes, of the codec
    gpuseg writes this dtype with (``gpuseg.io.zarrio.compressor_for``; numcodecs' twin of it)."""
    from numcodecs import Blosc, Zstd

    from gpuseg.io.zarrio import COMPRESSOR_LEVEL, compressor_for

    name = compressor_for(chunk.dtype).to_dict()["name"]
    codec = Blosc("lz4", 5, Blosc.BITSHUFFLE) if name == "blosc" else Zstd(level=COMPRESSOR_LEVEL)
    data = np.ascontiguousarray(chunk)
    encoded = codec.encode(data)
    enc = rate(lambda: codec.encode(data))
    dec = rate(lambda: codec.decode(encoded))
    return data.nbytes / enc, data.nbytes / dec, data.nbytes / len(encoded)


def dram_bandwidth() -> float:
    """Bytes moved per second (read + write) by a 256 MiB copy on one core."""
    a = np.ones(2**26, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / rate(lambda: np.copyto(b, a))


def filter_tap_rate() -> float:
    """Voxel-taps per second of scipy's separable 1-D Gaussian pass (float32, 17 taps) on one core."""
    import scipy.ndimage as ndi

    x = np.random.default_rng(0).random((128, 128, 128), dtype=np.float32)
    out = np.empty_like(x)
    return x.size * 17 / rate(lambda: ndi.gaussian_filter1d(x, 2.0, axis=1, output=out))


def gpu_limits() -> dict | None:
    from gpuseg.backend import gpu_status

    if not gpu_status()[0]:
        return None
    import cupy

    a = cupy.ones(2**28, cupy.float32)
    b = cupy.empty_like(a)
    host = np.ones(2**27, np.float32)

    def timed(f):
        f()
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        f()
        cupy.cuda.Device().synchronize()
        return time.perf_counter() - t0

    device = 2 * a.nbytes / timed(lambda: cupy.copyto(b, a))
    h2d = host.nbytes / timed(lambda: cupy.asarray(host))
    dev_small = cupy.asarray(host)
    d2h = host.nbytes / timed(lambda: dev_small.get())
    return {"device": device, "h2d": h2d, "d2h": d2h}


# --------------------------------------------------------------------------- the roofline


def fmt(v: float) -> str:
    for unit, scale in (("GVox/s", 1e9), ("MVox/s", 1e6), ("kVox/s", 1e3)):
        if v >= scale:
            return f"{v / scale:.1f} {unit}"
    return f"{v:.0f} Vox/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a gpuseg model file (default: train 100 trees on a 96³ nmc-1 phantom)")
    parser.add_argument("--cores", type=int, default=None, help="cores the bounds assume (default: this machine's)")
    parser.add_argument("--block", type=int, default=256, help="work block edge, for the halo re-read factor")
    args = parser.parse_args()
    import os

    from gpuseg import filters, phantom

    cores = args.cores or os.cpu_count()
    raw, truth = phantom.make("nmc-1", (128, 128, 128), seed=0)
    smooth = filters.gaussian(raw, SIGMA, device="cpu")
    codecs = {
        "raw": codec_speeds(raw),
        "float32": codec_speeds(smooth),
        "labels": codec_speeds((truth == 1).astype(np.uint8) + 1),
    }
    dram, taps_rate = dram_bandwidth(), filter_tap_rate()
    spec, feat_passes, feat_taps = feature_work()
    forest, X = forest_and_features(args.model)
    visits, visit_seconds = node_visits(forest, X)
    gpu = gpu_limits()

    def halo_factor(h: int) -> float:
        return ((args.block + 2 * h) / args.block) ** 3

    b_raw = raw.itemsize
    r = filters.kernel_radius(SIGMA)[0]
    g_passes, g_taps = 3, 3 * (2 * r + 1)  # scipy's gaussian_filter: one 1-D pass per axis
    # stage: (decoded bytes in incl. halo, {codec: bytes}, encoded bytes out codec, DRAM bytes, taps, node visits)
    stages = {
        "ingest (TIFF → zarr)": dict(dec=[], enc=[("raw", b_raw)], dram=2 * b_raw, taps=0, visits=0),
        f"gaussian σ={SIGMA:g}": dict(dec=[("raw", b_raw * halo_factor(r))], enc=[("float32", 4)],
                                      dram=8 * g_passes, taps=g_taps, visits=0),
        "otsu (histogram + threshold)": dict(dec=[("float32", 8)], enc=[("labels", 1)], dram=9, taps=0, visits=0),
        f"rf predict (default, {spec.channels} ch, {forest.n_trees} trees)": dict(
            dec=[("raw", b_raw * halo_factor(spec.halo[0]))], enc=[("labels", 1)],
            dram=8 * feat_passes + 4 * spec.channels * 2, taps=feat_taps, visits=visits),
        "compare (3 users + truth)": dict(dec=[("labels", 4)], enc=[], dram=4, taps=0, visits=0),
    }
    rows = []
    for name, s in stages.items():
        codec_s = sum(b / codecs[c][1] for c, b in s["dec"]) + sum(b / codecs[c][0] for c, b in s["enc"])
        bounds = {
            "codec": cores / codec_s if codec_s else np.inf,
            "DRAM": cores * dram / s["dram"] if s["dram"] else np.inf,  # one core's copy rate, scaled: optimistic
            "filter passes": cores * taps_rate / s["taps"] if s["taps"] else np.inf,
            "forest nodes": cores / (s["visits"] * visit_seconds) if s["visits"] else np.inf,
        }
        binding = min(bounds, key=bounds.get)
        rows.append([name, f"{sum(b for _, b in s['dec']):.2f} / {sum(b for _, b in s['enc']):.0f}",
                     f"{s['taps']:.0f}", f"{s['visits']:.0f}",
                     *[fmt(v) if np.isfinite(v) else "-" for v in bounds.values()], binding])
    print(f"machine: {machine()}; bounds for {cores} cores, {args.block}³ blocks; phantom raw {raw.dtype}")
    print("limits per core: " + ", ".join(f"codec {k} enc {v[0] / 1e9:.2f} / dec {v[1] / 1e9:.2f} GB/s (ratio {v[2]:.1f})"
                                          for k, v in codecs.items())
          + f"; DRAM copy {dram / 1e9:.1f} GB/s; 1-D filter {taps_rate / 1e9:.2f} Gtap/s; "
          f"forest {visit_seconds * 1e9:.1f} ns per node visit")
    print(table(rows, ["stage", "codec bytes in / out per voxel", "filter taps/voxel", "node visits/voxel",
                       "codec bound", "DRAM bound", "filter bound", "forest bound", "binds"]))
    if gpu:
        print(f"GPU: device copy {gpu['device'] / 1e12:.2f} TB/s, host→device {gpu['h2d'] / 1e9:.1f} GB/s, "
              f"device→host {gpu['d2h'] / 1e9:.1f} GB/s (pageable)")
    print(f"rf predict: {feat_passes:.0f} filter passes per voxel (each reads and writes float32), "
          f"halo factor {halo_factor(spec.halo[0]):.2f} at {args.block}³")


if __name__ == "__main__":
    main()
