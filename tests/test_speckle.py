"""Speckle removal equals skimage.morphology.remove_small_objects on the whole volume, for any chunking."""

import inspect

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.morphology

from gpuseg import io
from gpuseg.errors import ParameterError
from gpuseg.segment.speckle import remove_speckles
from tests.conftest import run_cli
from tests.segdata import spheres


def reference(seg, min_size, connectivity=1, phase=1, fill=2):
    """The whole-volume result with scikit-image (``max_size`` from 0.26 on, ``min_size`` before)."""
    mask = seg == phase
    if min_size > 1:
        if "max_size" in inspect.signature(skimage.morphology.remove_small_objects).parameters:
            kept = skimage.morphology.remove_small_objects(mask, max_size=min_size - 1, connectivity=connectivity)
        else:
            kept = skimage.morphology.remove_small_objects(mask, min_size=min_size, connectivity=connectivity)
    else:
        kept = mask
    return np.where(mask & ~kept, fill, seg).astype(seg.dtype)


@pytest.fixture(scope="module")
def noisy_seg():
    """A thresholded noisy volume: many speckles of all sizes, some crossing every chunk border."""
    rng = np.random.default_rng(0)
    field = ndi.gaussian_filter(rng.random((30, 33, 29)), 1.0)
    seg = np.where(field > np.quantile(field, 0.62), 1, 2).astype(np.uint8)
    seg[:2] = 0  # unassigned slab: untouched
    return seg


@pytest.mark.parametrize("min_size", [2, 5, 12, 40])
@pytest.mark.parametrize("connectivity", [1, 3])
@pytest.mark.parametrize("chunks", [4, 7, (5, 33, 8), 64])  # chunks smaller than the halo, uneven, one chunk
def test_equals_skimage(noisy_seg, min_size, connectivity, chunks):
    ref = reference(noisy_seg, min_size, connectivity)
    assert (ref != noisy_seg).sum() > 0  # something is removed, and ...
    assert (ref == 1).sum() > 0  # ... something is kept
    out = remove_speckles(noisy_seg, min_size, connectivity=connectivity, chunks=chunks, device="cpu")
    assert out.dtype == noisy_seg.dtype and np.array_equal(out, ref)


def test_three_phase_fill_and_phase(noisy_seg):
    seg = noisy_seg.copy()
    seg[seg == 2] = 3
    out = remove_speckles(seg, 8, phase=3, fill=2, connectivity=2, chunks=9, device="cpu")
    assert np.array_equal(out, reference(seg, 8, 2, phase=3, fill=2))


def test_cli_out_of_core(tmp_path, noisy_seg):
    io.create_array(tmp_path / "s.zarr/seg", noisy_seg.shape, np.uint8, (8, 8, 8), {"phases": 2})[:] = noisy_seg
    assert run_cli("segment", "speckle", tmp_path / "s.zarr/seg", tmp_path / "s.zarr/clean", "--min-size", "10",
                   "--connectivity", "3", "--scheduler", "processes", "--workers", "2", "--device", "cpu", "-q") == 0
    out = io.open_array(tmp_path / "s.zarr/clean")
    assert np.array_equal(out[:], reference(noisy_seg, 10, 3)) and out.attrs["phases"] == 2


def test_speckles_of_a_thresholded_phantom():
    raw, truth = spheres((32, 32, 32), noise=45)
    seg = np.where(raw > 125, 1, 2).astype(np.uint8)
    out = remove_speckles(seg, 20, chunks=12, device="cpu")
    assert np.array_equal(out, reference(seg, 20))
    assert np.mean(out == truth) > np.mean(seg == truth)  # cleaning noise moves towards the truth


def test_bad_parameters(noisy_seg):
    with pytest.raises(ParameterError, match="min-size"):
        remove_speckles(noisy_seg, 0)
    with pytest.raises(ParameterError, match="connectivity"):
        remove_speckles(noisy_seg, 3, connectivity=4)
    with pytest.raises(ParameterError, match="--fill 1 equals --phase 1"):
        remove_speckles(noisy_seg, 3, fill=1)


@pytest.mark.gpu
def test_gpu_equals_cpu(noisy_seg):
    import cupy

    gpu = remove_speckles(cupy.asarray(noisy_seg), 12, connectivity=3, chunks=7, device="gpu")
    assert np.array_equal(cupy.asnumpy(gpu), reference(noisy_seg, 12, 3))
