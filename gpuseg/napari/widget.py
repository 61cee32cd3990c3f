"""The napari dock widget: paint scribbles, train a forest, see the visible slice predicted, predict the volume.

What each control calls is gpuseg's public API, as the command line does:

* **Train** — :func:`gpuseg.classify.train` on the image (its path when opened from disk, read out of core) and
  the painted layer: ``gpuseg train IMAGE --labels SCRIBBLES --trees N`` (``N`` = 0: the CLI's default, a forest
  sized by the data).
* **Live preview** — after each stroke, a forest of ``N`` trees (20 when ``N`` = 0) trained on the painted voxels
  and the visible slice predicted (:class:`gpuseg.classify.preview.SlicePreview`: the slice's features are
  computed once and kept). The live forest equals Train's with the same ``N``, and the preview's labels equal
  ``gpuseg predict``'s on that slice for the same model.
* **Predict volume** — :func:`gpuseg.classify.predict` out of core into ``OUT.zarr/labels`` (and
  ``OUT.zarr/uncertainty``, ``OUT.zarr/probabilities``) in the background, with a progress bar and a Cancel
  button; the result opens through the gpuseg reader. Closing the viewer cancels it (napari asks first).
* **Scribbles and model files** — the annotation volumes ``gpuseg train --labels`` takes (zarr, written whole
  or not at all through :func:`gpuseg.volumes.save`; loaded from any format gpuseg reads) and the numbers-only
  model file (:func:`gpuseg.classify.save` / :func:`~gpuseg.classify.load`).

Errors a user can cause (one class painted, scribbles of another shape, an existing output, a non-image zarr) are
one line in napari's notification area, never a traceback.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from .. import classify, volumes
from ..classify import preview as pv
from ..classify.scribbles import read_one
from ..errors import GpusegError, InputError
from ..io import metadata
from . import layers, tasks

log = logging.getLogger("gpuseg")

FEATURE_PRESETS = ("default", "ilastik-full", "gaussian:1.0,gradient:1.0,hessian:1.0,structure:1.0")
PREVIEW_PREDICTION = "prediction (preview)"
PREVIEW_UNCERTAINTY = "uncertainty (preview)"
MAX_TREES = 1000
CLOSE_WAIT_S = 120.0
"""How long closing the viewer waits for a cancelled run's running blocks to end before it lets go."""


def class_colormap(values: Any) -> dict[Any, tuple[float, ...]]:
    """napari's direct colormap for class values: the colours of gpuseg's label images, 0 transparent."""
    return {**{int(v): tuple(c / 255 for c in metadata.label_colour(int(v))) for v in values},
            None: (0.0, 0.0, 0.0, 0.0)}


