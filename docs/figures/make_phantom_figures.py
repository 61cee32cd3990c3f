"""Draw the figures of docs/phantoms.md: each preset's central orthoslices, truth and histogram.

Usage: ``python docs/figures/make_phantom_figures.py [--shape 96 160 160]`` (writes PNGs beside this file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

HERE = Path(__file__).resolve().parent
PHASES = ((1, "active", "#1f77b4"), (2, "carbon-binder", "#2ca02c"), (3, "pore", "#ff7f0e"))


def preset_figure(name: str, shape, seed: int, path: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from gpuseg import phantom
    from gpuseg.phantom import measure

    raw, truth, info = phantom.make(name, shape, seed=seed, return_info=True)
    p = info["parameters"]
    q = measure.contrast(raw, truth, info["zero_grey"], measure.psf_margin(p["psf_sigma"]))
    eta = measure.otsu_separability(raw)
    z, y = shape[0] // 2, shape[1] // 2
    cmap = ListedColormap(["black"] + [c for _, _, c in PHASES])
    fig, ax = plt.subplots(1, 4, figsize=(16, 3.9), gridspec_kw={"width_ratios": [1, 1, 1, 1.25]})
    lo, hi = np.percentile(raw, [0.5, 99.5])
    ax[0].imshow(raw[z], cmap="gray", vmin=lo, vmax=hi)
    ax[0].set_title(f"{name}: raw, z = {z} (y-x)")
    ax[1].imshow(raw[:, y], cmap="gray", vmin=lo, vmax=hi)
    ax[1].set_title(f"raw, y = {y} (z-x)")
    ax[2].imshow(truth[z], cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
    ax[2].set_title("truth, z slice (blue active, green CBD, orange pore)", fontsize=8)
    for a in ax[:3]:
        a.set_xticks([]), a.set_yticks([])
    step = max(1, int(np.ceil((int(raw.max()) - int(raw.min()) + 1) / 128)))  # whole grey levels per bin
    edges = np.arange(int(raw.min()), int(raw.max()) + step + 1, step) - 0.5
    ax[3].hist(raw.ravel(), bins=edges, color="0.2", histtype="step", label="all")
    for k, label, colour in PHASES:
        ax[3].hist(raw[truth == k], bins=edges, color=colour, alpha=0.45, label=label)
    ax[3].set_xlabel(f"grey value ({raw.dtype})"), ax[3].set_ylabel("voxels")
    ax[3].set_title(f"SNR {q['snr']:.1f} (asked {p['snr']:g}), CNR {q['cnr']:.1f} ({p['cnr']:g}), Otsu η {eta:.2f}", fontsize=9)
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return {"name": name, "fractions": info["fractions"], "snr": q["snr"], "cnr": q["cnr"], "eta": eta}


def sweep_figure(shape, seed: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gpuseg import phantom

    levels = (1, 2, 4, 6, 10)
    fig, ax = plt.subplots(1, len(levels), figsize=(3.2 * len(levels), 3.4))
    for a, snr in zip(ax, levels):
        raw, _ = phantom.make("nmc-1", shape, seed=seed, snr=snr)
        a.imshow(raw[shape[0] // 2], cmap="gray")
        a.set_title(f"nmc-1 at SNR {snr}")
        a.set_xticks([]), a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[96, 160, 160])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from gpuseg import phantom

    for name in phantom.PRESETS:
        r = preset_figure(name, tuple(args.shape), args.seed, HERE / f"phantom-{name}.png")
        f = r["fractions"]
        print(f"{name}: active {f['active']:.3f} cbd {f['cbd']:.3f} pore {f['pore']:.3f}  "
              f"SNR {r['snr']:.2f} CNR {r['cnr']:.2f} eta {r['eta']:.3f}")
    sweep_figure((48, 160, 160), args.seed, HERE / "phantom-snr-sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
