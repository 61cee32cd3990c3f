"""Phantom microstructures: target fractions, determinism across chunkings, the particle model, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import zarr

from gpuseg import io, phantom
from gpuseg.errors import InputError, OutputError, ParameterError
from gpuseg.phantom import microstructure, presets
from gpuseg.phantom.region import Region
from tests.conftest import run_cli
from tests.killer import ROOT

SHAPE = (48, 56, 52)  # not divisible by any chunk shape used below


@pytest.mark.parametrize("name", sorted(phantom.PRESETS))
def test_true_fractions_match_the_targets(name):
    _, truth, info = phantom.make(name, (64, 64, 64), seed=7, return_info=True)
    target = phantom.PRESETS[name]
    measured = [float(np.mean(truth == k)) for k in (1, 2, 3)]
    assert abs(measured[0] - target["am_fraction"]) <= 0.02
    assert abs(measured[1] - target["cbd_fraction"]) <= 0.02
    assert abs(measured[2] - (1 - target["am_fraction"] - target["cbd_fraction"])) <= 0.02
    # the metadata reports the fractions of the truth actually written
    assert [info["fractions"][k] for k in ("active", "cbd", "pore")] == pytest.approx(measured, abs=1e-12)
    assert info["parameters"]["voxel_size_nm"] == target["voxel_size_nm"]


def test_particle_density_follows_the_boolean_model():
    # On a volume holding many particles the Boolean-model density alone nearly hits the target:
    # the calibrated surface level moves the surfaces by well under one voxel.
    params = presets.resolve("nex-v")
    geom = microstructure.geometry(params)
    hist = microstructure.histogram_block(Region((96, 96, 96))[...], geom=geom, seed=3)
    level = microstructure.thresholds(hist, params["am_fraction"], params["cbd_fraction"])
    shift = (level["t_am"] - microstructure.Q_S1 * geom["smax"]) / microstructure.Q_S1
    assert abs(shift) < 1.0


def _brute_force_fields(geom, seed, shape):
    """s1, s2 over the whole grid from every particle in reach, without boxes or blocks."""
    cat = microstructure.particles(geom, seed, (0, 0, 0), shape)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)
    s1 = np.full(shape, geom["smax"])
    s2 = np.full(shape, geom["smax"])
    inside_any = np.zeros(shape, bool)
    for c, semi, b, m, cracked, _ in zip(*cat):
        d = grid - c
        p = d @ b.T
        k0 = np.linalg.norm(p, axis=-1)
        k1 = np.maximum(np.linalg.norm(p @ b, axis=-1), 1e-12)
        s = np.where(k0 >= 1, k0 * (k0 - 1) / k1, (k0 - 1) * semi.min())
        inside_any |= k0 <= 1
        if cracked:
            crack = np.maximum(np.abs(d @ m) - geom["crack_width"] / 2, (k0 - 0.8) * semi.min())
            s = np.maximum(s, -crack)
        s = np.minimum(s, geom["smax"])
        s2 = np.minimum(s2, np.maximum(s1, s))
        s1 = np.minimum(s1, s)
    return s1, s2, inside_any


@pytest.mark.parametrize("name", ["nmc-2", "gra-2"])
def test_blockwise_fields_match_a_brute_force_reference(name):
    geom = microstructure.geometry(presets.resolve(name, crack_fraction=1.0))
    shape = (30, 34, 32)
    ref1, ref2, inside_any = _brute_force_fields(geom, 5, shape)
    # evaluated in pieces, each only with the particles that reach it
    s1 = np.empty(shape, np.float32)
    s2 = np.empty(shape, np.float32)
    for lo_z, hi_z in ((0, 7), (7, 30)):
        for lo_x, hi_x in ((0, 20), (20, 32)):
            a, b = microstructure.distance_fields(np, geom, 5, (lo_z, 0, lo_x), (hi_z, shape[1], hi_x))
            s1[lo_z:hi_z, :, lo_x:hi_x], s2[lo_z:hi_z, :, lo_x:hi_x] = a, b
    np.testing.assert_allclose(s1, ref1, atol=1e-3)
    np.testing.assert_allclose(s2, ref2, atol=1e-3)
    # cracks carve non-solid voxels out of the inside of particles
    assert np.count_nonzero(inside_any & (ref1 > 0)) > 0


def test_carbon_binder_sits_at_necks_between_particles():
    geom = microstructure.geometry(presets.resolve("nmc-2"))
    shape = (48, 48, 48)
    labels, _ = microstructure.labels_in_memory(geom, 2, shape)
    s1, s2, _ = _brute_force_fields(geom, 2, shape)
    cbd, pore = labels == 2, labels == 3
    # binder voxels are close to two particle surfaces at once; pore voxels are not
    assert np.median(s2[cbd]) < 0.5 * np.median(s2[pore])
    assert np.all(s1[cbd] + s2[cbd] <= np.min((s1 + s2)[pore]) + 0.25)


def _mean_chord(mask, axis):
    runs = np.diff(np.moveaxis(mask, axis, -1).astype(np.int8), axis=-1, prepend=0, append=0)
    return mask.sum() / max(np.count_nonzero(runs == 1), 1)


def test_graphite_flakes_lie_in_plane_and_nmc_is_near_isotropic():
    _, gra = phantom.make("gra-1", (64, 64, 64), seed=1)
    _, nmc = phantom.make("nmc-1", (64, 64, 64), seed=1)
    # mean chord length of the active phase across the electrode (z) over that in plane (x)
    ratio_gra = _mean_chord(gra == 1, 0) / _mean_chord(gra == 1, 2)
    ratio_nmc = _mean_chord(nmc == 1, 0) / _mean_chord(nmc == 1, 2)
    in_plane_gra = _mean_chord(gra == 1, 1) / _mean_chord(gra == 1, 2)
    assert ratio_gra < 0.7 < ratio_nmc < 1.2
    assert 0.8 < in_plane_gra < 1.25


@pytest.mark.parametrize(
    "chunks, scheduler, workers",
    [((16, 16, 16), "threads", 2), ((5, 56, 9), "synchronous", 1), ((20, 13, 64), "processes", 2)],
)
def test_generate_gives_the_bytes_of_make_whatever_the_chunking(tmp_path, chunks, scheduler, workers):
    # nex-u: PSF halo of 6 voxels, larger than some chunk edges above
    raw, truth = phantom.make("nex-u", SHAPE, seed=11)
    group = phantom.generate(tmp_path / "p.zarr", "nex-u", SHAPE, seed=11, chunks=chunks,
                             scheduler=scheduler, workers=workers, device="cpu")
    assert group["raw"].chunks == tuple(min(c, s) for c, s in zip(chunks, SHAPE))
    assert group["raw"].dtype == raw.dtype
    np.testing.assert_array_equal(group["truth"][:], truth)
    np.testing.assert_array_equal(group["raw"][:], raw)
    assert sorted(os.listdir(tmp_path)) == ["p.zarr"]  # no leftovers


def test_different_seeds_differ_and_same_seed_repeats():
    a = phantom.make("nmc-1", (24, 24, 24), seed=1)
    b = phantom.make("nmc-1", (24, 24, 24), seed=1)
    c = phantom.make("nmc-1", (24, 24, 24), seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_group_metadata_holds_fractions_parameters_and_voxel_size(tmp_path):
    group = phantom.generate(tmp_path / "p.zarr", "gra-2", (20, 24, 24), seed=3, snr=4, chunks=12, device="cpu")
    info = group.attrs["phantom"]
    truth = group["truth"][:]
    assert info["fractions"]["active"] == pytest.approx(np.mean(truth == 1), abs=1e-12)
    assert info["voxel_counts"]["pore"] == int(np.sum(truth == 3))
    assert info["parameters"] == presets.resolve("gra-2", snr=4)
    assert group.attrs["voxel_size_nm"] == [126.0] * 3
    assert group["raw"].attrs["voxel_size_nm"] == [126.0] * 3
    assert group["raw"].attrs["zero_grey"] == pytest.approx(info["zero_grey"])
    assert group["raw"].dtype == np.uint16


def test_truth_from_a_label_volume(tmp_path):
    labels = np.zeros((20, 22, 24), np.uint8)
    labels[:, 5:15] = 1
    labels[:, 15:17] = 2
    tifffile.imwrite(tmp_path / "geometry.tif", labels)
    mapping = {0: 3, 1: 1, 2: 2}
    group = phantom.generate(tmp_path / "p.zarr", "nmc-1", labels=tmp_path / "geometry.tif", label_map=mapping,
                             seed=4, chunks=(7, 9, 24), device="cpu")
    raw, truth = phantom.make("nmc-1", labels=labels, label_map=mapping, seed=4)
    expected = np.choose(labels, [3, 1, 2]).astype(np.uint8)
    np.testing.assert_array_equal(truth, expected)
    np.testing.assert_array_equal(group["truth"][:], expected)
    np.testing.assert_array_equal(group["raw"][:], raw)
    assert group.attrs["phantom"]["voxel_counts"] == {"active": 20 * 10 * 24, "cbd": 20 * 2 * 24, "pore": 20 * 10 * 24}


def test_real_geometry_as_truth(nmc_geometry):
    labels = tifffile.imread(nmc_geometry)[:40, :48, :48]
    raw, truth = phantom.make("nmc-1", labels=labels, label_map={0: 3, 1: 1, 2: 2}, seed=0)
    assert np.mean(truth == 1) == pytest.approx(np.mean(labels == 1))
    assert raw[truth == 1].mean() > raw[truth == 3].mean()


def test_a_float_label_volume_is_refused(tmp_path):
    np.save(tmp_path / "labels.npy", np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match="8- or 16-bit integers"):
        phantom.generate(tmp_path / "p.zarr", "nmc-1", labels=tmp_path / "labels.npy", device="cpu")
    assert os.listdir(tmp_path) == ["labels.npy"]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ParameterError, match="unknown phantom preset 'nmc-9'"):
        phantom.make("nmc-9", (8, 8, 8))
    with pytest.raises(ParameterError, match="cnr"):
        phantom.make("nmc-1", (8, 8, 8), cnr=5.0)
    with pytest.raises(ParameterError, match="shape"):
        phantom.make("nmc-1", (8, 8))
    phantom.generate(tmp_path / "p.zarr", "nmc-1", (8, 8, 8), device="cpu")
    before = io.open_array(tmp_path / "p.zarr/raw")[:]
    with pytest.raises(OutputError, match="already exists"):
        phantom.generate(tmp_path / "p.zarr", "nmc-1", (8, 8, 8), seed=5, device="cpu")
    np.testing.assert_array_equal(io.open_array(tmp_path / "p.zarr/raw")[:], before)


def test_cli_writes_raw_and_truth(tmp_path, capsys):
    out = tmp_path / "ph.zarr"
    assert run_cli("phantom", out, "--preset", "nmc-1", "--shape", 20, 24, 28, "--seed", 3, "--snr", 4,
                   "--chunks", 10, "--set", "psf_sigma=0.8", "-q") == 0
    printed = capsys.readouterr().out
    raw, truth = phantom.make("nmc-1", (20, 24, 28), seed=3, snr=4, psf_sigma=0.8)
    group = phantom.build.PhantomGroup(zarr.open_group(out, mode="r"))  # raw, truth: OME-Zarr images
    np.testing.assert_array_equal(group["raw"][:], raw)
    np.testing.assert_array_equal(group["truth"][:], truth)
    assert f"active {np.mean(truth == 1):.4f}" in printed
    assert run_cli("phantom", out, "--preset", "nmc-1", "--shape", 20, 24, 28, "-q") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert run_cli("phantom", tmp_path / "x.zarr", "--shape", 8, 8, 8, "--set", "nope=1", "-q") == 2
    assert "unknown phantom parameter 'nope'" in capsys.readouterr().err


def test_killed_run_resumes_to_the_same_bytes(tmp_path):
    out = tmp_path / "ph.zarr"
    cmd = [sys.executable, "-m", "gpuseg", "phantom", str(out), "--preset", "nmc-2", "--shape", "24", "24", "24",
           "--seed", "9", "--chunks", "8", "--scheduler", "synchronous", "-q"]
    killer = [sys.executable, "-m", "tests.killer", "block:marked", "1"]
    killed = subprocess.run([*killer, *cmd[3:]], capture_output=True, check=False, cwd=ROOT)
    assert killed.returncode == 137 and not out.exists()
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    raw, truth = phantom.make("nmc-2", (24, 24, 24), seed=9)
    group = phantom.build.PhantomGroup(zarr.open_group(out, mode="r"))  # raw, truth: OME-Zarr images
    np.testing.assert_array_equal(group["truth"][:], truth)
    np.testing.assert_array_equal(group["raw"][:], raw)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["nmc-1", "gra-2"])
def test_gpu_matches_cpu(name):
    raw_c, truth_c = phantom.make(name, (40, 40, 40), seed=2, device="cpu")
    raw_g, truth_g = phantom.make(name, (40, 40, 40), seed=2, device="gpu")
    # float rounding may flip a voxel lying exactly on a level; the images must agree otherwise
    assert np.mean(truth_g != truth_c) < 1e-3
    same = truth_g == truth_c
    diff = np.abs(raw_g.astype(np.int64) - raw_c.astype(np.int64))[same]
    assert np.mean(diff <= 1) > 0.999
