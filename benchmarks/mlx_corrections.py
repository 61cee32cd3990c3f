"""Why the MLX correction slices do not halve the error: the signed error before and after, and which class
the corrections paint, for every MLX chain of finished studies that have a truth.

    python benchmarks/mlx_corrections.py STUDY [STUDY ...]     # study folders (gpuseg study OUTDIR)

For each user's chain: the active fraction's error against the truth after the central slice alone
(``prediction-1.zarr``) and after the six correction slices (the user's segmentation), and the share of
active-material labels among the central slice's strokes and among the corrections. Then: how often the
error changes sign (over-correction), and the correlation of the first error with the corrections' share
of active material. Reads each volume whole: for the small studies of ``benchmarks/uncertainty.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gpuseg.io import open_array


def _truth(study: Path) -> Path:
    """The study's truth, as its report names it (relative to where the study was run, or to its folder)."""
    named = Path(json.loads((study / "study.json").read_text())["truth"])
    for base in (Path.cwd(), study.parent.parent, study.parent.parent.parent):
        if (base / named).exists():
            return base / named
    return named


def chains(study: Path) -> list[dict]:
    truth = open_array(_truth(study))[:]
    known = truth > 0
    true_fraction = float((truth == 1)[known].mean())
    rows = []
    for work in sorted(study.glob("work/*/MLX*/u*")):
        variant, protocol, user = work.parts[-3:]
        first = open_array(work / "prediction-1.zarr")[:]
        final = open_array(study / "segmentations" / variant / protocol / f"{user}.zarr")[:]
        central, corrections = (open_array(work / f"scribbles-{k}.zarr")[:] for k in (1, 2))
        rows.append({
            "study": study.name if study.name != "study" else study.parent.name, "variant": variant,
            "protocol": protocol, "user": user,
            "error_central": float((first == 1)[known].mean()) - true_fraction,
            "error_corrected": float((final == 1)[known].mean()) - true_fraction,
            "active_share_central": float((central == 1).sum() / max((central > 0).sum(), 1)),
            "active_share_corrections": float((corrections == 1).sum() / max((corrections > 0).sum(), 1)),
            "labels_central": int((central > 0).sum()), "labels_corrections": int((corrections > 0).sum()),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path)
    rows = [row for study in parser.parse_args().studies for row in chains(study)]
    print("| study | variant | protocol | user | error central | error corrected | active share central | "
          "active share corrections | labels central | labels corrections |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['study']} | {r['variant']} | {r['protocol']} | {r['user']} | {r['error_central']:+.4f} | "
              f"{r['error_corrected']:+.4f} | {r['active_share_central']:.3f} | {r['active_share_corrections']:.3f} | "
              f"{r['labels_central']} | {r['labels_corrections']} |")
    before = np.array([r["error_central"] for r in rows])
    after = np.array([r["error_corrected"] for r in rows])
    share = np.array([r["active_share_corrections"] for r in rows])
    print(f"\n{len(rows)} chains: mean |error| central {np.abs(before).mean():.4f}, "
          f"corrected {np.abs(after).mean():.4f}; the sign flips in {int(np.sum(np.sign(before) != np.sign(after)))}; "
          f"Pearson r(error central, active share of the corrections) = {np.corrcoef(before, share)[0, 1]:+.2f}")


if __name__ == "__main__":
    main()
