"""ilastik project import: label blocks with their blockSlice, label names, feature selection; training from a project."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import classify, io
from gpuseg import features as feat
from gpuseg.classify import forest as fo
from gpuseg.classify import model_file
from gpuseg.classify import scribbles as scribble_io
from gpuseg.errors import InputError
from gpuseg.io import ilastik
from tests.conftest import run_cli

SHAPE = (20, 24, 28)
IDS = [b"GaussianSmoothing", b"LaplacianOfGaussian", b"GaussianGradientMagnitude",
       b"DifferenceOfGaussians", b"StructureTensorEigenvalues", b"HessianOfGaussianEigenvalues"]
SCALES = [0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0]


def _axistags(keys: str) -> str:
    return json.dumps({"axes": [{"key": k, "typeFlags": 1 if k == "c" else 2, "resolution": 0, "description": ""}
                                for k in keys]})


def write_ilp(path, blocks, names=(b"active", b"pore"), selection=None, ids=IDS, in2d=None, bytes_slice=True):
    """A project in ilastik's layout: blocks are (region slices incl. channel, data, axistags or None)."""
    with h5py.File(path, "w") as f:
        f["workflowName"] = b"Pixel Classification"
        f["ilastikVersion"] = b"1.4.1"
        group = f.create_group("PixelClassification/LabelSets/labels000")
        for i, (region, data, tags) in enumerate(blocks):
            ds = group.create_dataset(f"block{i:04d}", data=data, compression="gzip")
            text = "[" + ",".join(f"{s.start}:{s.stop}" for s in region) + "]"
            ds.attrs["blockSlice"] = text.encode() if bytes_slice else text
            if tags:
                ds.attrs["axistags"] = tags
        f["PixelClassification/LabelNames"] = np.array(names, dtype=object).astype("S")
        if selection is not None:
            g = f.create_group("FeatureSelections")
            g["SelectionMatrix"] = selection
            g["Scales"] = np.array(SCALES)
            g["FeatureIds"] = np.array(ids, dtype="S")
            g["ComputeIn2d"] = np.array(in2d if in2d is not None else [False] * len(SCALES))
    return path


def _painted():
    """A dense annotation and the ilastik blocks that store it (one zyxc block with axistags, one without)."""
    rng = np.random.default_rng(0)
    dense = np.zeros(SHAPE, np.uint8)
    a = (rng.random((1, 24, 28)) < 0.15) * rng.integers(1, 3, (1, 24, 28))
    b = (rng.random((2, 10, 12)) < 0.3) * rng.integers(1, 3, (2, 10, 12))
    dense[10:11] = a
    dense[3:5, 4:14, 6:18] = b
    blocks = [
        ((slice(10, 11), slice(0, 24), slice(0, 28), slice(0, 1)), a[..., None].astype(np.uint8), _axistags("zyxc")),
        ((slice(3, 5), slice(4, 14), slice(6, 18), slice(0, 1)), b[..., None].astype(np.uint8), None),
    ]
    return dense, blocks


def _selection():
    m = np.zeros((6, 7), bool)
    m[0, 2] = m[2, 2] = m[5, 3] = True  # smoothing 1.0, gradient 1.0, hessian 1.6
    return m


@pytest.mark.parametrize("bytes_slice", [True, False])
def test_label_blocks_rebuild_the_painted_volume(tmp_path, bytes_slice):
    dense, blocks = _painted()
    path = write_ilp(tmp_path / "p.ilp", blocks, bytes_slice=bytes_slice)
    rebuilt = np.zeros(SHAPE, np.uint8)
    for region, data in ilastik.iter_label_blocks(path):
        assert len(region) == 3 and data.dtype == np.uint8
        rebuilt[region] = data
    np.testing.assert_array_equal(rebuilt, dense)
    s = scribble_io.read(path, SHAPE)
    np.testing.assert_array_equal(s.index, np.flatnonzero(dense))
    np.testing.assert_array_equal(s.merged(), dense.ravel()[np.flatnonzero(dense)])


def test_2d_project_blocks_land_on_slice_zero(tmp_path):
    data = np.zeros((5, 6, 1), np.uint8)
    data[1, 2, 0] = 2
    path = write_ilp(tmp_path / "p.ilp", [((slice(3, 8), slice(4, 10), slice(0, 1)), data, _axistags("yxc"))])
    [(region, block)] = list(ilastik.iter_label_blocks(path))
    assert region == (slice(0, 1), slice(3, 8), slice(4, 10)) and block[0, 1, 2] == 2


