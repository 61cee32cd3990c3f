"""Throughput and peak memory of Otsu, thresholding, watershed and compare, beside whole-array references.

For each size, a synthetic grey volume (uint8, zarr, 128³ chunks), three threshold
segmentations of it (S1/S2/S3) and a truth are written to a scratch folder; then every task
runs in a fresh process (peak RSS is that process's, workers included) under the threads
scheduler, out of core from zarr to zarr, next to its reference in the same run: the same
computation on the whole array in memory with scikit-image / numpy (reading the input and
writing the output included, as the out-of-core run does both).

    python benchmarks/bench_segment.py [--sizes 256 512] [--tasks otsu threshold watershed compare compare-cli]

``compare-cli`` runs ``gpuseg compare A B C --truth T --json`` as a command: the issue's
"three 512³ segmentations with a truth under 1 GiB peak RSS".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import fmt_bytes, fmt_rate, machine, peak_rss_of, peak_rss_of_command, table

CHUNK = 128
TASKS = ("otsu", "threshold", "watershed", "compare", "compare-cli")


def make_data(folder: Path, size: int) -> dict[str, str]:
    """Grey volume: smooth random blobs (two phases) plus noise; segmentations S1/S2/S3; truth."""
    import scipy.ndimage as ndi

    from gpuseg import io
    from gpuseg.segment.threshold import apply_thresholds

    shape = (size,) * 3
    raw = io.create_array(folder / "v.zarr/raw", shape, np.uint8, (CHUNK,) * 3, {"voxel_size_nm": [397.0] * 3})
    truth = io.create_array(folder / "v.zarr/truth", shape, np.uint8, (CHUNK,) * 3, {"phases": 2})
    rng = np.random.default_rng(0)
    for z in range(0, size, CHUNK):
        field = ndi.gaussian_filter(rng.random((CHUNK, size, size), dtype=np.float32), 3.0)
        lab = np.where(field > np.median(field), 1, 2).astype(np.uint8)
        grey = np.where(lab == 1, 160, 90) + rng.normal(0, 25, field.shape)
        raw[z : z + CHUNK] = np.clip(grey, 0, 255).astype(np.uint8)
        truth[z : z + CHUNK] = lab
    paths = {"raw": f"{folder}/v.zarr/raw", "truth": f"{folder}/v.zarr/truth"}
    for name, t in (("S1", 115), ("S2", 125), ("S3", 135)):
        paths[name] = apply_thresholds(paths["raw"], t, output=f"{folder}/v.zarr/{name}", device="cpu")
    return paths


# ----------------------------------------------------------------- tasks (module level: run in fresh processes)


def gpuseg_otsu(p):
    from gpuseg.segment.threshold import threshold_otsu

    return threshold_otsu(p["raw"])


def ref_otsu(p):
    from skimage.filters import threshold_otsu

    from gpuseg import io

    return float(threshold_otsu(io.open_array(p["raw"])[:]))


def gpuseg_threshold(p, out):
    from gpuseg.segment.threshold import apply_thresholds

    apply_thresholds(p["raw"], 125, output=out, device="cpu", overwrite=True)


def ref_threshold(p, out):
    from gpuseg import io

    x = io.open_array(p["raw"])[:]
    io.create_array(out, x.shape, np.uint8, (CHUNK,) * 3, overwrite=True)[:] = np.where(x > 125, 1, 2).astype(np.uint8)


def gpuseg_watershed(p, out):
    from gpuseg.segment.watershed import watershed

    watershed(p["raw"], 110, 140, output=out, device="cpu", overwrite=True)


def ref_watershed(p, out):
    from gpuseg import io
    from gpuseg.segment.watershed import watershed_block

    x = io.open_array(p["raw"])[:]
    io.create_array(out, x.shape, np.uint8, (CHUNK,) * 3, overwrite=True)[:] = watershed_block(x, low=110, high=140)


def gpuseg_compare(p):
    from gpuseg.metrics import compare

    return compare([p["S1"], p["S2"], p["S3"]], p["truth"])["mean_pairwise_percent"]


def ref_compare(p):
    """numpy on whole arrays: the same counts (fractions, pairs, confusion with truth)."""
    from gpuseg import io
    from gpuseg.bench.references import compare_numpy

    vols = {k: io.open_array(p[k])[:] for k in ("S1", "S2", "S3")}
    return compare_numpy(vols, io.open_array(p["truth"])[:])["mean_pairwise_percent"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--scratch", help="folder for the data (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    print(machine())
    rows = []
    for size in args.sizes:
        folder = Path(args.scratch or tempfile.mkdtemp(prefix="bench-segment-")) / f"s{size}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            p = make_data(folder, size)
            voxels = size**3
            out = f"{folder}/out.zarr/seg"
            for task in args.tasks:
                if task == "compare-cli":
                    argv_ = [sys.executable, "-m", "gpuseg", "compare", p["S1"], p["S2"], p["S3"], "--truth", p["truth"],
                             "--json", str(folder / "r.json"), "--overwrite", "-q"]
                    s, rss = peak_rss_of_command(argv_)
                    rows.append([f"{size}³", "gpuseg compare (CLI, K=3 + truth)", fmt_rate(voxels * 4, s), f"{s:.1f}", fmt_bytes(rss),
                                 "-", "-", "-", "-"])
                    print(rows[-1], flush=True)
                    continue
                ours, ref = globals()[f"gpuseg_{task}"], globals()[f"ref_{task}"]
                extra = (out,) if task in ("threshold", "watershed") else ()
                s1, rss1, r1 = peak_rss_of(ours, p, *extra)
                s2, rss2, r2 = peak_rss_of(ref, p, *extra)
                n = voxels * (4 if task == "compare" else 1)  # compare reads four volumes
                same = "equal" if task in ("otsu", "compare") and r1 == r2 else ""
                rows.append([f"{size}³", task, fmt_rate(n, s1), f"{s1:.1f}", fmt_bytes(rss1), fmt_rate(n, s2), f"{s2:.1f}",
                             fmt_bytes(rss2), f"{s2 / s1:.2f}× {same}".strip()])
                print(rows[-1], flush=True)
        finally:
            if not args.scratch:
                shutil.rmtree(folder.parent, ignore_errors=True)
    print()
    print(table(rows, ["size", "task", "gpuseg voxels/s", "s", "peak RSS", "reference voxels/s", "s", "peak RSS",
                       "speed-up"]))
    print("reference: scikit-image / numpy on the whole array in memory (load and write included); "
          "gpuseg: out of core, zarr to zarr, threads scheduler, CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
