"""OME-Zarr (gpuseg.io.ome): pyramids equal in-memory references across chunkings, the NGFF 0.5 metadata
validates (ome-zarr-models), the voxel size travels, a killed pyramid is rebuilt, OME-Zarr and plain inputs
read at level 0, and ``info`` / ``export`` / ``crop`` take 4-D (channel) outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from skimage.transform import downscale_local_mean

from gpuseg import classify, filters, io
from gpuseg.classify import model_file
from gpuseg.io import ome
from gpuseg.io.summary import summary
from tests.conftest import run_cli

VOXEL = [400.0, 300.0, 300.0]
SHAPE = (37, 42, 33)  # odd edges: levels round up


@pytest.fixture
def ome_on(monkeypatch):
    """OME-Zarr outputs, with pyramids down to 4 voxels (test volumes are small)."""
    ome.enable(True)
    monkeypatch.setattr(ome, "MIN_EDGE", 4)
    yield
    ome.enable(None)


@pytest.fixture
def plain(monkeypatch):
    ome.enable(False)
    yield
    ome.enable(None)


def _image(path, data, attrs, chunks):
    ome.create_image(path, data.shape, data.dtype, chunks, attrs)[...] = data
    return path


def _attrs(path):
    return json.loads((Path(path) / "zarr.json").read_text())["attributes"]


def _mean_reference(level):
    """skimage's 2×2×2 mean; an odd edge first repeats its last voxel (the mean over the voxels it has)."""
    even = np.pad(level, [(0, n % 2) for n in level.shape], mode="edge")
    return downscale_local_mean(even.astype(np.float64), (2, 2, 2))


# --------------------------------------------------------------------------- pyramids


@pytest.mark.parametrize(("shape", "chunks", "dtype"), [
    (SHAPE, (16, 16, 16), "float32"), (SHAPE, (5, 7, 9), "uint16"), (SHAPE, (32, 3, 8), "float32"),
    ((32, 48, 40), (16, 16, 16), "uint16"), ((32, 48, 40), (5, 7, 9), "float32"), ((32, 48, 40), (32, 3, 8), "uint16")])
def test_grey_levels_are_the_mean_of_the_level_before(tmp_path, shape, chunks, dtype):
    vol = (np.random.default_rng(3).random(shape) * 1000).astype(dtype)
    path = _image(tmp_path / "g.zarr", vol, {"voxel_size_nm": VOXEL}, chunks)
    levels = ome.write_multiscale(path, min_edge=4, workers=2)
    assert len(levels) == len(ome.level_shapes(shape, 4)) >= 3
    want = vol
    for k in range(1, len(levels)):
        ref = _mean_reference(want)
        got = ome.read_level(path, k)[:]
        assert got.shape == ref.shape and got.dtype == vol.dtype
        if dtype == "uint16":
            np.testing.assert_array_equal(got, np.rint(ref).astype(dtype))
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-6)
        want = got
    if shape == (32, 48, 40):  # even all the way: exactly skimage's mean over 2^k voxels at level k
        np.testing.assert_allclose(ome.read_level(path, 2)[:], downscale_local_mean(vol.astype(np.float64), (4, 4, 4)),
                                   rtol=1e-5, atol=1.0 if dtype == "uint16" else 1e-3)  # two roundings


@pytest.mark.parametrize("chunks", [(16, 16, 16), (5, 7, 9), (37, 1, 33)])
def test_label_levels_pick_every_second_voxel_and_name_their_classes(tmp_path, chunks):
    vol = np.random.default_rng(4).integers(0, 4, SHAPE).astype(np.uint8)
    path = _image(tmp_path / "s.zarr", vol, {"voxel_size_nm": VOXEL, "phases": 3,
                                             "phase_names": {"1": "active", "2": "carbon-binder", "3": "pore"}}, chunks)
    levels = ome.write_multiscale(path, min_edge=4)
    for k in range(len(levels)):
        np.testing.assert_array_equal(ome.read_level(path, k)[:], vol[:: 2**k, :: 2**k, :: 2**k])
    model = ome.validate(path)
    assert type(model).__name__ == "ImageLabel"
    label = _attrs(path)["ome"]["image-label"]
    assert {p["label-value"]: p["class"] for p in label["properties"]} == {0: "not assigned", 1: "active",
                                                                                 2: "carbon-binder", 3: "pore"}
    colours = {c["label-value"]: c["rgba"] for c in label["colors"]}
    assert colours[0][3] == 0 and len({tuple(colours[v]) for v in (1, 2, 3)}) == 3
    image = _attrs(path)["ome"]["multiscales"][0]
    assert all(len(d["coordinateTransformations"]) == 1 for d in image["datasets"])  # picks: no shift


