"""An input that fits in memory runs in memory: the bytes of the out-of-core run (through its zarr copy),
no copy written or left behind, a replaced input still starts afresh, and a large input still streams."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from gpuseg import classify, filters, phantom, volumes
from gpuseg.classify import model_file, pixel, predictor, samples
from gpuseg.classify.scribbles import read as read_scribbles
from gpuseg.engine import faults, outputs, plan, staging
from gpuseg.io import open_array
from gpuseg.io.volume import info
from tests import killer
from tests.killer import Killed

SHAPE = (18, 26, 30)
FEATURES = "gaussian:1.0,hessian:1.0"


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A TIFF scan, its scribbles (TIFF) and a model trained on them."""
    folder = tmp_path_factory.mktemp("small")
    raw, truth = phantom.make("nmc-1", SHAPE, seed=4)
    scribbles = np.zeros(SHAPE, np.uint8)
    scribbles[9, ::2, ::2] = truth[9, ::2, ::2]
    tifffile.imwrite(folder / "scan.tif", raw)
    tifffile.imwrite(folder / "scribbles.tif", scribbles)
    model = classify.train(raw, scribbles, features=FEATURES, trees=5, device="cpu", model=folder / "m.npz").model
    return folder / "scan.tif", folder / "scribbles.tif", model


def _refuse_copies(monkeypatch):
    """Fail the test at the first input copied to zarr."""
    def refuse(*args, **kwargs):
        raise AssertionError("an input was copied to zarr")

    monkeypatch.setattr(volumes, "ingest", refuse)


def _stream(monkeypatch):
    """Every input over the in-memory budget: the out-of-core path, through a zarr copy."""
    monkeypatch.setattr(staging, "IN_MEMORY_MAX_BYTES", 0)


def _predict(src, model, out, **kw):
    classify.predict(src, model, f"{out}/labels", probabilities=f"{out}/p", uncertainty=f"{out}/u", device="cpu", **kw)
    return [f"{out}/labels", f"{out}/p", f"{out}/u"]


@pytest.mark.parametrize("chunks", [None, 8, (5, 13, 30)])
def test_in_memory_gives_the_bytes_of_the_zarr_copy(tmp_path, scan, monkeypatch, chunks):
    src, _, model = scan
    with monkeypatch.context() as m:
        _refuse_copies(m)
        in_memory = _predict(src, model, tmp_path / "mem.zarr", chunks=chunks)
        filters.gaussian(src, 1.5, output=tmp_path / "mem.tif", chunks=chunks, device="cpu")
    _stream(monkeypatch)
    streamed = _predict(src, model, tmp_path / "disk.zarr", chunks=chunks)
    filters.gaussian(src, 1.5, output=tmp_path / "disk.tif", chunks=chunks, device="cpu")
    for a, b in zip(in_memory, streamed):
        x, y = open_array(a, mode="r"), open_array(b, mode="r")
        assert (x.dtype, x.chunks) == (y.dtype, y.chunks)
        assert x[:].tobytes() == y[:].tobytes()
        assert x.attrs.asdict() == y.attrs.asdict()  # the copy's attributes too (voxel size, provenance)
    assert tifffile.imread(tmp_path / "mem.tif").tobytes() == tifffile.imread(tmp_path / "disk.tif").tobytes()


def test_training_from_memory_gives_the_forest_of_the_zarr_copy(tmp_path, scan, monkeypatch):
    src, scribbles, _ = scan
    with monkeypatch.context() as m:
        _refuse_copies(m)
        a = classify.train(src, [scribbles], features=FEATURES, trees=4, device="cpu", model=tmp_path / "a.npz")
    _stream(monkeypatch)
    b = classify.train(src, [scribbles], features=FEATURES, trees=4, device="cpu", model=tmp_path / "b.npz")
    assert a.forest.digest() == b.forest.digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]  # no copy left beside either model


def test_no_copy_is_written_or_left_behind(tmp_path, scan, monkeypatch):
    src, _, model = scan
    stale = tmp_path / ".labels.tif.input.zarr"  # the copy of an earlier run that streamed, killed
    volumes.save(np.zeros(SHAPE, np.uint8), stale)
    _refuse_copies(monkeypatch)
    made = []
    scratch = outputs.scratch
    monkeypatch.setattr(outputs, "scratch", lambda beside, tag: made.append(tag) or scratch(beside, tag))
    classify.predict(src, model, tmp_path / "labels.tif", device="cpu")
    assert sorted(made) == ["input", "result"]  # the stale copy's name (to remove it), the TIFF output's temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


