"""Phantom generation throughput and peak memory, out of core, beside in-memory references.

For each size N (an N³ ``nmc-1`` phantom) this runs, each in a fresh process:

* gpuseg labels: the calibration pass (exact histogram) and the label pass, block by block,
  written to zarr (``truth``);
* gpuseg CT: the forward model from that ``truth`` to ``raw`` (PSF, speckle, shading,
  FBP-textured noise, rings, quantization), block by block;
* gpuseg generate: both, as ``gpuseg phantom`` runs them;
* reference labels: the textbook in-memory Boolean model of equal spheres, the Euclidean
  distance transform (scipy) of random centre points thresholded at the radius, with the
  same particle density and median radius;
* reference CT: in memory, a scipy Gaussian blur of the grey phases plus white noise,
  quantized — no artefacts, no FBP texture.

It prints a table with voxels/s, peak RSS and the ratio of each gpuseg row's rate to the
matching reference (> 1: gpuseg faster; for generate, both references run one after the other). Memory of the gpuseg rows is bounded by the block
(``--chunks``, work blocks up to 256³), the references hold the whole volume.

Usage: ``python benchmarks/bench_phantom.py [--sizes 64 128 256] [--workers 2] [--chunks 128]
[--skip-reference-above 512] [--only labels ct generate reference] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import fmt_bytes, fmt_rate, machine, peak_rss_of, table

PRESET = "nmc-1"


def run_labels(out: str, n: int, chunks: int, workers: int) -> dict:
    """Calibration and label passes only, into ``out/truth``; returns the true fractions."""
    import dask

    from gpuseg.engine import blocks, cluster, run
    from gpuseg.phantom import build, microstructure, presets
    from gpuseg.phantom.region import Region

    shape = (n, n, n)
    params = presets.resolve(PRESET)
    geom = microstructure.geometry(params)
    chunk_shape = (min(chunks, n),) * 3
    regions = [Region(shape)[b.core] for b in blocks.iter_blocks(shape, chunk_shape, 0)]
    tasks = [dask.delayed(build._histogram_group)(g, geom, 0, "cpu") for g in build._grouped(regions, workers)]
    hist = sum(cluster.compute(tasks, scheduler="threads", workers=workers))
    level = microstructure.thresholds(hist, params["am_fraction"], params["cbd_fraction"])
    bound = build.LABELS.bind({"geom": geom, "seed": 0, "t_am": level["t_am"], "t_cbd": level["t_cbd"]}, np.int64)
    run.run(bound, [Region(shape)], {"output": f"{out}/truth"}, shape=shape, chunks=chunk_shape, attrs={},
            identity=[], device="cpu", scheduler="threads", workers=workers, overwrite=True)
    return build._fractions(level["counts"])


def run_ct(out: str, n: int, chunks: int, workers: int) -> None:
    """The CT model from ``out/truth`` to ``out/raw``."""
    from gpuseg.engine import run
    from gpuseg.io import zarrio
    from gpuseg.phantom import build, ct, presets
    from gpuseg.phantom.region import Region

    params = presets.resolve(PRESET)
    model = ct.forward_params(params)
    shape = (n, n, n)
    bound = build.CT.bind({"model": model, "seed": 0, "shape": list(shape)}, params["dtype"])
    run.run(bound, [zarrio.open_array(f"{out}/truth"), Region(shape)], {"output": f"{out}/raw"}, shape=shape,
            chunks=(min(chunks, n),) * 3, attrs={}, identity=[], device="cpu", scheduler="threads",
            workers=workers, overwrite=True)


def run_generate(out: str, n: int, chunks: int, workers: int) -> dict:
    from gpuseg import phantom

    group = phantom.generate(f"{out}/p.zarr", PRESET, (n, n, n), seed=0, chunks=chunks, device="cpu",
                             scheduler="threads", workers=workers, overwrite=True)
    return dict(group.attrs["phantom"]["fractions"])


def reference_labels(n: int) -> float:
    """Equal overlapping spheres by EDT of random points, in memory; returns the solid fraction."""
    import scipy.ndimage as ndi

    from gpuseg.phantom import microstructure, presets

    geom = microstructure.geometry(presets.resolve(PRESET))
    rng = np.random.default_rng(0)
    count = rng.poisson(geom["density"] * n**3)
    seeds = np.ones((n, n, n), bool)
    seeds[tuple(rng.integers(0, n, (3, count)))] = False
    solid = ndi.distance_transform_edt(seeds) <= geom["radius"]
    return float(solid.mean())


def reference_ct(n: int) -> float:
    """Blur + white noise + quantization of a two-phase volume, in memory; returns the mean grey."""
    import scipy.ndimage as ndi

    rng = np.random.default_rng(0)
    truth = rng.random((n, n, n), dtype=np.float32) < 0.5
    grey = ndi.gaussian_filter(np.where(truth, 1.0, 0.47).astype(np.float32), 1.0)
    grey += rng.standard_normal(grey.shape, dtype=np.float32) / 3.0
    raw = np.clip(np.rint(40 + 80 * grey), 0, 255).astype(np.uint8)
    return float(raw.mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=128)
    ap.add_argument("--skip-reference-above", type=int, default=512, help="no in-memory reference above this N")
    ap.add_argument("--only", nargs="+", choices=("labels", "ct", "generate", "reference"),
                    default=["labels", "ct", "generate", "reference"], help="rows to run (ct needs labels)")
    ap.add_argument("--keep", help="write the phantoms here (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"preset {PRESET}, chunks {args.chunks}³, {args.workers} workers (threads), CPU")
    rows = []
    for n in args.sizes:
        work = Path(args.keep or tempfile.mkdtemp(prefix="bench_phantom_")) / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        vox = n**3
        ref = {}
        if n <= args.skip_reference_above and "reference" in args.only:
            ref["labels"] = peak_rss_of(reference_labels, n)
            ref["ct"] = peak_rss_of(reference_ct, n)
        results = {}
        if "labels" in args.only:
            results["labels"] = peak_rss_of(run_labels, str(work / "parts.zarr"), n, args.chunks, args.workers)
        if "ct" in args.only:
            results["ct"] = peak_rss_of(run_ct, str(work / "parts.zarr"), n, args.chunks, args.workers)
        if "generate" in args.only:
            results["generate"] = peak_rss_of(run_generate, str(work), n, args.chunks, args.workers)
        for name, (sec, rss, _) in results.items():
            # generate's reference is both references, one after the other
            parts = {"labels": ["labels"], "ct": ["ct"], "generate": ["labels", "ct"]}[name]
            base = sum(ref[p][0] for p in parts) if all(p in ref for p in parts) else None
            ratio = f"{base / sec:.2f}" if base else "-"
            rows.append([f"{n}³", f"gpuseg {name}", f"{sec:.1f}", fmt_rate(vox, sec), fmt_bytes(rss), ratio])
        for name, (sec, rss, _) in ref.items():
            rows.append([f"{n}³", f"reference {name} (in memory)", f"{sec:.1f}", fmt_rate(vox, sec), fmt_bytes(rss), "1.00"])
        if "generate" in results:
            fr = results["generate"][2]
            print(f"{n}³: true fractions active {fr['active']:.4f}, cbd {fr['cbd']:.4f}, pore {fr['pore']:.4f}", flush=True)
        if not args.keep:
            shutil.rmtree(work.parent, ignore_errors=True)
    print(table(rows, ["size", "what", "seconds", "throughput", "peak RSS", "rate / reference"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