def test_a_named_volume_with_values_beyond_its_labels_gets_a_grey_pyramid(tmp_path):
    """An uncertainty map carries its prediction's class names: its values (0–255) say it is not a label image."""
    vol = np.random.default_rng(5).integers(0, 256, (16, 16, 16)).astype(np.uint8)
    path = _image(tmp_path / "u.zarr", vol, {"classes": [1, 2], "class_names": ["a", "b"]}, (8, 8, 8))
    ome.write_multiscale(path, min_edge=4)
    assert "image-label" not in _attrs(path)["ome"]
    np.testing.assert_array_equal(ome.read_level(path, 1)[:], np.rint(_mean_reference(vol)).astype(np.uint8))
    assert type(ome.validate(path)).__name__ == "Image"


# --------------------------------------------------------------------------- outputs of the engine


def test_engine_outputs_are_valid_images_carrying_the_voxel_size(tmp_path, ome_on):
    vol = np.random.default_rng(6).integers(0, 255, SHAPE).astype(np.uint8)
    np.save(tmp_path / "v.npy", vol)
    assert run_cli("ingest", tmp_path / "v.npy", tmp_path / "in.zarr/raw", "--voxel-size", *VOXEL, "--chunks", "16",
                   "-q") == 0
    assert run_cli("segment", "threshold", tmp_path / "in.zarr/raw", tmp_path / "seg.zarr", "--value", "128",
                   "--device", "cpu", "-q") == 0
    filters.gaussian(tmp_path / "in.zarr/raw", 1.0, output=tmp_path / "g.zarr", device="cpu")
    for name, kind in [("in.zarr/raw", "Image"), ("seg.zarr", "ImageLabel"), ("g.zarr", "Image")]:
        path = tmp_path / name
        assert type(ome.validate(path)).__name__ == kind, name
        attrs = _attrs(path)
        assert ome.PENDING_KEY not in attrs
        scales = ome.level_scales(attrs)
        assert len(scales) == 4 and all(s == [v * 2**k for v in VOXEL] for k, s in enumerate(scales))
        assert io.open_array(path).attrs["voxel_size_nm"] == VOXEL  # gpuseg's attributes stay on level 0
    np.testing.assert_array_equal(io.open_array(tmp_path / "seg.zarr")[:], np.where(vol > 128, 1, 2))
    shift = _attrs(tmp_path / "g.zarr")["ome"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][1]
    assert shift == {"type": "translation", "translation": [v / 2 for v in VOXEL]}  # a mean's centre moves half a voxel
    assert summary(tmp_path / "seg.zarr")["levels"][1]["shape"] == [-(-n // 2) for n in SHAPE]


def test_a_run_killed_while_building_its_pyramid_builds_it_again(tmp_path, ome_on, monkeypatch):
    vol = np.random.default_rng(7).random(SHAPE).astype(np.float32)
    io.create_array(tmp_path / "in.zarr/raw", SHAPE, vol.dtype, (16, 16, 16), {"voxel_size_nm": VOXEL})[:] = vol
    level, calls = ome._level, []

    def dies_at_level_two(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill: the partial stays, its pyramid half built
        return level(*args, **kw)

    monkeypatch.setattr(ome, "_level", dies_at_level_two)
    target = tmp_path / "out.zarr/g"
    with pytest.raises(KeyboardInterrupt):
        filters.gaussian(tmp_path / "in.zarr/raw", 1.5, output=target, device="cpu")
    partial = tmp_path / "out.zarr/.g.partial.zarr"
    assert not target.exists() and ome.PENDING_KEY in _attrs(partial)  # never taken as complete
    monkeypatch.setattr(ome, "_level", level)
    filters.gaussian(tmp_path / "in.zarr/raw", 1.5, output=target, device="cpu")
    filters.gaussian(tmp_path / "in.zarr/raw", 1.5, output=tmp_path / "ref.zarr", device="cpu")
    for k in range(4):
        np.testing.assert_array_equal(ome.read_level(target, k)[:], ome.read_level(tmp_path / "ref.zarr", k)[:])
    assert ome.PENDING_KEY not in _attrs(target) and not list(tmp_path.rglob(".*"))


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_an_ome_zarr_input_reads_at_level_zero(tmp_path, version, capsys):
    """An image written by ome-zarr-py (NGFF 0.5 on zarr v3, or 0.4 on zarr v2) is read at full resolution."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    vol = np.random.default_rng(8).integers(0, 255, (16, 20, 24)).astype(np.uint8)
    fmt = FormatV05() if version == "0.5" else FormatV04()
    group = zarr.open_group(tmp_path / "in.zarr", mode="w", zarr_format=fmt.zarr_format)
    write_image(vol, group, axes="zyx", fmt=fmt, scale={"z": 0.4, "y": 0.3, "x": 0.3},
                axes_units=dict.fromkeys("zyx", "micrometer"), scale_factors=[{"y": 2, "x": 2}], method="nearest")
    np.testing.assert_array_equal(io.open_array(tmp_path / "in.zarr")[:], vol)
    assert ome.read_level(tmp_path / "in.zarr", 1).shape == (16, 10, 12)
    assert run_cli("info", tmp_path / "in.zarr", "--json", "-q") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shape"] == [16, 20, 24] and report["voxel_size_nm"] == pytest.approx(VOXEL)
    assert run_cli("crop", tmp_path / "in.zarr", tmp_path / "c.zarr", "--size", "8", "-q") == 0
    np.testing.assert_array_equal(io.open_array(tmp_path / "c.zarr")[:], vol[4:12, 6:14, 8:16])
    # the voxel size in the foreign image's metadata travels to what gpuseg writes from it: copies and engine runs
    assert run_cli("segment", "threshold", tmp_path / "in.zarr", tmp_path / "seg.zarr", "--value", 128, "--device",
                   "cpu", "-q") == 0
    for out in ("c.zarr", "seg.zarr"):
        assert io.open_array(tmp_path / out).attrs["voxel_size_nm"] == pytest.approx(VOXEL)
        assert ome.level_scales(_attrs(tmp_path / out))[0] == pytest.approx(VOXEL)
    np.testing.assert_array_equal(io.open_array(tmp_path / "seg.zarr")[:], np.where(vol > 128, 1, 2))


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_5d_image_with_one_time_point_and_channel_reads_as_3d(tmp_path, in_memory, monkeypatch, capsys):
    """bioformats2raw and Fiji write every image as (t, c, z, y, x): with t = c = 1 it is the 3-D volume, read
    into memory or through a zarr copy as a TIFF is, with its voxel size; with two channels it is refused."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_image

    from gpuseg.engine import staging

    if not in_memory:
        monkeypatch.setattr(staging, "IN_MEMORY_MAX_BYTES", 0)
    vol = np.random.default_rng(3).integers(0, 255, (12, 20, 24)).astype(np.uint8)
    group = zarr.open_group(tmp_path / "in.zarr", mode="w")
    write_image(vol[None, None], group, axes="tczyx", fmt=FormatV05(), scale={"t": 1, "c": 1, "z": 0.4, "y": 0.3, "x": 0.3},
                axes_units={"t": "second", **dict.fromkeys("zyx", "micrometer")}, scale_factors=[{"y": 2, "x": 2}],
                method="nearest")
    assert run_cli("segment", "threshold", tmp_path / "in.zarr", tmp_path / "seg.zarr", "--value", 100, "--device",
                   "cpu", "--chunks", 8, "-q") == 0
    seg = io.open_array(tmp_path / "seg.zarr")
    np.testing.assert_array_equal(seg[:], np.where(vol > 100, 1, 2))
    assert seg.attrs["voxel_size_nm"] == pytest.approx(VOXEL)
    capsys.readouterr()
    assert run_cli("info", tmp_path / "in.zarr", "--json", "-q") == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [12, 20, 24]
    assert run_cli("crop", tmp_path / "in.zarr", tmp_path / "c.zarr", "--size", 6, "-q") == 0
    np.testing.assert_array_equal(io.open_array(tmp_path / "c.zarr")[:], vol[3:9, 7:13, 9:15])
    assert run_cli("compare", tmp_path / "seg.zarr", tmp_path / "in.zarr", "-q") == 2  # grey values: no labels
    two = zarr.open_group(tmp_path / "two.zarr", mode="w")
    write_image(np.stack([vol, vol])[None], two, axes="tczyx", fmt=FormatV05(), scale_factors=[], method="nearest")
    capsys.readouterr()
    assert run_cli("segment", "threshold", tmp_path / "two.zarr", tmp_path / "s2.zarr", "--value", 1, "-q") == 2
    assert "5-D" in capsys.readouterr().err


def test_plain_zarr_stays_plain_while_switched_off(tmp_path, plain):
    vol = np.arange(8 * 9 * 10, dtype=np.uint16).reshape(8, 9, 10)
    io.create_array(tmp_path / "in.zarr/raw", vol.shape, vol.dtype, (4, 4, 4))[:] = vol
    assert run_cli("crop", tmp_path / "in.zarr/raw", tmp_path / "c.zarr", "--size", "4", "-q") == 0
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "c.zarr", mode="r")[:], vol[2:6, 2:6, 3:7])
    with pytest.raises(Exception, match="level 0 only"):
        ome.read_level(tmp_path / "c.zarr", 1)


# --------------------------------------------------------------------------- 4-D outputs through the CLI


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small forest (two classes) and the grey volume it was trained on."""
    rng = np.random.default_rng(9)
    image = (np.where(rng.random((20, 24, 28)) > 0.5, 150.0, 90.0) + rng.normal(0, 10, (20, 24, 28))).astype(np.float32)
    scribbles = np.zeros(image.shape, np.uint8)
    scribbles[10, ::3, ::3] = np.where(image[10, ::3, ::3] > 120, 1, 2)
    result = classify.train(image, scribbles, features="gaussian:1.0", trees=3, device="cpu", compare_size=8)
    folder = tmp_path_factory.mktemp("model")
    return image, model_file.save(result.forest.replace(class_names=("active", "pore")), folder / "m.npz")


def test_an_uncertainty_of_one_level_is_a_grey_image_not_labels(tmp_path, model, ome_on, monkeypatch):
    """The uncertainty (uint8 0-255) is written beside the labels by the same run, but the class names are the
    labels' alone: with one level (no pyramid to look at its values), it is still a grey image."""
    image, forest = model
    monkeypatch.setattr(ome, "MIN_EDGE", 64)
    io.create_array(tmp_path / "v.zarr/raw", image.shape, image.dtype, (8, 8, 8))[:] = image
    assert run_cli("predict", tmp_path / "v.zarr/raw", "--model", forest, tmp_path / "seg.zarr/labels",
                   "--uncertainty", tmp_path / "seg.zarr/unsure", "--device", "cpu", "-q") == 0
    assert ome.level_paths(_attrs(tmp_path / "seg.zarr/unsure")) == ["0"]  # smaller than ome.MIN_EDGE: one level
    assert type(ome.validate(tmp_path / "seg.zarr/unsure")).__name__ == "Image"
    assert type(ome.validate(tmp_path / "seg.zarr/labels")).__name__ == "ImageLabel"
    assert "class_names" not in io.open_array(tmp_path / "seg.zarr/unsure").attrs
    assert io.open_array(tmp_path / "seg.zarr/labels").attrs["class_names"] == ["active", "pore"]


@pytest.mark.parametrize("layout", ["ome", "plain"])
def test_info_export_crop_take_a_4d_probability_output(tmp_path, model, layout, capsys, monkeypatch):
    image, forest = model
    ome.enable(layout == "ome")
    monkeypatch.setattr(ome, "MIN_EDGE", 4)
    try:
        io.create_array(tmp_path / "v.zarr/raw", image.shape, image.dtype, (8, 8, 8), {"voxel_size_nm": VOXEL})[:] = image
        assert run_cli("predict", tmp_path / "v.zarr/raw", "--model", forest, tmp_path / "seg.zarr/labels",
                       "--probabilities", tmp_path / "seg.zarr/proba", "--prob-dtype", "float16", "--device", "cpu",
                       "-q") == 0
        proba = tmp_path / "seg.zarr/proba"
        data = io.open_array(proba)[:]
        assert data.shape == (2, *image.shape)
        if layout == "ome":
            assert type(ome.validate(proba)).__name__ == "Image"
            assert type(ome.validate(tmp_path / "seg.zarr/labels")).__name__ == "ImageLabel"
            image_meta = _attrs(proba)["ome"]["multiscales"][0]
            assert [a["name"] for a in image_meta["axes"]] == ["c", "z", "y", "x"]
            assert ome.read_level(proba, 1).shape == (2, 10, 12, 14)
            assert image_meta["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, *(2 * v for v in VOXEL)]
        capsys.readouterr()
        assert run_cli("info", proba, "--json", "-q") == 0
        report = json.loads(capsys.readouterr().out)
        assert report["shape"] == [2, *image.shape] and sum(report["channel_means"]) == pytest.approx(1, abs=0.01)
        assert run_cli("info", proba, "-q") == 0 and "(c, z, y, x)" in capsys.readouterr().out
        assert run_cli("export", proba, tmp_path / "p.tif", "-q") == 0
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), data.transpose(1, 0, 2, 3))
        assert run_cli("export", proba, tmp_path / "copy.zarr", "-q") == 0
        np.testing.assert_array_equal(io.open_array(tmp_path / "copy.zarr")[:], data)
        assert run_cli("crop", proba, tmp_path / "c.zarr", "--size", "6", "--start", "1", "2", "3", "-q") == 0
        cropped = io.open_array(tmp_path / "c.zarr")
        np.testing.assert_array_equal(cropped[:], data[:, 1:7, 2:8, 3:9])
        assert cropped.attrs["class_names"] == ["active", "pore"] and cropped.attrs["voxel_size_nm"] == VOXEL
        capsys.readouterr()
        assert run_cli("crop", proba, tmp_path / "c.tif", "--size", "6", "-q") == 2
        assert "4-D" in capsys.readouterr().err
    finally:
        ome.enable(None)


