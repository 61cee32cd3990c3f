import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

from gpuseg import filters, io, volumes
from gpuseg.errors import ParameterError


@pytest.fixture(scope="module")
def vol():
    rng = np.random.default_rng(7)
    return (rng.random((37, 30, 33), dtype=np.float32) * 1000).astype(np.float32)


def reference(vol, sigma, truncate=4.0):
    return ndi.gaussian_filter(vol.astype(np.float32), sigma, truncate=truncate, mode="reflect", output=np.float32)


# halo for sigma 2.5 at truncate 4 is 10 voxels: (3, 4, 5) and (1, 30, 2) chunks are smaller than it,
# and no chunk shape here divides (37, 30, 33)
CHUNKS = [(3, 4, 5), (1, 30, 2), (8, 8, 8), (16, 7, 33), (37, 30, 33), (64, 64, 64)]


@pytest.fixture
def blocks_are_chunks(monkeypatch):
    """Make the engine work chunk by chunk, so small chunks really mean small blocks; count them."""
    from gpuseg.engine import plan, run

    monkeypatch.setattr(plan, "HOST_BLOCK_BYTES", 1)
    seen = []
    original = run.iter_blocks

    def counting(*args):
        blocks = list(original(*args))
        seen.extend(blocks)
        return iter(blocks)

    monkeypatch.setattr(run, "iter_blocks", counting)
    return seen


@pytest.mark.parametrize("chunks", CHUNKS)
def test_chunked_equals_scipy_on_whole_volume(tmp_path, vol, chunks, blocks_are_chunks):
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (10, 10, 10))
    src[:] = vol
    out = filters.gaussian(tmp_path / "v.zarr/raw", 2.5, output=tmp_path / "v.zarr/smooth", chunks=chunks, device="cpu")
    got = io.open_array(out)[:]
    assert got.dtype == np.float32
    expected_blocks = np.prod([-(-n // min(c, n)) for n, c in zip(vol.shape, chunks)])
    assert len(blocks_are_chunks) == expected_blocks
    np.testing.assert_allclose(got, reference(vol, 2.5), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("sigma,truncate", [((0.7, 1.6, 3.5), 4.0), (1.0, 2.0), (4.0, 3.0)])
def test_anisotropic_sigma_and_truncate(vol, sigma, truncate):
    got = filters.gaussian(vol, sigma, truncate=truncate, chunks=(6, 9, 11), device="cpu")
    np.testing.assert_allclose(got, reference(vol, sigma, truncate), rtol=1e-5, atol=1e-3)


def test_integer_input_and_lazy_dask(vol):
    grey = vol.astype(np.uint16)
    lazy = filters.gaussian(da.from_array(grey, chunks=(9, 10, 11)), 1.6, device="cpu")
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), reference(grey, 1.6), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(filters.gaussian(grey, 1.6, device="cpu"), reference(grey, 1.6), rtol=1e-5, atol=1e-3)


def test_tiff_in_tiff_out(tmp_path, vol):
    grey = vol.astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", grey)
    filters.gaussian(tmp_path / "in.tif", 1.0, output=tmp_path / "out.tif", chunks=12, device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), reference(grey, 1.0), rtol=1e-5, atol=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]  # no scratch left behind


def test_voxel_size_travels_to_the_output(tmp_path, vol):
    np.save(tmp_path / "v.npy", vol)
    volumes.ingest(tmp_path / "v.npy", tmp_path / "v.zarr/raw", voxel_size=[300, 397, 397])
    filters.gaussian(tmp_path / "v.zarr/raw", 1.0, output=tmp_path / "v.zarr/s")
    attrs = io.open_array(tmp_path / "v.zarr/s").attrs
    assert attrs["voxel_size_nm"] == [300.0, 397.0, 397.0] and attrs["sigma"] == [1.0] * 3


@pytest.mark.parametrize("sigma", [0, -1.0, (1.0, 0.0, 1.0)])
def test_sigma_must_be_positive(vol, sigma):
    with pytest.raises(ParameterError, match="sigma"):
        filters.gaussian(vol, sigma)


def test_kernel_radius_matches_scipy():
    for sigma, truncate in [(1.0, 4.0), (2.5, 4.0), (0.3, 3.0), (10.0, 2.5)]:
        weights = ndi._filters._gaussian_kernel1d(sigma, 0, int(truncate * sigma + 0.5))
        assert filters.kernel_radius(sigma, truncate)[0] == (len(weights) - 1) // 2


@pytest.mark.gpu
@pytest.mark.parametrize("chunks", [None, (8, 8, 8), (3, 4, 5)])
def test_gpu_equals_cpu(tmp_path, vol, chunks):
    cpu = filters.gaussian(vol, (1.0, 2.0, 3.5), chunks=chunks, device="cpu")
    gpu = filters.gaussian(vol, (1.0, 2.0, 3.5), chunks=chunks, device="gpu")
    assert isinstance(gpu, np.ndarray)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-3)
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (10, 10, 10))
    src[:] = vol
    filters.gaussian(tmp_path / "v.zarr/raw", 2.0, output=tmp_path / "g.zarr", chunks=9, device="gpu")
    np.testing.assert_allclose(io.open_array(tmp_path / "g.zarr")[:], reference(vol, 2.0), rtol=1e-5, atol=1e-3)
