"""Thresholds from a chunked histogram equal scikit-image's on the whole array; manual S1/S2/S3."""

import numpy as np
import pytest
import skimage.exposure
import skimage.filters
import tifffile

from gpuseg import io
from gpuseg.errors import InputError, ParameterError
from gpuseg.segment import threshold as thr
from tests.conftest import run_cli
from tests.segdata import spheres, three_phase

CHUNKS = [4, 7, (5, 23, 3), 64]  # tiny, not dividing the shape, anisotropic, one chunk


def volume(dtype, seed=0, shape=(23, 17, 19)):
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, 3, shape)
    if np.dtype(dtype).kind == "f":
        return (rng.normal(0, 1, shape) * 3.7 + modes * 5.1).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -300), min(info.max, 900)
    return np.clip(rng.normal(0, (hi - lo) / 12, shape) + lo + (modes + 1) * (hi - lo) / 4, lo, hi).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("chunks", CHUNKS)
def test_histogram_and_thresholds_equal_skimage(dtype, chunks):
    x = volume(dtype)
    counts, centers = thr.histogram(x, chunks=chunks, scheduler="synchronous")
    ref_counts, ref_centers = skimage.exposure.histogram(x.ravel(), 256, source_range="image")
    assert counts.dtype == np.int64 and np.array_equal(counts, ref_counts) and np.array_equal(centers, ref_centers)
    assert counts.sum() == x.size
    assert thr.threshold_otsu(x, chunks=chunks, scheduler="threads") == skimage.filters.threshold_otsu(x)
    assert np.array_equal(thr.threshold_multiotsu(x, chunks=chunks, scheduler="threads"),
                          skimage.filters.threshold_multiotsu(x))


@pytest.mark.parametrize("nbins", [16, 100, 256])
def test_float_binning_follows_nbins(nbins):
    x = volume("float32", seed=3)
    assert thr.threshold_otsu(x, nbins, chunks=6) == skimage.filters.threshold_otsu(x, nbins)
    assert np.array_equal(thr.threshold_multiotsu(x, 3, nbins, chunks=6), skimage.filters.threshold_multiotsu(x, 3, nbins))


def test_otsu_on_phantoms_from_a_zarr_path(tmp_path):
    raw, _ = spheres((40, 40, 40))
    grey3, _ = three_phase()
    for name, x in (("two", raw), ("three", grey3)):
        io.create_array(tmp_path / f"{name}.zarr/raw", x.shape, x.dtype, (16, 16, 16))[:] = x
    t = thr.threshold_otsu(str(tmp_path / "two.zarr/raw"), scheduler="processes", workers=2)
    assert t == skimage.filters.threshold_otsu(raw)
    labels, values = thr.otsu(str(tmp_path / "three.zarr/raw"), 3, output=tmp_path / "seg.zarr", device="cpu")
    ref = skimage.filters.threshold_multiotsu(grey3)
    assert values == [float(v) for v in ref]
    seg = io.open_array(labels)
    expected = np.where(grey3 > ref[1], 1, np.where(grey3 > ref[0], 2, 3))
    assert np.array_equal(seg[:], expected)
    assert seg.attrs["phases"] == 3 and seg.attrs["method"] == "multi-otsu"


def test_apply_thresholds_matches_numpy():
    x = volume("uint16", seed=5)
    for chunks in (None, 5, (23, 4, 19)):
        out = thr.apply_thresholds(x, 1500, chunks=chunks, device="cpu")
        assert out.dtype == np.uint8 and np.array_equal(out, np.where(x > 1500, 1, 2))
        out = thr.apply_thresholds(x, (900, 1500), chunks=chunks, device="cpu")
        assert np.array_equal(out, np.where(x > 1500, 1, np.where(x > 900, 2, 3)))


@pytest.mark.parametrize("offset,name", [(-10, "S1"), (0, "S2"), (10, "S3")])
def test_cli_manual_threshold_with_study_offsets(tmp_path, offset, name):
    raw, _ = spheres((24, 24, 24))
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    out = tmp_path / f"{name}.zarr"
    assert run_cli("segment", "threshold", tmp_path / "raw.tif", out, "--value", "120", "--offset", str(offset),
                   "--chunks", "10", "--device", "cpu", "-q", "--plot", tmp_path / f"{name}.png") == 0
    t = thr.study_thresholds(120)[name]
    seg = io.open_array(out)
    assert np.array_equal(seg[:], np.where(raw > t, 1, 2)) and seg.attrs["thresholds"] == [t]
    assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_cli_otsu_writes_tiff(tmp_path, capsys):
    raw, _ = spheres((24, 24, 24), seed=2)
    np.save(tmp_path / "raw.npy", raw)
    assert run_cli("segment", "otsu", tmp_path / "raw.npy", tmp_path / "seg.tif", "--device", "cpu", "-q") == 0
    t = skimage.filters.threshold_otsu(raw)
    assert f"Otsu thresholds {t:g}" in capsys.readouterr().out
    assert np.array_equal(tifffile.imread(tmp_path / "seg.tif"), np.where(raw > t, 1, 2))


def test_bad_input(tmp_path, capsys):
    const = np.full((6, 6, 6), 7, np.uint8)
    with pytest.raises(InputError, match="single grey value"):
        thr.threshold_otsu(const)
    with pytest.raises(InputError, match="cannot be split into 3"):
        thr.threshold_multiotsu(np.repeat([1, 2], 4).reshape(2, 2, 2).astype(np.uint8))
    nan = volume("float32")
    nan[3, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        thr.histogram(nan, chunks=8)
    with pytest.raises(ParameterError, match="must increase"):
        thr.apply_thresholds(const, (5, 3))
    np.save(tmp_path / "const.npy", const)
    assert run_cli("segment", "otsu", tmp_path / "const.npy", tmp_path / "s.zarr", "-q") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Otsu's threshold is undefined" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "s.zarr").exists()
    # an existing output is refused before any work, and left as it was
    io.create_array(tmp_path / "old.zarr", (6, 6, 6), np.uint8, (6, 6, 6))[:] = 9
    np.save(tmp_path / "raw.npy", volume("uint8"))
    assert run_cli("segment", "otsu", tmp_path / "raw.npy", tmp_path / "old.zarr", "-q") == 2
    assert "already exists" in capsys.readouterr().err and io.open_array(tmp_path / "old.zarr")[0, 0, 0] == 9


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_gpu_histogram_equals_cpu(dtype):
    import cupy

    x = volume(dtype, seed=7, shape=(40, 33, 35))
    cpu = thr.histogram(x, chunks=16, device="cpu")
    gpu = thr.histogram(cupy.asarray(x), chunks=16, device="gpu")
    assert np.array_equal(cpu[0], gpu[0]) and np.array_equal(cpu[1], gpu[1])
    labels = thr.apply_thresholds(cupy.asarray(x), float(cpu[1][len(cpu[1]) // 2]), chunks=16, device="gpu")
    assert np.array_equal(cupy.asnumpy(labels), thr.apply_thresholds(x, float(cpu[1][len(cpu[1]) // 2]), device="cpu"))
