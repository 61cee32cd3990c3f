"""Screenshots of the napari plugin for docs/napari.md, taken headless (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/figures/make_napari_figures.py WORKDIR

Writes docs/figures/napari-paint.png (scribbles on the central slice, the live preview over them, the widget) and
docs/figures/napari-result.png (the whole volume predicted in the background and opened through the reader,
uncertainty shown). The phantom, the scribbles' strokes and the run are the same on every run (fixed seeds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def main(work: Path) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from gpuseg import cli
    from gpuseg.io import open_array
    from gpuseg.napari.widget import ClassifierWidget

    figures = Path(__file__).resolve().parent
    work.mkdir(parents=True, exist_ok=True)
    phantom = work / "nmc1.zarr"
    if not phantom.exists():
        cli.main(["phantom", str(phantom), "--preset", "nmc-1", "--shape", "128", "256", "256", "-q"])
    viewer = napari.Viewer(show=True, title="gpuseg: pixel classifier")
    viewer.window._qt_window.resize(1500, 950)
    viewer.open(str(phantom / "raw"), plugin="gpuseg")
    widget = ClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget, name="gpuseg: pixel classifier", area="right")
    widget.image_box.setCurrentText("raw")
    app = QApplication.instance()

    def idle() -> None:
        while widget.busy:
            app.processEvents()
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    z = 64
    viewer.dims.set_current_step(0, z)
    layer = widget.new_scribbles()
    truth = open_array(phantom / "truth")[z]
    rng = np.random.default_rng(1)
    for phase in (1, 2, 3):  # five strokes per phase, each kept inside its phase, as a painter draws them
        ys, xs = np.nonzero(truth[8:-40, 8:-40] == phase)
        for i in rng.choice(len(ys), 5, replace=False):
            y, x = int(ys[i]) + 8, int(xs[i]) + 8
            height, width = (3, 30) if rng.random() < 0.5 else (30, 3)
            yy, xx = np.nonzero(truth[y:y + height, x:x + width] == phase)
            layer.data_setitem((np.full_like(yy, z), yy + y, xx + x), phase)
            idle()
    viewer.reset_view()
    idle()
    viewer.screenshot(str(figures / "napari-paint.png"), canvas_only=False)

    widget.train()
    idle()
    widget.output_edit.setText(str(work / "nmc1-forest.zarr"))
    widget.overwrite_box.setChecked(True)
    widget.predict_volume()
    idle()
    for name in ("prediction (preview)", "scribbles"):
        viewer.layers[name].visible = False
    viewer.layers["uncertainty"].visible = True
    viewer.layers["uncertainty"].colormap = "inferno"
    viewer.layers["uncertainty"].opacity = 0.6
    viewer.layers["labels"].opacity = 0.6
    viewer.dims.set_current_step(0, 40)
    viewer.reset_view()
    idle()
    viewer.screenshot(str(figures / "napari-result.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "napari-figures"))