def test_names_and_feature_selection(tmp_path):
    # rows in a different order than ilastik's usual one: FeatureIds says which is which
    order = [5, 0, 1, 2, 3, 4]
    m = _selection()[order]
    path = write_ilp(tmp_path / "p.ilp", _painted()[1], selection=m, ids=[IDS[i] for i in order])
    assert ilastik.label_names(path) == ("active", "pore")
    spec = classify.feature_spec(ilp=path)
    assert spec == feat.parse_features("gaussian:1.0,gradient:1.0,hessian:1.6")
    in2d = [True] * 7
    spec2d = classify.feature_spec(ilp=write_ilp(tmp_path / "q.ilp", _painted()[1], selection=_selection(), in2d=in2d))
    assert spec2d.twod and spec2d.items == spec.items


def test_training_from_a_project_equals_training_from_its_labels(tmp_path):
    dense, blocks = _painted()
    rng = np.random.default_rng(3)
    image = (ndi.gaussian_filter(rng.normal(size=SHAPE), 2) * 300 + 100).astype(np.float32)
    io.create_array(tmp_path / "v.zarr/raw", SHAPE, np.float32, (8, 8, 8))[:] = image
    project = write_ilp(tmp_path / "p.ilp", blocks, selection=_selection())
    np.save(tmp_path / "dense.npy", dense)
    assert run_cli("train", tmp_path / "v.zarr/raw", "--ilp", project, "--model", tmp_path / "a.npz",
                   "--trees", "5", "--device", "cpu", "-q") == 0
    assert run_cli("train", tmp_path / "v.zarr/raw", "--labels", tmp_path / "dense.npy", "--model", tmp_path / "b.npz",
                   "--features", "gaussian:1.0,gradient:1.0,hessian:1.6", "--trees", "5", "--device", "cpu", "-q") == 0
    a, b = model_file.load(tmp_path / "a.npz"), model_file.load(tmp_path / "b.npz")
    assert a.class_names == ("active", "pore") and b.class_names == ("1", "2")
    assert a.features == b.features
    for name in fo.ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _error(capsys, code, *words):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


@pytest.fixture
def volume(tmp_path):
    io.create_array(tmp_path / "v.zarr/raw", SHAPE, np.float32, (8, 8, 8))[:] = 1
    return tmp_path / "v.zarr/raw"


def test_corrupt_project_not_hdf5(tmp_path, volume, capsys):
    (tmp_path / "p.ilp").write_bytes(b"\x89HDF\r\n garbage")
    code = run_cli("train", volume, "--ilp", tmp_path / "p.ilp", "--model", tmp_path / "m.npz", "-q")
    _error(capsys, code, "p.ilp", "not a readable ilastik project")


@pytest.mark.parametrize("breakage, words", [
    ("no-slice", "no blockSlice"), ("bad-slice", "bad range"), ("wrong-shape", "does not match its blockSlice"),
    ("outside", "reaches beyond"), ("two-channels", "one label channel"),
])
def test_corrupt_label_blocks(tmp_path, volume, capsys, breakage, words):
    region = (slice(0, 2), slice(0, 3), slice(0, 4), slice(0, 1))
    data = np.ones((2, 3, 4, 1), np.uint8)
    data[0] = 2
    if breakage == "outside":
        region = (slice(19, 21), *region[1:])
    if breakage == "two-channels":
        region, data = (*region[:3], slice(0, 2)), np.ones((2, 3, 4, 2), np.uint8)
    path = write_ilp(tmp_path / "p.ilp", [(region, data, None)], selection=_selection())
    with h5py.File(path, "a") as f:
        ds = f["PixelClassification/LabelSets/labels000/block0000"]
        if breakage == "no-slice":
            del ds.attrs["blockSlice"]
        if breakage == "bad-slice":
            ds.attrs["blockSlice"] = b"[0:2,3:0,0:4,0:1]"
        if breakage == "wrong-shape":
            ds.attrs["blockSlice"] = b"[0:2,0:3,0:5,0:1]"
    code = run_cli("train", volume, "--ilp", path, "--model", tmp_path / "m.npz", "-q")
    _error(capsys, code, "p.ilp", words)


def test_project_without_labels_or_selection(tmp_path, volume, capsys):
    with h5py.File(tmp_path / "p.ilp", "w") as f:
        f["workflowName"] = b"Pixel Classification"
    code = run_cli("train", volume, "--ilp", tmp_path / "p.ilp", "--model", tmp_path / "m.npz", "-q")
    _error(capsys, code, "no feature selection")
    write_ilp(tmp_path / "q.ilp", [], selection=_selection())
    with h5py.File(tmp_path / "q.ilp", "a") as f:
        del f["PixelClassification/LabelSets"]
    with pytest.raises(InputError, match="no labels"):
        list(ilastik.iter_label_blocks(tmp_path / "q.ilp"))


def test_mixed_2d_3d_selection_is_refused(tmp_path):
    path = write_ilp(tmp_path / "p.ilp", [], selection=_selection(), in2d=[False, False, True, False, False, False, False])
    with pytest.raises(InputError, match="2-D"):
        classify.feature_spec(ilp=path)