# --------------------------------------------------------------------------- the default


def test_cli_outputs_are_ome_zarr_images_by_default(tmp_path, monkeypatch, capsys):
    """With no switch set, a CLI output is an NGFF 0.5 image with its pyramid, and info, export and crop open
    it; a phantom's raw and truth are a grey and a label image, and commands take ``v.zarr/raw``.
    ``GPUSEG_OME_ZARR=0`` writes a plain array."""
    monkeypatch.delenv(ome.ENV_SWITCH, raising=False)
    ome.enable(None)
    assert ome.enabled()
    monkeypatch.setattr(ome, "MIN_EDGE", 8)
    v, seg = tmp_path / "v.zarr", tmp_path / "seg.zarr"
    assert run_cli("phantom", v, "--preset", "nmc-1", "--shape", 32, 36, 40, "--chunks", 16, "--device", "cpu",
                   "-q") == 0
    assert type(ome.validate(v / "raw")).__name__ == "Image"
    assert type(ome.validate(v / "truth")).__name__ == "ImageLabel"
    raw = io.open_array(v / "raw")[:]
    assert raw.shape == (32, 36, 40) and ome.read_level(v / "raw", 2).shape == (8, 9, 10)
    capsys.readouterr()
    assert run_cli("segment", "threshold", v / "raw", seg, "--value", float(raw.mean()), "--device", "cpu", "-q") == 0
    assert ome.validate(seg) is not None
    assert ome.level_paths(_attrs(seg)) == ["0", "1", "2"]
    labels = io.open_array(seg)[:]
    np.testing.assert_array_equal(ome.read_level(seg, 1)[:], labels[::2, ::2, ::2])
    capsys.readouterr()
    assert run_cli("info", seg, "--json", "-q") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shape"] == [32, 36, 40] and [lv["shape"] for lv in report["levels"]][1:] == [[16, 18, 20], [8, 9, 10]]
    assert run_cli("export", seg, tmp_path / "seg.tif", "-q") == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "seg.tif"), labels)
    assert run_cli("crop", seg, tmp_path / "c.zarr", "--size", 16, "--start", 1, 2, 3, "-q") == 0
    np.testing.assert_array_equal(io.open_array(tmp_path / "c.zarr")[:], labels[1:17, 2:18, 3:19])
    assert ome.validate(tmp_path / "c.zarr") is not None and ome.read_level(tmp_path / "c.zarr", 1).shape == (8, 8, 8)
    # a crop of a segmentation keeps its label names: a label image again, its levels picked, not averaged
    assert type(ome.validate(tmp_path / "c.zarr")).__name__ == "ImageLabel"
    np.testing.assert_array_equal(ome.read_level(tmp_path / "c.zarr", 1)[:], labels[1:17:2, 2:18:2, 3:19:2])
    # so does a zarr copy (ingest, export to zarr)
    assert run_cli("export", seg, tmp_path / "copy.zarr", "-q") == 0
    assert type(ome.validate(tmp_path / "copy.zarr")).__name__ == "ImageLabel"
    np.testing.assert_array_equal(ome.read_level(tmp_path / "copy.zarr", 1)[:], labels[::2, ::2, ::2])
    monkeypatch.setenv(ome.ENV_SWITCH, "0")
    assert not ome.enabled()
    assert run_cli("crop", seg, tmp_path / "plain.zarr", "--size", 8, "-q") == 0
    assert isinstance(zarr.open(tmp_path / "plain.zarr", mode="r"), zarr.Array)
