"""The napari plugin in a real (headless) napari: reader, widget, live preview, background run, bad input.

Every check compares with the command line's output for the same scribbles: the live forest and the trained one
equal ``gpuseg train --trees N``'s, the preview's labels equal ``gpuseg predict``'s on the slice, the widget's run
writes the CLI's bytes, and the CLI's outputs open through the reader with their voxel size and label colours.

napari needs a display: the tests start Xvfb when there is none (``apt-get install xvfb``). Without napari or a
display they skip, saying what to install; with ``GPUSEG_REQUIRE_NAPARI=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

REQUIRED = os.environ.get("GPUSEG_REQUIRE_NAPARI", "") == "1"
INSTALL = "pip install 'gpuseg[napari]'"


def _unavailable(why: str) -> None:
    if REQUIRED:
        pytest.fail(f"{why} (GPUSEG_REQUIRE_NAPARI=1 forbids skipping the napari tests)", pytrace=False)
    pytest.skip(why, allow_module_level=True)


try:
    import napari  # noqa: F401
    import pytestqt  # noqa: F401
except ImportError as exc:
    _unavailable(f"the napari tests need napari, a Qt binding and pytest-qt ({exc}): {INSTALL}")

from gpuseg import classify, cli  # noqa: E402
from gpuseg.classify.scribbles import random_scribbles, study_slices  # noqa: E402
from gpuseg.io import ome  # noqa: E402
from gpuseg.io import open_array as gpuseg_open  # noqa: E402

FEATURES = "gaussian:1.0,gradient:1.0,hessian:1.0"  # small kernels: the tests stay fast
TREES = 10
SHAPE = (128, 128, 128)  # two pyramid levels: the reader's multiscale is exercised
TIMEOUT_MS = 120_000


def _die_with_parent() -> None:
    """In the child before exec: end when the test process ends (Linux ``PR_SET_PDEATHSIG``).

    Qt keeps its display connection until the process exits and exits the process if the server goes first, so
    the server may not be stopped by a fixture's teardown: it goes with the process instead.
    """
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture(scope="session", autouse=True)
def _display():
    """A display for Qt: the one there is, else a private Xvfb for the rest of this process."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        _unavailable("no display and no Xvfb for napari: apt-get install xvfb (or run under xvfb-run)")
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=_die_with_parent)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # Xvfb writes its display number once it accepts clients
    if not number:
        server.kill()
        _unavailable("Xvfb did not start: check `Xvfb -displayfd 1` by hand")
    os.environ.update(DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb")


def gpuseg_cli(*args: object) -> None:
    """Run a gpuseg command in this process, as the shell would."""
    assert cli.main([str(a) for a in args]) == 0, args


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A phantom, scribbles on the study's slices, and the CLI's training and prediction on them."""
    folder = tmp_path_factory.mktemp("napari")
    phantom = folder / "ph.zarr"
    gpuseg_cli("phantom", phantom, "--preset", "nmc-1", "--shape", *SHAPE, "--chunks", 32, "-q")
    truth = gpuseg_open(phantom / "truth")[:].astype(np.uint8)
    scribbles = random_scribbles(truth, 0.05, seed=0)
    np.save(folder / "scribbles.npy", scribbles)
    gpuseg_cli("train", phantom / "raw", "--labels", folder / "scribbles.npy", "--model", folder / "cli.npz",
               "--features", FEATURES, "--trees", TREES, "--device", "cpu", "-q")
    out = folder / "cli.zarr"
    gpuseg_cli("predict", phantom / "raw", "--model", folder / "cli.npz", out / "labels", "--uncertainty",
               out / "uncertainty", "--probabilities", out / "probabilities", "--device", "cpu", "-q")
    return {"folder": folder, "phantom": phantom, "scribbles": scribbles, "model": folder / "cli.npz", "out": out}


@pytest.fixture
def viewer_and_widget(make_napari_viewer):
    from gpuseg.napari.widget import ClassifierWidget

    viewer = make_napari_viewer()
    widget = ClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget, name="gpuseg")
    return viewer, widget


def wait_idle(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)


def ngff(path: Path) -> dict:
    """The NGFF attributes of an image group, as written."""
    import zarr

    return dict(ome.ngff(zarr.open_group(path, mode="r").attrs.asdict()))


def notes():
    from napari.utils.notifications import notification_manager

    return notification_manager.records


def test_paint_preview_train_run_equal_the_cli(viewer_and_widget, run, qtbot):
    viewer, widget = viewer_and_widget
    viewer.open(os.fspath(run["phantom"] / "raw"), plugin="gpuseg")
    widget.image_box.setCurrentText("raw")
    widget.features_box.setCurrentText(FEATURES)
    widget.trees_box.setValue(TREES)
    layer = widget.new_scribbles()
    scribbles, z_shown = run["scribbles"], 64
    for z in [*study_slices(SHAPE[0]).tolist()]:  # slice by slice, as a painter moves through the volume
        viewer.dims.set_current_step(0, z)
        y, x = np.nonzero(scribbles[z])
        layer.data_setitem((np.full_like(y, z), y, x), scribbles[z][y, x])  # one stroke: napari's paint event
    viewer.dims.set_current_step(0, z_shown)
    wait_idle(qtbot, widget)
    shown, live = widget.last_preview, widget.forest
    assert shown is not None and shown.z == z_shown == widget.current_slice()
    assert widget.forest_origin == "live" and widget.timings["predict"] > 0

    # the painted layer, saved, is the annotation volume the CLI trained on: the same forest
    widget.save_scribbles(run["folder"] / "painted.zarr")
    assert np.array_equal(gpuseg_open(run["folder"] / "painted.zarr")[:], scribbles)
    cli_forest = classify.load(run["model"])
    assert live.digest() == cli_forest.digest()
    # ... and the preview shows the CLI's prediction of that slice, label for label
    cli_labels = gpuseg_open(run["out"] / "labels")
    cli_uncertainty = gpuseg_open(run["out"] / "uncertainty")
    assert np.array_equal(shown.labels, cli_labels[z_shown])
    assert np.abs(np.rint(shown.uncertainty * 255) - cli_uncertainty[z_shown]).max() <= 1  # float32 vs the CLI's uint8
    shown_layer = viewer.layers["prediction (preview)"]
    assert np.array_equal(np.asarray(shown_layer.data)[0], cli_labels[z_shown])
    assert tuple(shown_layer.scale) == tuple(viewer.layers["raw"].scale)

    # Train: gpuseg.classify.train, as `gpuseg train --trees N`
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.forest_origin == "trained" and widget.forest.digest() == cli_forest.digest()
    widget.save_model(run["folder"] / "widget.npz")
    assert classify.load(run["folder"] / "widget.npz").digest() == cli_forest.digest()

    # the whole volume in the background: the CLI's bytes, opened lazily through the reader
    out = run["folder"] / "widget.zarr"
    widget.output_edit.setText(os.fspath(out))
    widget.probabilities_box.setChecked(True)
    widget.predict_volume()
    wait_idle(qtbot, widget)
    for name in ("labels", "uncertainty", "probabilities"):
        assert np.array_equal(gpuseg_open(out / name)[:], gpuseg_open(run["out"] / name)[:]), name
    assert widget.progress.value() == widget.progress.maximum() > 0
    opened = viewer.layers["labels"]
    assert type(opened).__name__ == "Labels" and np.array_equal(np.asarray(opened.data[0]), cli_labels[:])


def test_cli_outputs_open_with_their_scale_and_colours(make_napari_viewer, run):
    viewer = make_napari_viewer()
    viewer.open(os.fspath(run["out"]), plugin="gpuseg")  # what `napari --plugin gpuseg cli.zarr` does
    viewer.open(os.fspath(run["phantom"]), plugin="gpuseg")
    voxel = gpuseg_open(run["phantom"] / "raw").attrs["voxel_size_nm"]
    names = [layer.name for layer in viewer.layers]
    forest = classify.load(run["model"])
    assert names == ["labels", *(f"probabilities {n}" for n in forest.class_names), "uncertainty", "raw", "truth"]
    for layer in viewer.layers:
        assert np.allclose(layer.scale, voxel) and [str(u) for u in layer.units] == ["nanometer"] * 3, layer.name
    raw = viewer.layers["raw"]
    assert raw.multiscale and len(raw.data) == len(ome.level_paths(ngff(run["phantom"] / "raw"))) == 2
    for name in ("labels", "truth"):  # label images in the colours and names their metadata gives
        layer = viewer.layers[name]
        image_label = ngff(run["phantom"] / name if name == "truth" else run["out"] / name)["image-label"]
        for entry in image_label["colors"]:
            value = entry["label-value"]
            colour = layer.colormap.map(np.array([value]))[0]
            assert np.allclose(colour, np.array(entry["rgba"]) / 255, atol=1e-6), (name, value)
        classes = {p["label-value"]: p["class"] for p in image_label["properties"]}
        assert dict(zip(layer.features["index"], layer.features["class"])) == classes
    assert np.array_equal(np.asarray(viewer.layers["labels"].data[0]), gpuseg_open(run["out"] / "labels")[:])


def test_napari_out_zarr_opens_through_the_reader(make_napari_viewer, run, monkeypatch):
    """``napari out.zarr`` (and ``out.zarr/labels``): napari offers gpuseg's reader beside its built-in one for any
    zarr, so it asks once; with gpuseg chosen for zarr (the dialog's "remember", kept in napari's settings) the
    plain command opens through it, at the right scale."""
    from napari.errors import MultipleReaderError
    from napari.settings import get_settings

    viewer = make_napari_viewer()
    out, labels = os.fspath(run["out"]), os.fspath(run["out"] / "labels")
    plugins = get_settings().plugins
    chosen = {k: v for k, v in plugins.extension2reader.items() if not k.startswith("*.zarr")}
    monkeypatch.setattr(plugins, "extension2reader", chosen)
    for path in (out, labels):  # plugin=None: as `napari PATH` opens (viewer.open's default is napari's own reader)
        with pytest.raises(MultipleReaderError) as offered:
            viewer.open(path, plugin=None)
        assert "gpuseg" in offered.value.available_plugins
    monkeypatch.setattr(plugins, "extension2reader", {**chosen, "*.zarr": "gpuseg", "*.zarr/*": "gpuseg"})
    viewer.open(labels, plugin=None)
    layer = viewer.layers["labels"]
    assert layer.multiscale and np.allclose(layer.scale, gpuseg_open(labels).attrs["voxel_size_nm"])
    assert np.array_equal(np.asarray(layer.data[0]), gpuseg_open(labels)[:])
    viewer.layers.clear()
    viewer.open(out, plugin=None)
    assert {"labels", "uncertainty"} <= {layer.name for layer in viewer.layers}


def test_bad_input_is_one_notification(viewer_and_widget, run, qtbot, tmp_path):
    import zarr
    from napari.utils.notifications import ErrorNotification

    viewer, widget = viewer_and_widget
    before = len(notes())
    # a zarr that holds no image
    zarr.open_group(tmp_path / "table.zarr", mode="w").create_array("rows", shape=(10,), dtype="f8")
    assert viewer.open(os.fspath(tmp_path / "table.zarr"), plugin="gpuseg") == []
    assert "holds no 3-D image" in notes()[-1].message

    viewer.open(os.fspath(run["phantom"] / "raw"), plugin="gpuseg")
    widget.image_box.setCurrentText("raw")
    widget.features_box.setCurrentText(FEATURES)
    # painting on a layer of another shape
    other = viewer.add_labels(np.zeros((8, 16, 16), np.uint8), name="elsewhere")
    widget.scribbles_box.setCurrentText("elsewhere")
    other.data_setitem((np.array([0]), np.array([1]), np.array([1])), 1)
    wait_idle(qtbot, widget)
    assert "paint on a layer of the tomogram's shape" in notes()[-1].message
    # training on one class
    layer = widget.new_scribbles()
    layer.data_setitem((np.full(5, 64), np.arange(5), np.arange(5)), 1)
    widget.train()
    wait_idle(qtbot, widget)
    assert "only class 1 is labelled" in notes()[-1].message
    assert widget.forest is None and "prediction (preview)" not in viewer.layers
    assert not any(isinstance(n, ErrorNotification) for n in notes()[before:])  # messages, never tracebacks


def test_closing_the_viewer_cancels_a_run_and_leaves_no_output(viewer_and_widget, run, qtbot):
    from napari.utils.notifications import ErrorNotification

    viewer, widget = viewer_and_widget
    before = len(notes())
    viewer.open(os.fspath(run["phantom"] / "raw"), plugin="gpuseg")
    widget.image_box.setCurrentText("raw")
    widget.load_model(run["model"])
    out = run["folder"] / "closed.zarr"
    widget.output_edit.setText(os.fspath(out))
    widget.run_options = {"workers": 1, "block_shape": (32, 128, 128)}  # four blocks, one at a time
    widget.predict_volume()
    qtbot.waitUntil(lambda: widget.progress.value() >= 1, timeout=TIMEOUT_MS)
    started = time.perf_counter()
    viewer.close()  # napari cancels the run it was told about, which stops after the running block
    assert time.perf_counter() - started < 60
    assert widget._run_done.is_set()
    assert not (out / "labels").exists() and not (out / "uncertainty").exists()
    qtbot.waitUntil(lambda: any("stopped before its end" in n.message for n in notes()[before:]), timeout=TIMEOUT_MS)
    assert not any(isinstance(n, ErrorNotification) for n in notes()[before:])


def test_the_manifest_names_the_reader_and_the_widget():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("gpuseg")
    assert [r.command for r in manifest.contributions.readers] == ["gpuseg.get_reader"]
    assert [w.display_name for w in manifest.contributions.widgets] == ["Pixel classifier"]
    assert Path(manifest.contributions.commands[0].python_name.split(":")[0].replace(".", "/") + ".py").name == "reader.py"
