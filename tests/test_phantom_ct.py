"""The CT forward model: SNR and CNR as asked, FBP noise texture, artefacts, separability of nmc-1 vs nmc-2."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg import phantom
from gpuseg.phantom import ct, measure, presets, texture
from gpuseg.phantom.region import Region


def _measured(name, shape=(64, 64, 64), seed=0, **kwargs):
    raw, truth, info = phantom.make(name, shape, seed=seed, return_info=True, **kwargs)
    p = info["parameters"]
    return measure.contrast(raw, truth, info["zero_grey"], measure.psf_margin(p["psf_sigma"])), p


@pytest.mark.parametrize("name", sorted(phantom.PRESETS))
def test_measured_snr_and_cnr_match_the_preset(name):
    q, p = _measured(name)
    assert q["counts"]["active"] > 5000 and q["counts"]["pore"] > 5000
    assert q["snr"] == pytest.approx(p["snr"], rel=0.10)
    assert q["cnr"] == pytest.approx(p["cnr"], rel=0.10)


@pytest.mark.parametrize("snr", [1, 2, 5, 10])
def test_noise_sweep_hits_the_requested_snr(snr):
    q, p = _measured("nmc-1", snr=snr, seed=3)
    assert p["snr"] == snr and p["cnr"] == pytest.approx(snr * 1.6 / 3.0)
    assert q["snr"] == pytest.approx(snr, rel=0.10)
    assert q["cnr"] == pytest.approx(p["cnr"], rel=0.10)


def test_nmc1_is_less_separable_than_nmc2():
    raw1, _ = phantom.make("nmc-1", (64, 64, 64), seed=4)
    raw2, _ = phantom.make("nmc-2", (64, 64, 64), seed=4)
    eta1, eta2 = measure.otsu_separability(raw1), measure.otsu_separability(raw2)
    bc1, bc2 = measure.bimodality_coefficient(raw1), measure.bimodality_coefficient(raw2)
    assert eta2 - eta1 > 0.08
    assert bc1 < bc2
    # a single Gaussian has eta = 2/pi ≈ 0.64: nmc-1's histogram is nearly that of one peak
    assert eta1 < 0.68
    assert eta2 > 0.72


def _radial_nps(stack):
    n = stack.shape[-1]
    power = np.mean(np.abs(np.fft.fft2(stack - stack.mean(axis=(1, 2), keepdims=True))) ** 2, axis=0) / n / n
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    bins = (k * n).astype(int)
    return (np.bincount(bins.ravel(), power.ravel()) / np.bincount(bins.ravel()))[1:n // 2]


def test_ramp_noise_has_the_spectrum_of_filtered_back_projection():
    n = 64
    fbp = np.stack([texture.fbp_noise_slice(n, np.random.default_rng(i)) for i in range(24)])
    ours = texture.ramp_noise(np, seed=1, lo=(0, 0, 0), hi=(24, n, n))
    white = np.random.default_rng(0).standard_normal((24, n, n))
    ref, got, flat = _radial_nps(fbp), _radial_nps(ours), _radial_nps(white)
    assert ours.std() == pytest.approx(1.0, rel=0.03)
    assert np.corrcoef(ref, got)[0, 1] > 0.95
    assert np.max(np.abs(got - ref)) < 0.25  # both have unit variance
    assert np.corrcoef(ref, flat)[0, 1] < 0.5  # white noise does not pass this test


def test_fbp_texture_mode_is_chunking_independent(tmp_path):
    shape = (6, 40, 36)
    raw, truth = phantom.make("nmc-2", shape, seed=2, texture="fbp")
    group = phantom.generate(tmp_path / "f.zarr", "nmc-2", shape, seed=2, texture="fbp", chunks=(4, 17, 36), device="cpu")
    np.testing.assert_array_equal(group["raw"][:], raw)
    q = measure.contrast(raw, truth, group.attrs["phantom"]["zero_grey"], 0)
    assert q["noise_std"] > 0


def _uniform(label, shape=(24, 48, 48), **overrides):
    labels = np.full(shape, label, np.uint8)
    return phantom.make("nmc-2", labels=labels, seed=0, return_info=True, **overrides)


def test_cupping_and_drift_follow_their_definition():
    raw, _, info = _uniform(1, snr=200, cnr=100, ring_share=0.0, speckle_density=0, cupping=0.1, drift=0.08)
    att = (raw.astype(float) - info["zero_grey"]) / info["gain"]
    assert att.mean() == pytest.approx(1.0, abs=0.01)  # shading averages to 1
    cy, cx = 23.5, 23.5
    centre = att[:, 22:26, 22:26].mean()
    corner = att[:, [0, 0, -1, -1], [0, -1, 0, -1]].mean()
    expected = 0.1 * (1 - (1.5**2 + 1.5**2) / (cy**2 + cx**2))
    assert corner - centre == pytest.approx(expected, rel=0.1)
    slope = np.polyfit(np.arange(24), att.mean(axis=(1, 2)), 1)[0]
    assert slope * 23 == pytest.approx(0.08, rel=0.1)


def test_rings_are_concentric_about_the_axis():
    raw, _, _ = _uniform(3, shape=(32, 64, 64), ring_share=0.6, ring_density=0.3, speckle_density=0,
                            cupping=0, drift=0)
    grey = raw.astype(float).mean(axis=0)  # rings persist along z; noise averages out
    radius = np.rint(np.hypot(*np.meshgrid(np.arange(64) - 31.5, np.arange(64) - 31.5, indexing="ij"))).astype(int)
    measured = np.bincount(radius.ravel(), grey.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    n_radii = int(np.ceil(np.hypot(64, 64) / 2)) + 2
    profile = texture.ring_profile(0, n_radii, 0.3)[: measured.size]
    assert np.corrcoef(measured[2:45], profile[2:45])[0, 1] > 0.9


def test_speckle_is_bright_small_and_only_in_pore():
    shape = (32, 48, 48)
    labels = np.full(shape, 3, np.uint8)
    labels[:, :24] = 1
    raw, _, info = phantom.make("nmc-2", labels=labels, seed=5, return_info=True, snr=100, cnr=60,
                                ring_share=0.0, cupping=0, drift=0, speckle_density=1e-3)
    att = (raw.astype(float) - info["zero_grey"]) / info["gain"]
    bright = att > 1.2  # brighter than active material: only speckles can be
    assert not bright[:, :20].any()
    pts = texture.speckle_points(5, 1e-3, (0, 0, 0), shape)
    in_pore = pts[labels[tuple(pts.T)] == 3]
    assert len(in_pore) > 10
    assert att[tuple(in_pore.T)] == pytest.approx(np.full(len(in_pore), 1.4), abs=0.1)  # the preset's speckle_peak
    import scipy.ndimage as ndi

    blobs, n = ndi.label(bright[:, 26:])
    assert n >= 0.8 * np.sum(in_pore[:, 1] >= 26)
    assert np.bincount(blobs.ravel())[1:].max() <= 27  # each a few voxels


def test_psf_blur_is_the_gaussian_of_the_truth():
    labels = np.full((24, 32, 32), 3, np.uint8)
    labels[:, :, 16:] = 1
    raw, _, info = phantom.make("nmc-2", labels=labels, return_info=True, snr=1000, cnr=750, ring_share=0.0,
                                speckle_density=0, cupping=0, drift=0, psf_sigma=2.0, dtype="uint16")
    att = (raw.astype(float) - info["zero_grey"]) / info["gain"]
    import scipy.ndimage as ndi

    pore = 1 - 750 / 1000
    ref = ndi.gaussian_filter(np.where(labels == 1, 1.0, pore), 2.0, mode="reflect")
    np.testing.assert_allclose(att, ref, atol=0.006)  # 6 noise std


def test_quantization_fits_the_dtype():
    for name in ("nmc-1", "gra-1"):
        raw, _ = phantom.make(name, (32, 32, 32), seed=0, snr=1)
        top = np.iinfo(raw.dtype).max
        assert raw.dtype == np.dtype(presets.PRESETS[name]["dtype"])
        assert np.mean((raw == 0) | (raw == top)) < 1e-3  # 5 noise std fit on either side


def test_region_blocks_give_the_whole_volume():
    model = ct.forward_params(presets.resolve("nex-u"))
    truth = phantom.make("nex-u", (20, 30, 30), seed=1)[1]
    whole = ct.ct_block(truth, Region(truth.shape)[...], model=model, seed=1, shape=truth.shape)
    h = model["halo"]
    part = ct.ct_block(truth[:, 3:20], Region(truth.shape)[:, 3:20], model=model, seed=1, shape=truth.shape)
    np.testing.assert_array_equal(part[:, h:-h], whole[:, 3 + h:20 - h])


@pytest.mark.gpu
def test_gpu_ct_matches_cpu():
    from gpuseg import backend

    model = ct.forward_params(presets.resolve("nmc-1"))
    truth = phantom.make("nmc-1", (32, 40, 40), seed=1)[1]
    region = Region(truth.shape)[...]
    cpu = ct.ct_block(truth, region, model=model, seed=1, shape=truth.shape)
    cp = backend.resolve("gpu").xp
    gpu = backend.to_host(ct.ct_block(cp.asarray(truth), cp.asarray(region), model=model, seed=1, shape=truth.shape))
    assert np.mean(np.abs(gpu.astype(int) - cpu.astype(int)) <= 1) > 0.999
