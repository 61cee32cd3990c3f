"""Out-of-core check: ingest a folder of uint16 TIFF slices and Gaussian-filter it, measuring peak RSS.

    python benchmarks/bench_out_of_core.py --size 1024 --workdir /tmp/gpuseg-ooc

Writes SIZE slices of SIZE² uint16 (1024: 2 GiB), then runs the real CLI commands in fresh processes:
`gpuseg ingest` (goal: peak RSS < 1 GiB) and `gpuseg filter` (goal: < 2 GiB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from _util import fmt_bytes, fmt_rate, machine, peak_rss_of_command, table


def write_slices(folder: Path, size: int, seed: int = 0) -> None:
    """SIZE slices of smooth-ish uint16 noise, one at a time (never the volume in memory)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(20000, 40000, (size, size), dtype=np.uint16)
    for z in range(size):
        page = base + rng.integers(0, 2000, (size, size), dtype=np.uint16)
        tifffile.imwrite(folder / f"slice_{z}.tif", page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/gpuseg-ooc")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    slices = work / "slices"
    write_slices(slices, args.size)
    gpuseg = str(Path(sys.executable).with_name("gpuseg"))
    n = args.size**3
    rows = []
    t, rss = peak_rss_of_command([gpuseg, "ingest", str(slices), str(work / "v.zarr/raw"), "--voxel-size", "397", "-q"])
    rows.append(["ingest (TIFF folder → zarr)", f"{args.size}³ uint16", fmt_rate(n, t), f"{t:.1f} s", fmt_bytes(rss), "< 1 GiB", "yes" if rss < 2**30 else "NO"])
    t, rss = peak_rss_of_command([gpuseg, "filter", str(work / "v.zarr/raw"), str(work / "v.zarr/smooth"), "--sigma", str(args.sigma),
                                  "--device", "cpu", "--workers", str(args.workers), "-q"])
    rows.append([f"filter σ={args.sigma:g} ({args.workers} workers)", f"{args.size}³ → float32", fmt_rate(n, t), f"{t:.1f} s", fmt_bytes(rss), "< 2 GiB", "yes" if rss < 2 * 2**30 else "NO"])
    print(f"machine: {machine()}")
    print(table(rows, ["step", "input", "throughput", "time", "peak RSS", "goal", "met"]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