class ClassifierWidget(QWidget):
    """Scribbles → forest → live preview of the visible slice → the whole volume, for one napari viewer."""

    run_progressed = Signal(int, int)  # emitted from the run's thread; Qt queues it to the widget's

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.forest: classify.Forest | None = None
        self.forest_origin = ""
        self.last_preview: pv.SlicePrediction | None = None
        self.timings: dict[str, float] = {}
        self._session: pv.SlicePreview | None = None
        self._session_key: tuple[Any, ...] | None = None
        self._painted: set[int] = set()
        self._watched: Labels | None = None
        self._workers: set[Any] = set()
        self._preview_running = False
        self._strokes_pending = 0
        self._preview_auto = True  # whether every queued request was automatic
        self._preview_again: bool | None = None  # None: nothing queued; else whether the queued one trains
        self._cancel = threading.Event()
        self._run_done = threading.Event()
        self._run_done.set()
        self._task_id: Any = None
        self.run_options: dict[str, Any] = {}
        """Further keywords of the volume's :func:`gpuseg.classify.predict` (``device``, ``chunks``, ``workers``;
        the scheduler must be a local one, for the progress bar and Cancel)."""
        self._build()
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self._slice_changed)
        self.run_progressed.connect(self._show_progress)
        self._refresh_layers()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.image_box, self.scribbles_box = QComboBox(), QComboBox()
        self.new_button = QPushButton("New")
        self.features_box = QComboBox()
        self.features_box.setEditable(True)
        self.features_box.addItems(FEATURE_PRESETS)
        self.twod_box = QCheckBox("2-D (slice by slice)")
        self.trees_box = QSpinBox()
        self.trees_box.setRange(0, MAX_TREES)
        self.trees_box.setValue(pv.PREVIEW_TREES)
        self.trees_box.setSpecialValueText("sized by the data")
        self.trees_box.setToolTip("trees of the forest; 0: grow 100 and keep as many as the data need (the CLI's "
                                  f"default), previewed with {pv.PREVIEW_TREES}")
        self.live_box = QCheckBox("live preview after each stroke")
        self.live_box.setChecked(True)
        self.train_button, self.preview_button = QPushButton("Train"), QPushButton("Preview slice")
        self.status = QLabel("open a tomogram, then add a scribbles layer")
        self.status.setWordWrap(True)

        scribbles_row = QHBoxLayout()
        scribbles_row.addWidget(self.scribbles_box, 1)
        scribbles_row.addWidget(self.new_button)
        form = QFormLayout()
        form.addRow("image", self.image_box)
        form.addRow("scribbles", scribbles_row)
        form.addRow("features", self.features_box)
        form.addRow("", self.twod_box)
        form.addRow("trees", self.trees_box)
        form.addRow("", self.live_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.preview_button)
        form.addRow(buttons)

        files = QGroupBox("files")
        grid = QGridLayout(files)
        self.save_scribbles_button, self.load_scribbles_button = QPushButton("Save scribbles…"), QPushButton("Load scribbles…")
        self.save_model_button, self.load_model_button = QPushButton("Save model…"), QPushButton("Load model…")
        for i, button in enumerate((self.save_scribbles_button, self.load_scribbles_button, self.save_model_button,
                                    self.load_model_button)):
            grid.addWidget(button, i // 2, i % 2)

        run = QGroupBox("predict the volume (out of core)")
        run_form = QFormLayout(run)
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("OUT.zarr")
        self.uncertainty_box, self.probabilities_box = QCheckBox("uncertainty"), QCheckBox("probabilities")
        self.uncertainty_box.setChecked(True)
        self.overwrite_box = QCheckBox("overwrite")
        options = QHBoxLayout()
        for box in (self.uncertainty_box, self.probabilities_box, self.overwrite_box):
            options.addWidget(box)
        self.run_button, self.cancel_button = QPushButton("Predict volume"), QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m tasks")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)  # until a run reports its tasks
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        run_form.addRow("output", self.output_edit)
        run_form.addRow(options)
        run_form.addRow(run_row)
        run_form.addRow(self.progress)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(files)
        layout.addWidget(run)
        layout.addStretch(1)

        self.new_button.clicked.connect(self.new_scribbles)
        self.scribbles_box.currentIndexChanged.connect(self._watch_scribbles)
        self.image_box.currentIndexChanged.connect(self._image_changed)
        self.features_box.currentTextChanged.connect(self._features_changed)
        self.twod_box.toggled.connect(self._features_changed)
        self.train_button.clicked.connect(self.train)
        self.preview_button.clicked.connect(self._preview_clicked)
        self.save_scribbles_button.clicked.connect(self._ask_save_scribbles)
        self.load_scribbles_button.clicked.connect(self._ask_load_scribbles)
        self.save_model_button.clicked.connect(self._ask_save_model)
        self.load_model_button.clicked.connect(self._ask_load_model)
        self.run_button.clicked.connect(self.predict_volume)
        self.cancel_button.clicked.connect(self._cancel_clicked)

    def _preview_clicked(self) -> None:
        self._scribbles_replaced()  # every slice looked at again: napari's undo does not tell which it changed
        self.preview(train=self.forest_origin not in ("trained", "loaded"))

    # ------------------------------------------------------------------ layers

    @property
    def image_layer(self) -> Image | None:
        return self._layer(self.image_box.currentText(), Image)

    @property
    def scribbles_layer(self) -> Labels | None:
        return self._layer(self.scribbles_box.currentText(), Labels)

    def _layer(self, name: str, kind: type) -> Any:
        return next((layer for layer in self.viewer.layers if layer.name == name and isinstance(layer, kind)), None)

    def _refresh_layers(self, event: Any = None) -> None:
        for box, kind in ((self.image_box, Image), (self.scribbles_box, Labels)):
            current = box.currentText()
            names = [layer.name for layer in self.viewer.layers if isinstance(layer, kind)
                     and layer.name not in (PREVIEW_PREDICTION, PREVIEW_UNCERTAINTY)
                     and not (kind is Image and layers.ndim(layer) != 3)]
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            if current in names:
                box.setCurrentText(current)
            box.blockSignals(False)
        self._watch_scribbles()
        if self.image_layer is not None and not self.output_edit.text():
            self.output_edit.setText(layers.default_output(self.image_layer))

    def _image_changed(self, *_: Any) -> None:
        self._session, self._session_key = None, None
        if self.image_layer is not None:
            self.output_edit.setText(layers.default_output(self.image_layer))

    def _features_changed(self, *_: Any) -> None:
        if self.forest is not None and self.forest_origin != "loaded":
            self.forest, self.forest_origin = None, ""  # trained on other features: its preview would mislead
        self._session, self._session_key = None, None

    def new_scribbles(self) -> Labels | None:
        """A new, empty scribbles layer (uint8, the image's shape, scale and position), selected for painting."""
        image = self.image_layer
        if image is None:
            show_warning("open a tomogram first: the scribbles take its shape")
            return None
        shape = layers.level0(image).shape
        layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=layers.free_name(self.viewer, "scribbles"),
                                       opacity=0.9, colormap=class_colormap(range(1, 9)), **layers.placed_like(image))
        layer.mode = "paint"
        layer.brush_size = 5
        self.scribbles_box.setCurrentText(layer.name)
        return layer

    def _watch_scribbles(self, *_: Any) -> None:
        layer = self.scribbles_layer
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._painted_stroke)
            self._watched.events.data.disconnect(self._scribbles_replaced)
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._painted_stroke)
            layer.events.data.connect(self._scribbles_replaced)
        self._scribbles_replaced()

    def _scribbles_replaced(self, event: Any = None) -> None:
        layer = self.scribbles_layer
        self._painted = set(pv.painted_slices(layer.data)) if layer is not None and np.ndim(layer.data) == 3 else set()

    def _painted_stroke(self, event: Any = None) -> None:
        """After a stroke (napari tells before it writes the data: looked at once control returns to Qt)."""
        touched = {self.current_slice()} | layers.stroke_slices(getattr(event, "value", None))
        self._strokes_pending += 1
        QTimer.singleShot(0, lambda: self._stroke_done(touched) if _alive(self) else None)

    def _stroke_done(self, touched: set[int]) -> None:
        """Which slices hold scribbles now (the visible one, and any a 3-D brush reached); the live preview."""
        self._strokes_pending -= 1
        layer = self.scribbles_layer
        if layer is None or np.ndim(layer.data) != 3:
            return
        for z in touched:
            if 0 <= z < layer.data.shape[0]:
                (self._painted.add if layer.data[z].any() else self._painted.discard)(z)
        if self.live_box.isChecked():
            self.preview(train=True, auto=True)

    def current_slice(self) -> int:
        """The z index (level 0) of the slice the viewer shows."""
        layer = self.image_layer or self.scribbles_layer
        if layer is None:
            return 0
        z = float(layer.world_to_data(self.viewer.dims.point)[0])
        return int(min(max(round(z), 0), layers.level0(layer).shape[0] - 1))

    def _slice_changed(self, event: Any = None) -> None:
        """On another slice: its preview, or without a forest yet its features, ready before the first stroke."""
        if self.live_box.isChecked():
            self.preview(train=False, auto=True)

    # ------------------------------------------------------------------ preview

    def session(self) -> pv.SlicePreview:
        """The :class:`~gpuseg.classify.preview.SlicePreview` of the image and features chosen (kept while they are)."""
        image = self.image_layer
        if image is None:
            raise InputError("no tomogram: open one (File ▸ Open, or `napari --plugin gpuseg IMAGE.zarr`)")
        if self.forest_origin == "loaded" and self.forest is not None:
            features: Any = classify.spec_of(self.forest, "the model")
            twod = False
        else:
            features, twod = self.features_box.currentText().strip() or "default", self.twod_box.isChecked()
        key = (id(image), str(features), twod)
        if self._session is None or self._session_key != key:
            self._session = pv.SlicePreview(layers.level0(image), features, twod=twod, name=image.name)
            self._session_key = key
        return self._session

    def preview(self, train: bool = True, auto: bool = False) -> None:
        """Predict the visible slice in the background: with a new live forest (``train``) or the current one.

        A request while one runs is queued (the newest wins), so strokes never pile up work. ``auto`` (after a
        stroke or a move to another slice) says nothing while no tomogram is chosen.
        """
        if auto and self.image_layer is None:
            return
        if self._preview_running:
            self._preview_again = bool(train or self._preview_again)
            self._preview_auto = auto and self._preview_auto
            return
        try:
            session = self.session()
        except GpusegError as exc:
            show_warning(str(exc))
            return
        layer, labels = self.scribbles_layer, None
        if train:
            if layer is None:
                show_warning("no scribbles layer: press New, then paint")
                return
            labels = layer.data
            if tuple(np.shape(labels)) != session.shape:
                show_warning(f"the scribbles layer {layer.name!r} has shape {tuple(np.shape(labels))}, the tomogram "
                             f"{session.shape}: paint on a layer of the tomogram's shape (press New)")
                return
        z = self.current_slice()
        trees = self.trees_box.value() or pv.PREVIEW_TREES
        self._preview_running, self._preview_again, self._preview_auto = True, None, True
        self._start(tasks.preview_job, session, z, labels, sorted(self._painted), trees, self.forest,
                    returned=self._previewed, finished=self._preview_finished)

    def preview_now(self, train: bool = True) -> pv.SlicePrediction | None:
        """:meth:`preview` in this thread, returning what it shows (scripts, tests, timing)."""
        layer = self.scribbles_layer
        result = tasks.preview_job(self.session(), self.current_slice(), layer.data if train and layer is not None else None,
                              sorted(self._painted), self.trees_box.value() or pv.PREVIEW_TREES, self.forest)
        self._previewed(result)
        return result[1]

    def _previewed(self, result: tuple[Any, pv.SlicePrediction | None, dict[str, float]]) -> None:
        forest, shown, timings = result
        self.timings = timings
        if forest is not None and forest is not self.forest:
            self.forest, self.forest_origin = forest, "live"
        if shown is None:
            self.status.setText("paint scribbles of at least two classes to see a preview")
            return
        self.last_preview = shown
        self._show_preview(shown)
        said = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        kind = {"live": "live forest", "trained": "trained forest", "loaded": "loaded model"}.get(self.forest_origin, "")
        assert self.forest is not None
        self.status.setText(f"slice {shown.z}: {kind} of {self.forest.n_trees} trees ({said})")

    def _preview_finished(self) -> None:
        self._preview_running = False
        again, auto = self._preview_again, self._preview_auto
        self._preview_again, self._preview_auto = None, True  # taken: a request that stops with a message is done
        if again is not None:
            self.preview(train=again, auto=auto)

    def _show_preview(self, shown: pv.SlicePrediction) -> None:
        image = self.image_layer
        if image is None or self.forest is None:
            return
        scale, translate = np.asarray(image.scale, float), np.asarray(image.translate, float)
        at = translate + np.array([shown.z, 0, 0]) * scale  # a one-slice layer shown on that slice only
        names = dict(zip(self.forest.classes.tolist(), self.forest.class_names))
        values = [0, *names]
        features = {"index": values, "class": ["not assigned", *names.values()]}
        if PREVIEW_PREDICTION in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW_PREDICTION]
            layer.data, layer.translate, layer.scale = shown.labels[None], at, scale
            layer.colormap, layer.features = class_colormap(names), features
        else:
            self.viewer.add_labels(shown.labels[None], name=PREVIEW_PREDICTION, opacity=0.5, colormap=class_colormap(names),
                                   features=features, **{**layers.placed_like(image), "translate": at})
        if PREVIEW_UNCERTAINTY in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW_UNCERTAINTY]
            layer.data, layer.translate, layer.scale = shown.uncertainty[None], at, scale
        else:
            self.viewer.add_image(shown.uncertainty[None], name=PREVIEW_UNCERTAINTY, colormap="inferno",
                                  contrast_limits=(0.0, 1.0), opacity=0.7, visible=False,
                                  **{**layers.placed_like(image), "translate": at})
        if self.scribbles_layer is not None:  # keep painting where the painter was
            self.viewer.layers.selection.active = self.scribbles_layer

    # ------------------------------------------------------------------ training

    def train(self) -> None:
        """:func:`gpuseg.classify.train` on the painted layer, in the background; then the slice is previewed."""
        image, layer = self.image_layer, self.scribbles_layer
        if image is None or layer is None:
            show_warning("open a tomogram and paint a scribbles layer first")
            return
        features = self.features_box.currentText().strip() or "default"
        source = layers.source_of(image)
        self.status.setText("training…")
        self.train_button.setEnabled(False)
        self._start(tasks.train_job, source, np.asarray(layer.data), features, self.twod_box.isChecked(),
                    self.trees_box.value() or None, returned=self._trained,
                    finished=lambda: self.train_button.setEnabled(True))

    def _trained(self, result: classify.TrainResult) -> None:
        self.forest, self.forest_origin = result.forest, "trained"
        self.status.setText(f"trained: {result.forest.n_trees} trees on {result.samples[-1]} voxels")
        self.preview(train=False)

    # ------------------------------------------------------------------ files

    def save_scribbles(self, path: str | os.PathLike[str]) -> str:
        """Write the scribbles layer as an annotation volume (zarr) that ``gpuseg train --labels`` takes."""
        layer = self.scribbles_layer
        if layer is None:
            raise InputError("no scribbles layer to save")
        data = np.asarray(layer.data)
        if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
            raise InputError(f"{layer.name}: holds values beyond 0..255; an annotation volume is uint8")
        image = self.image_layer
        voxel = image.metadata.get(metadata.VOXEL_SIZE_KEY) if image is not None else None
        volumes.save(data.astype(np.uint8, copy=False), path, overwrite=True,
                     attrs={metadata.VOXEL_SIZE_KEY: voxel} if voxel else {})
        return os.fspath(path)

    def load_scribbles(self, path: str | os.PathLike[str]) -> Labels:
        """An annotation volume (any format gpuseg reads, checked as ``gpuseg train`` checks it) as a new layer."""
        image = self.image_layer
        if image is None:
            raise InputError("open the tomogram first: scribbles are checked against its shape")
        shape = layers.level0(image).shape
        index, values = read_one(os.fspath(path), shape)
        data = np.zeros(shape, np.uint8)
        data.reshape(-1)[index] = values
        layer = self.viewer.add_labels(data, name=layers.free_name(self.viewer, Path(os.fspath(path)).name),
                                       colormap=class_colormap(range(1, 9)), opacity=0.9, **layers.placed_like(image))
        self.scribbles_box.setCurrentText(layer.name)
        return layer

    def save_model(self, path: str | os.PathLike[str]) -> str:
        """Write the current forest as a model file that ``gpuseg predict --model`` takes."""
        if self.forest is None:
            raise InputError("no model yet: paint and train first")
        classify.save(self.forest, path)
        return os.fspath(path)

    def load_model(self, path: str | os.PathLike[str]) -> classify.Forest:
        """Read a model file; the preview then computes the model's own features."""
        self.forest, self.forest_origin = classify.load(path), "loaded"
        self._session, self._session_key = None, None
        self.status.setText(f"loaded {os.fspath(path)}: {self.forest.n_trees} trees, classes "
                            f"{', '.join(self.forest.class_names)}")
        return self.forest

    def _ask_save_scribbles(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save scribbles", "scribbles.zarr", "zarr (*.zarr)")
        if path:
            self._guarded(self.save_scribbles, path)

    def _ask_load_scribbles(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load scribbles (a .zarr)") or ""
        if path:
            self._guarded(self.load_scribbles, path)

    def _ask_save_model(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "forest.npz", "model (*.npz)")
        if path:
            self._guarded(self.save_model, path)

    def _ask_load_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "model (*.npz)")
        if path:
            self._guarded(self.load_model, path)

    def _guarded(self, action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except GpusegError as exc:
            show_warning(str(exc))
            return None

    # ------------------------------------------------------------------ the whole volume

    def predict_volume(self) -> None:
        """:func:`gpuseg.classify.predict` of the image into the output, in the background, then open the result."""
        image, out = self.image_layer, self.output_edit.text().strip()
        if image is None or self.forest is None:
            show_warning("open a tomogram, paint and train first")
            return
        source = layers.source_of(image)
        if not isinstance(source, str):
            show_warning(f"{image.name} is not on disk: predicting the volume out of core needs the tomogram opened "
                         "from a file (File ▸ Open, or `napari --plugin gpuseg IMAGE.zarr`)")
            return
        if not out:
            show_warning("name an output (OUT.zarr) first")
            return
        targets = {"uncertainty": f"{out}/uncertainty" if self.uncertainty_box.isChecked() else None,
                   "probabilities": f"{out}/probabilities" if self.probabilities_box.isChecked() else None}
        self._cancel.clear()
        self._run_done.clear()
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.setTextVisible(True)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._register_task(f"predicting {image.name} into {out}")
        self._start(tasks.predict_job, source, self.forest, f"{out}/labels", targets, self.overwrite_box.isChecked(), self._cancel,
                    self.run_progressed.emit, self._run_done, dict(self.run_options),
                    returned=lambda _: self._predicted(out),
                    finished=self._run_finished)

    def _cancel_clicked(self) -> None:
        self._cancel.set()  # the run stops once its running blocks end; the button does not wait for them
        self.status.setText("cancelling: the blocks running now finish first")

    def cancel(self) -> bool:
        """Stop a running prediction (the blocks already running end first); True once it has stopped."""
        self._cancel.set()
        return self._run_done.wait(CLOSE_WAIT_S)

    @property
    def busy(self) -> bool:
        """Whether a preview, a training or a prediction is running or waiting to."""
        return bool(self._workers) or self._strokes_pending > 0 or self._preview_again is not None

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _predicted(self, out: str) -> None:
        if _alive(self):
            self.viewer.open(out, plugin="gpuseg")  # through the reader, lazily, as `napari --plugin gpuseg OUT`
        show_info(f"prediction written to {out}")

    def _run_finished(self) -> None:
        self._update_task(done=True)
        if not _alive(self):
            return
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _register_task(self, what: str) -> None:
        """Tell napari a run is on, so that closing the viewer asks first and then cancels it."""
        window = getattr(self.viewer, "window", None)
        register = getattr(window, "_register_task_status", None)  # napari ≥ 0.5; without it, no question asked
        if register is None:
            return
        from napari.utils.task_status import Status

        self._task_id = register("gpuseg", Status.BUSY, what, cancel_callback=self.cancel)

    def _update_task(self, done: bool) -> None:
        window = getattr(self.viewer, "window", None)
        update = getattr(window, "_update_task_status", None)
        if update is None or self._task_id is None:
            return
        from napari.utils.task_status import Status

        update(self._task_id, Status.COMPLETED if done else Status.BUSY)
        if done:
            self._task_id = None

    # ------------------------------------------------------------------ workers

    def _start(self, func: Any, *args: Any, returned: Any, finished: Any = None) -> Any:
        """Run ``func(*args)`` in a worker thread; its errors become one line in napari's notifications.

        The notification is a plain function's (it still comes after the viewer closed and took this widget along).
        """
        worker = create_worker(func, *args, _start_thread=False, _connect={"returned": returned, "errored": notify})
        worker.errored.connect(self._failed)
        self._workers.add(worker)

        def done() -> None:
            self._workers.discard(worker)
            if finished is not None and _alive(self):
                finished()

        worker.finished.connect(done)
        worker.start()
        return worker

    def _failed(self, exc: Exception) -> None:
        if _alive(self):
            self.status.setText(str(exc))


def notify(exc: Exception) -> None:
    """One line in napari's notification area for an error of a background job (never a traceback dialog)."""
    if isinstance(exc, tasks.Cancelled):
        show_info(str(exc))
    elif isinstance(exc, GpusegError):
        show_warning(str(exc))
    else:  # a defect of gpuseg: one line here, the traceback in the log
        log.error("gpuseg napari widget: %s", exc, exc_info=exc)
        show_error(f"gpuseg failed: {type(exc).__name__}: {exc} (the log has the traceback)")


def _alive(widget: QWidget) -> bool:
    """Whether the widget's Qt object still exists (a run may end after the viewer closed)."""
    try:
        widget.objectName()
    except RuntimeError:
        return False
    return True


__all__ = ["ClassifierWidget", "class_colormap"]
