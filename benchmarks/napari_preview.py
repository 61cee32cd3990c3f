"""Latency of the napari widget's live preview: from a brush stroke to the slice's prediction drawn.

    xvfb-run -a python benchmarks/napari_preview.py [--trees 20] [--2d] [--shape 64 512 512] [--work DIR]

In a real napari viewer (under Xvfb), with the gpuseg widget docked on an nmc-1 phantom (default features):
for two slices, the time to show a new slice (its feature stack, computed once), then eight strokes of 5 × 60
voxels inside one phase, each sent through napari's paint event as a painter's stroke, and the time until the
widget is idle with the new preview drawn; the widget's own split (train, predict). The issue's goal: a 512²
slice's preview within about a second of a stroke. There is no reference to compete with: the table gives the
seconds, the painted voxels and the preview's accuracy on its slice against the phantom's truth.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

STROKE = (5, 60)


def _stroke(truth: np.ndarray, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], int]:
    """A 5 × 60 voxel stroke inside one phase of the slice ``truth`` (≥ 90 % of its box), as a painter draws it."""
    h, w = STROKE
    while True:
        y, x = rng.integers(0, truth.shape[0] - h), rng.integers(0, truth.shape[1] - w)
        patch = truth[y : y + h, x : x + w]
        values, counts = np.unique(patch, return_counts=True)
        if counts.max() >= 0.9 * patch.size and values[np.argmax(counts)] > 0:
            cls = int(values[np.argmax(counts)])
            yy, xx = np.nonzero(patch == cls)
            return (yy + y, xx + x), cls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", type=int, default=20, help="the widget's tree count (default 20, its default)")
    parser.add_argument("--2d", dest="twod", action="store_true", help="features slice by slice")
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 512, 512))
    parser.add_argument("--work", type=Path, default=Path("napari-preview-bench"))
    args = parser.parse_args()
    phantom = args.work / "p.zarr"
    if not (phantom / "truth").exists():
        subprocess.run(["gpuseg", "phantom", str(phantom), "--preset", "nmc-1", "--shape", *map(str, args.shape), "-q"],
                       check=True)

    import napari
    from qtpy.QtWidgets import QApplication

    from gpuseg.io import open_array
    from gpuseg.napari.widget import ClassifierWidget

    viewer = napari.Viewer(show=False)
    viewer.open(str(phantom / "raw"), plugin="gpuseg")
    widget = ClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image_box.setCurrentText("raw")
    widget.trees_box.setValue(args.trees)
    widget.twod_box.setChecked(args.twod)
    layer = widget.new_scribbles()
    truth = open_array(phantom / "truth")
    app, rng = QApplication.instance(), np.random.default_rng(0)

    def until_idle() -> float:
        start = time.perf_counter()
        while widget.busy:
            app.processEvents()
            time.sleep(0.005)
        return time.perf_counter() - start

    rows = []
    for z in (args.shape[0] // 2, args.shape[0] // 3):
        start = time.perf_counter()
        viewer.dims.set_current_step(0, z)
        until_idle()
        rows.append((f"slice {z} shown (its features)", time.perf_counter() - start, "", int((layer.data > 0).sum())))
        plane = np.asarray(truth[z])
        for i in range(8):
            (yy, xx), cls = _stroke(plane, rng)
            start = time.perf_counter()
            layer.data_setitem((np.full_like(yy, z), yy, xx), cls)
            until_idle()
            split = ", ".join(f"{k} {v:.2f}" for k, v in widget.timings.items())
            rows.append((f"slice {z} stroke {i + 1}", time.perf_counter() - start, split, int((layer.data > 0).sum())))
    shown = widget.last_preview
    accuracy = float((shown.labels == np.asarray(truth[shown.z])).mean()) if shown is not None else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"phantom nmc-1 {tuple(args.shape)}, default features{' (2-D)' if args.twod else ''}, {args.trees} trees")
    print("| step | s | widget's split (s) | painted voxels |\n|---|---|---|---|")
    for name, seconds, split, painted in rows:
        print(f"| {name} | {seconds:.2f} | {split} | {painted} |")
    trained = [i for i, row in enumerate(rows) if row[2]]  # strokes that trained a forest (two classes painted)
    strokes = [row[1] for row in rows[trained[0] + 1 :] if "stroke" in row[0]] if trained else []
    print(f"\nfirst preview of the session (scikit-learn's and numba's start-up): {rows[trained[0]][1]:.2f} s; "
          f"every stroke after it: median {np.median(strokes):.2f} s, max {max(strokes):.2f} s; "
          f"last preview's accuracy on its slice {accuracy:.4f}" if strokes else "\nno stroke trained a forest")
    viewer.close()


if __name__ == "__main__":
    main()