@pytest.mark.parametrize("replace", [False, True])
def test_a_killed_run_resumes_unless_its_input_was_replaced(tmp_path, scan, monkeypatch, caplog, replace):
    src, _, model = scan
    raw = tifffile.imread(src)
    tifffile.imwrite(tmp_path / "scan.tif", raw)
    monkeypatch.setattr(plan, "HOST_BLOCK_BYTES", 1)  # a block per chunk: several blocks to be killed among
    killer.arm("block:marked", 2)
    try:
        with pytest.raises(Killed):
            _predict(tmp_path / "scan.tif", model, tmp_path / "out.zarr", chunks=8, scheduler="synchronous")
    finally:
        faults.hook = None
    other = raw[::-1].copy() if replace else raw
    if replace:  # same shape, dtype and size: only the content differs
        tifffile.imwrite(tmp_path / "scan.tif", other)
    with caplog.at_level(logging.INFO, logger="gpuseg"):
        got = _predict(tmp_path / "scan.tif", model, tmp_path / "out.zarr", chunks=8)
    assert "read into memory" in caplog.text
    assert ("discarding an unfinished output" in caplog.text) == replace
    assert ("resuming" in caplog.text) != replace
    want = classify.predict(other, model_file.load(model), device="cpu")
    np.testing.assert_array_equal(open_array(got[0], mode="r")[:], want.labels)


def test_a_large_input_still_streams_through_its_zarr_copy(tmp_path, scan, monkeypatch, caplog):
    src, _, model = scan
    _stream(monkeypatch)
    copies = []
    ingest = volumes.ingest
    monkeypatch.setattr(volumes, "ingest", lambda *a, **k: copies.append(a[1]) or ingest(*a, **k))
    with caplog.at_level(logging.INFO, logger="gpuseg"):
        classify.predict(src, model, tmp_path / "labels.zarr", device="cpu")
    assert "reading through a zarr copy" in caplog.text and "read into memory" not in caplog.text
    assert [p.endswith(".labels.zarr.input.zarr") for p in map(str, copies)] == [True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]  # the copy removed after the run


def test_the_budget_scheduler_and_format_decide_what_runs_in_memory(scan, monkeypatch, tmp_path):
    src, _, _ = scan
    header = info(src)
    nbytes = staging.header_nbytes(header)
    assert nbytes == int(np.prod(SHAPE)) * header.dtype.itemsize
    monkeypatch.setattr(staging, "_available_memory", lambda: 100 * nbytes)
    assert staging.fits_in_memory(header) and staging.fits_in_memory(header, "synchronous")
    assert not staging.fits_in_memory(header, "processes")  # each task would be sent the whole input
    assert not staging.fits_in_memory(header, "tcp://10.0.0.1:8786")
    monkeypatch.setattr(staging, "_available_memory", lambda: 4 * nbytes)  # over IN_MEMORY_SHARE of it
    assert not staging.fits_in_memory(header)
    monkeypatch.setattr(staging, "_available_memory", lambda: 100 * nbytes)
    monkeypatch.setattr(staging, "IN_MEMORY_MAX_BYTES", nbytes - 1)
    assert not staging.fits_in_memory(header)
    volumes.ingest(src, tmp_path / "in.zarr/raw")
    assert not staging.fits_in_memory(info(tmp_path / "in.zarr/raw"))  # zarr is read in place, block by block


def test_a_local_run_does_not_import_distributed():
    """dask imports distributed (0.2-0.5 s) for a scheduler given by name; gpuseg gives local ones as functions."""
    code = ("import sys, dask; from gpuseg.engine import cluster\n"
            "for s in ('threads', 'synchronous'):\n"
            "    assert cluster.compute([dask.delayed(int)('7')], scheduler=s) == [7]\n"
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_sizing_predicts_only_the_voxels_it_samples(scan):
    """One annotation: the sizing predicts its sample of the crop, and keeps the forest it would keep from a
    prediction of the whole crop."""
    src, scribbles, _ = scan
    raw = tifffile.imread(src)
    marks = read_scribbles(tifffile.imread(scribbles), SHAPE)
    spec = classify.feature_spec(FEATURES)
    region = tuple(slice(2, n - 2) for n in SHAPE)
    X_compare = samples.region_features(raw, region, spec, "cpu")
    X = samples.gather(raw, marks, spec, device="cpu")
    forest = classify.forest.train(X, marks.merged(), trees=30, random_state=0, workers=1, spec=spec.to_dict())
    whole = predictor.predict(X_compare, forest)
    sampled = pixel._size(forest, None, False, X_compare, None, region, marks)
    full = pixel._size(forest, None, False, X_compare, whole, region, marks)
    assert sampled[1] == full[1] and sampled[0].digest() == full[0].digest()
