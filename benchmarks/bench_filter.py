"""Gaussian filter throughput: gpuseg (zarr → zarr, blockwise) beside scipy.ndimage on the whole array.

    python benchmarks/bench_filter.py --sizes 256 512 --sigma 2.0

Each measurement runs in a fresh process (peak RSS is that process's). The input is float32 noise,
stored as zarr (128³ chunks) for gpuseg and as .npy for scipy; reading the .npy is not timed, while
gpuseg's timings include reading and writing compressed zarr. With a usable GPU, gpuseg on the GPU and
cupyx.scipy.ndimage on the whole (device-resident) array are measured too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import fmt_bytes, fmt_rate, machine, peak_rss_of, table


def prepare(work: Path, size: int) -> tuple[str, str]:
    from gpuseg import volumes

    rng = np.random.default_rng(0)
    npy = work / f"in{size}.npy"
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(size,) * 3)
    for z in range(0, size, 64):
        arr[z : z + 64] = rng.random((min(64, size - z), size, size), dtype=np.float32)
    arr.flush()
    del arr
    volumes.ingest(npy, work / f"in{size}.zarr/raw", chunks=128)
    return str(npy), str(work / f"in{size}.zarr/raw")


def run_gpuseg(src: str, out: str, sigma: float, workers: int, device: str) -> float:
    import dask.threaded  # noqa: F401  one-off imports stay out of the timing, as for scipy

    from gpuseg import backend, filters

    backend.resolve(device)
    t0 = time.perf_counter()
    filters.gaussian(src, sigma, output=out, device=device, workers=workers, overwrite=True)
    return time.perf_counter() - t0


def run_scipy(npy: str, sigma: float) -> float:
    import scipy.ndimage as ndi

    data = np.load(npy)
    t0 = time.perf_counter()
    ndi.gaussian_filter(data, sigma, mode="reflect", output=np.float32)
    return time.perf_counter() - t0


def run_cupyx(npy: str, sigma: float) -> float:
    import cupy
    import cupyx.scipy.ndimage as cndi

    data = cupy.asarray(np.load(npy))
    cndi.gaussian_filter(data[:8, :8, :8], sigma)  # compile kernels before timing
    cupy.cuda.Device().synchronize()
    t0 = time.perf_counter()
    cndi.gaussian_filter(data, sigma, mode="reflect", output=cupy.float32)
    cupy.cuda.Device().synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--workdir", default="/tmp/gpuseg-bench-filter")
    args = parser.parse_args()
    from gpuseg.backend import gpu_status

    gpu = gpu_status()[0]
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    for size in args.sizes:
        n = size**3
        npy, src = prepare(work, size)
        _, ref_rss, ref_t = peak_rss_of(run_scipy, npy, args.sigma)
        rows.append([f"{size}³", "scipy.ndimage (whole array, 1 thread)", fmt_rate(n, ref_t), fmt_bytes(ref_rss), "1.00"])
        for workers in (1, 2):
            _, rss, t = peak_rss_of(run_gpuseg, src, str(work / "out.zarr"), args.sigma, workers, "cpu")
            rows.append([f"{size}³", f"gpuseg cpu, zarr→zarr, {workers} worker(s)", fmt_rate(n, t), fmt_bytes(rss), f"{ref_t / t:.2f}"])
        if gpu:
            _, grss, gref = peak_rss_of(run_cupyx, npy, args.sigma)
            rows.append([f"{size}³", "cupyx.scipy.ndimage (whole array on GPU)", fmt_rate(n, gref), fmt_bytes(grss), f"{ref_t / gref:.2f}"])
            _, rss, t = peak_rss_of(run_gpuseg, src, str(work / "out.zarr"), args.sigma, 2, "gpu")
            rows.append([f"{size}³", "gpuseg gpu, zarr→zarr, 2 workers", fmt_rate(n, t), fmt_bytes(rss), f"{ref_t / t:.2f}"])
        shutil.rmtree(work / "out.zarr", ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"Gaussian sigma={args.sigma:g}, truncate 4, float32; ratio = scipy time / this time")
    print(table(rows, ["size", "implementation", "throughput", "peak RSS", "ratio vs scipy"]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
