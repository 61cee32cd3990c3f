"""Blockwise seeded watershed against scikit-image's watershed of the whole volume."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
import skimage.segmentation
import tifffile

from gpuseg import io
from gpuseg.errors import ParameterError
from gpuseg.segment import watershed as ws
from tests.conftest import run_cli
from tests.segdata import spheres


def whole_volume(image, low, high):
    """The reference, written out independently: Sobel magnitude, two-threshold markers, skimage watershed."""
    x = image.astype(np.float32)
    grad = np.sqrt(sum(ndi.sobel(x, axis=a, mode="reflect") ** 2 for a in range(3)))
    markers = np.zeros(image.shape, np.int32)
    markers[image < low] = 2
    markers[image > high] = 1
    return skimage.segmentation.watershed(grad, markers)


@pytest.fixture(scope="module")
def phantom():
    raw, truth = spheres((48, 48, 48), seed=1)
    smooth = ndi.gaussian_filter(raw.astype(np.float32), 1.0)
    return raw, smooth, truth


@pytest.mark.parametrize("kind", ["raw", "smooth"])
@pytest.mark.parametrize("width", [10, 40])  # gWS (narrow window) and cWS (wide window)
@pytest.mark.parametrize("chunks", [16, (20, 24, 13)])
def test_default_halo_agrees_with_whole_volume(phantom, kind, width, chunks):
    image = phantom[0] if kind == "raw" else phantom[1]
    t = skimage.filters.threshold_otsu(image)
    low, high = t - width, t + width
    ref = whole_volume(image, low, high)
    window = (image >= low) & (image <= high)
    assert window.mean() > 0.04  # the watershed has real work to do
    out = ws.watershed(image, low, high, chunks=chunks, device="cpu")
    assert out.dtype == np.uint8
    assert np.mean(out == ref) >= 0.999
    assert np.all(out[image < low] == 2) and np.all(out[image > high] == 1)
    # with no cut at all (one chunk), it is the whole-volume watershed exactly
    assert np.array_equal(ws.watershed(image, low, high, chunks=64, device="cpu"), ref)


def test_agreement_grows_with_halo(phantom):
    image = phantom[1]
    t = skimage.filters.threshold_otsu(image)
    scores = [ws.agreement(image, t - 40, t + 40, halo=h, chunks=12) for h in (1, 4, ws.DEFAULT_HALO)]
    assert scores[0] < 1.0 and scores[0] <= scores[1] <= scores[2] and scores[2] >= 0.999


def test_segments_the_phantom(phantom):
    raw, smooth, truth = phantom
    t = skimage.filters.threshold_otsu(smooth)
    out = ws.watershed(smooth, t - 20, t + 20, chunks=16, device="cpu")
    assert np.mean(out == truth) > 0.95


def test_cli_tiff_in_zarr_out(tmp_path, phantom):
    raw = phantom[0][:24, :24, :24]
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    assert run_cli("segment", "watershed", tmp_path / "raw.tif", tmp_path / "ws.zarr", "--low", "100", "--high", "150",
                   "--chunks", "12", "--device", "cpu", "-q", "--plot", tmp_path / "h.png") == 0
    seg = io.open_array(tmp_path / "ws.zarr")
    assert np.mean(seg[:] == whole_volume(raw, 100, 150)) >= 0.999
    assert seg.attrs["window"] == [100.0, 150.0] and seg.attrs["phases"] == 2
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_low_not_below_high(tmp_path, capsys):
    with pytest.raises(ParameterError, match="must be below"):
        ws.watershed(np.zeros((4, 4, 4)), 10, 10)
    np.save(tmp_path / "raw.npy", np.zeros((4, 4, 4), np.uint8))
    assert run_cli("segment", "watershed", tmp_path / "raw.npy", tmp_path / "o.zarr", "--low", "150", "--high", "100") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--low 150 must be below --high 100" in err[0]
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.gpu
def test_gpu_equals_cpu(phantom):
    import cupy

    image = phantom[1]
    t = skimage.filters.threshold_otsu(image)
    cpu = ws.watershed(image, t - 30, t + 30, chunks=16, device="cpu")
    gpu = ws.watershed(cupy.asarray(image), t - 30, t + 30, chunks=16, device="gpu")
    assert np.mean(cupy.asnumpy(gpu) == cpu) >= 0.9999  # the Sobel sums may round differently on the GPU


@pytest.mark.parametrize("preset", ["nmc-1", "nmc-2"])
def test_default_halo_on_electrode_phantoms(preset):
    phantom_module = pytest.importorskip("gpuseg.phantom", reason="the phantom module is not in this checkout")
    raw, _ = phantom_module.make(preset, (40, 40, 40), seed=3)
    smooth = ndi.gaussian_filter(raw.astype(np.float32), 1.0)
    for image in (raw, smooth):
        rank = np.mean(image <= skimage.filters.threshold_otsu(image))
        for share in (0.1, 0.5):  # gWS- and cWS-like windows
            low, high = np.quantile(image, [rank - share / 2, rank + share / 2])
            ref = whole_volume(image, low, high)
            assert np.mean(ref == 0) == 0  # every voxel reached by a seed
            out = ws.watershed(image, low, high, chunks=(16, 20, 13), device="cpu")
            assert np.mean(out == ref) >= 0.999
