"""Feature-stack throughput and peak memory: gpuseg beside scikit-image, same input, same run.

For each size N (an N³ synthetic tomogram) this computes

* gpuseg ``default`` (20 channels) and ``ilastik-full`` (61 channels), ilastik mode, block by
  block with the exact halo, in the work blocks ``features.compute`` uses for a path (64³
  chunks grown while a block's stack stays under 256 MiB), the way prediction consumes them:
  every block's stack is computed and reduced, none is kept, so memory stays flat in N;
* scikit-image's ``multiscale_basic_features`` (intensity, edges, texture) with 4 sigmas
  (20 channels) and 12 sigmas (60 channels): the whole stack in memory;

each in a fresh process (wall time and peak RSS), and prints one table with voxels/s and
the ratio to the scikit-image row of comparable channel count. With a usable GPU it adds
gpuseg rows on the GPU.

Both sides get the same number of threads (``--workers``, default 1).

Usage: ``python benchmarks/bench_features.py [--sizes 64 128 256] [--skip-skimage-above N] [--workers W]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import fmt_bytes, fmt_rate, machine, peak_rss_of, table

BLOCK = 64


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """A blurred-spheres-plus-noise uint8 volume (what a CT of an electrode roughly looks like)."""
    import scipy.ndimage as ndi

    rng = np.random.default_rng(seed)
    centres = rng.random((max(4, n**3 // 4000), 3)) * n
    grid = np.zeros((n, n, n), np.float32)
    idx = np.clip(centres.astype(int), 0, n - 1)
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = 1
    spheres = ndi.gaussian_filter(grid, 3.0) > 0.002
    grey = np.where(spheres, 170.0, 80.0).astype(np.float32)
    grey = ndi.gaussian_filter(grey, 1.0) + rng.normal(0, 25, grey.shape).astype(np.float32)
    return np.clip(grey, 0, 255).astype(np.uint8)


def run_gpuseg(n: int, preset: str, device: str, workers: int = 1) -> int:
    """Compute the feature stack of every block and reduce it (``workers`` threads); return the channel count."""
    from concurrent.futures import ThreadPoolExecutor

    from gpuseg import backend, features
    from gpuseg.engine import blocks, plan

    image = synthetic(n)
    spec = features.parse_features(preset)
    be = backend.resolve(device)
    # the work blocks features.compute would use for a path (one worker): the engine's plan
    bound = features.FEATURES.bind({"spec": spec}, image.dtype)
    block_shape = plan.make(bound, image.shape, (BLOCK,) * 3, device=be.name, workers=1,
                            free_device_memory=backend.free_device_memory() if be.name == "gpu" else 0).block_shape

    def one(block: blocks.Block) -> float:
        padded = be.asarray(image[block.padded])
        stack = features.compute_block(padded, spec, inner=block.inner)  # the core's stack only
        return float(stack[:, 0, 0, 0].sum())  # touch the result; on the GPU this synchronises

    with ThreadPoolExecutor(workers) as pool:
        sum(pool.map(one, blocks.iter_blocks(image.shape, block_shape, spec.halo)))
    return spec.channels


def run_skimage(n: int, num_sigma: int, workers: int = 1) -> int:
    from skimage.feature import multiscale_basic_features

    image = synthetic(n)
    stack = multiscale_basic_features(image, intensity=True, edges=True, texture=True, sigma_min=0.7,
                                      sigma_max=10.0, num_sigma=num_sigma, workers=workers)
    return stack.shape[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="edge lengths N of N³ volumes")
    parser.add_argument("--skip-skimage-above", type=int, default=256,
                        help="skip scikit-image above this N (it holds the whole stack in memory)")
    parser.add_argument("--workers", type=int, default=1, help="threads for both gpuseg and scikit-image (default 1)")
    args = parser.parse_args(argv)
    from gpuseg.backend import gpu_status

    devices = ["cpu"] + (["gpu"] if gpu_status()[0] else [])
    print(f"machine: {machine()}; {args.workers} worker thread(s) for every row")
    rows = []
    for n in args.sizes:
        voxels = n**3
        input_s, input_rss, _ = peak_rss_of(synthetic, n)
        rows.append([f"{n}³", "input only (synthetic volume)", "-", "cpu", f"{input_s:.2f}", "-", fmt_bytes(input_rss), "-"])
        reference = {}
        for num_sigma in (4, 12):
            if n > args.skip_skimage_above:
                continue
            s, rss, channels = peak_rss_of(run_skimage, n, num_sigma, args.workers)
            s -= input_s
            reference[num_sigma] = s
            rows.append([f"{n}³", f"skimage multiscale_basic_features ({num_sigma} sigmas)", channels, "cpu",
                         f"{s:.2f}", fmt_rate(voxels, s), fmt_bytes(rss), "1.00"])
        for preset, num_sigma in (("default", 4), ("ilastik-full", 12)):
            for device in devices:
                s, rss, channels = peak_rss_of(run_gpuseg, n, preset, device, args.workers)
                s -= input_s
                ratio = f"{reference[num_sigma] / s:.2f}" if num_sigma in reference else "-"
                rows.append([f"{n}³", f"gpuseg features {preset} (ilastik mode, blockwise)", channels,
                             device, f"{s:.2f}", fmt_rate(voxels, s), fmt_bytes(rss), ratio])
        print(table(rows[-(len(reference) + 2 * len(devices) + 1):],
                    ["size", "what", "channels", "device", "seconds", "throughput", "peak RSS", "speed-up vs skimage"]),
              flush=True)
    print()
    print(table(rows, ["size", "what", "channels", "device", "seconds", "throughput", "peak RSS", "speed-up vs skimage"]))
    print("seconds exclude making the input (the 'input only' row); peak RSS includes it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
