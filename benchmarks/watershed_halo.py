"""Agreement of the blockwise seeded watershed with scikit-image's whole-volume watershed, vs halo.

For phantoms of several presets (raw and Gaussian-filtered), two grey windows around the
Otsu threshold, holding a given share of the voxels (narrow: the study's gWS; wide: its cWS) and two chunk sizes, prints the
percentage of voxels on which ``gpuseg.segment.watershed.watershed(..., halo=h)`` equals
the watershed of the whole volume, and draws docs/figures/watershed_halo.png.

    python benchmarks/watershed_halo.py [--size 96] [--halos 1 2 4 8 16] [--figure PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, table


def phantoms(size: int, presets):
    import scipy.ndimage as ndi

    from gpuseg.phantom import make

    for preset in presets:
        raw, _ = make(preset, (size,) * 3, seed=0)
        yield preset, "raw", raw
        yield preset, "σ=1", ndi.gaussian_filter(raw.astype(np.float32), 1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--presets", nargs="+", default=["nmc-1", "nmc-2", "gra-1"])
    ap.add_argument("--halos", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--chunks", type=int, nargs="+", default=[32, 48])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.5],
                    help="share of the voxels inside the grey window, centred (in rank) on the Otsu threshold")
    ap.add_argument("--figure", default=str(Path(__file__).resolve().parents[1] / "docs/figures/watershed_halo.png"))
    ap.add_argument("--json", help="also write the measurements as JSON")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the figure from a --json file of an earlier run")
    args = ap.parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        _figure(saved["halos"], saved["curves"], saved["worst"], args.figure, args.size)
        return 0

    from skimage.filters import threshold_otsu

    from gpuseg.segment.watershed import watershed, watershed_block

    print(machine())
    rows, curves = [], {}
    for preset, kind, image in phantoms(args.size, args.presets):
        t = float(threshold_otsu(image))
        rank = float(np.mean(image <= t))
        for width in args.shares:
            low, high = (float(v) for v in np.quantile(image, [max(rank - width / 2, 0), min(rank + width / 2, 1)]))
            t0 = time.perf_counter()
            whole = watershed_block(image, low=low, high=high)
            seconds = time.perf_counter() - t0
            share = float(np.mean((image >= low) & (image <= high)))
            for chunks in args.chunks:
                scores = []
                for halo in args.halos:
                    blocks = watershed(image, low, high, halo=halo, chunks=chunks, device="cpu", scheduler="threads")
                    scores.append(100.0 * float(np.mean(blocks == whole)))
                label = f"{preset} {kind} {100 * share:.0f}% c{chunks}"
                curves[label] = scores
                rows.append([preset, kind, f"[{low:.1f}, {high:.1f}] ({100 * share:.0f} % of voxels)", chunks, f"{seconds:.2f}",
                             *[f"{s:.3f}" for s in scores]])
                print(" | ".join(map(str, rows[-1])), flush=True)
    print()
    print(f"{args.size}³ phantoms; agreement (% of voxels) with the whole-volume watershed by halo")
    print(table(rows, ["preset", "input", "window", "chunks", "whole s", *[f"halo {h}" for h in args.halos]]))
    worst = [min(c[i] for c in curves.values()) for i in range(len(args.halos))]
    ok = [h for h, w in zip(args.halos, worst) if w >= 99.9]
    print(f"worst case by halo: {dict(zip(args.halos, [round(w, 4) for w in worst]))}; "
          f"smallest halo with ≥ 99.9 % everywhere: {ok[0] if ok else 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"halos": args.halos, "curves": curves, "worst": worst}, indent=1))
    _figure(args.halos, curves, worst, args.figure, args.size)
    print(f"figure: {args.figure}")
    return 0


def _figure(halos, curves, worst, path, size) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for scores in curves.values():
        ax.plot(halos, 100 - np.array(scores), color="0.7", lw=0.8, marker=".", ms=3)
    ax.plot([], [], color="0.7", lw=0.8, marker=".", ms=3, label="one preset / input / window / chunk size")
    ax.plot(halos, 100 - np.array(worst), color="C3", lw=2, marker="o", label="worst case")
    ax.axhline(0.1, color="k", ls="--", lw=1, label="0.1 % (99.9 % agreement)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(0, 2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(halos, [str(h) for h in halos])
    ax.set_xlabel("halo (voxels per block side)")
    ax.set_ylabel("voxels differing from whole-volume watershed (%)")
    ax.set_title(f"blockwise vs whole-volume seeded watershed, {size}³ phantoms", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
