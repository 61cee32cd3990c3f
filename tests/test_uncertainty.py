"""The interval one user can report (``gpuseg.study.uncertainty``): out of core equals numpy, the constructed cases,
the model's classes, bad input, and ``gpuseg interval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpuseg import classify, io
from gpuseg.errors import InputError, ParameterError
from gpuseg.study import uncertainty
from gpuseg.study.uncertainty import LEVELS, active_fraction_interval, summarize
from tests.conftest import one_line_error, run_cli

SHAPE = (10, 13, 11)


def reference(probabilities: np.ndarray, channel: int, delta: float, widen: float) -> dict[str, float]:
    """The definitions of the module docstring, on the whole array in numpy."""
    p = np.asarray(probabilities)
    grid = p.astype(np.int64) if p.dtype == np.uint8 else np.rint(np.clip(p.astype(np.float32), 0, 1) * 255).astype(np.int64)
    margin = grid[channel] - np.delete(grid, channel, axis=0).max(axis=0)
    k = round(2 * delta * 255)
    fraction = float(np.mean((margin > 0) | ((margin == 0) & (channel == 0))))
    none, every = float(np.mean(margin > k)), float(np.mean(margin >= -k))
    return {"fraction": fraction, "low": max(0.0, fraction - widen * (fraction - none)),
            "high": min(1.0, fraction + widen * (every - fraction)), "soft_fraction": float(grid[channel].mean() / 255)}


def random_probabilities(classes: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Smooth random probabilities summing to 1 per voxel, with many near-ties."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(1.0, size=(classes, *SHAPE)) + (classes == 2) * rng.choice([0, 3], size=(classes, *SHAPE))
    p = raw / raw.sum(axis=0)
    return np.rint(p * 255).astype(np.uint8) if dtype == "uint8" else p.astype(dtype)


@pytest.mark.parametrize("classes, dtype, active", [(2, "uint8", 0), (2, "float16", 1), (3, "uint8", 2), (3, "float32", 0)])
def test_the_out_of_core_interval_equals_numpy_on_the_whole_volume(tmp_path, classes, dtype, active):
    p = random_probabilities(classes, dtype)
    values = [5, 2, 3][:classes]  # class values in any order: the active one is found among them
    values[active] = uncertainty.ACTIVE
    path = tmp_path / "proba.zarr"
    io.create_array(path, p.shape, p.dtype, (classes, 4, 5, 6))[:] = p
    for chunks in (None, 3, (10, 2, 7), 64):
        summary = summarize(path, classes=values, chunks=chunks, scheduler="synchronous")
        for delta, widen in ((0.0, 1.0), (0.05, 1.0), (uncertainty.DELTA, uncertainty.WIDEN), (0.3, 1.5), (0.45, 9.0)):
            got = summary.interval(delta, widen)
            want = reference(p, active, delta, widen)
            assert {k: getattr(got, k) for k in want} == pytest.approx(want, abs=1e-12), (delta, chunks)
            assert got.voxels == int(np.prod(SHAPE)) and got.low <= got.fraction <= got.high
    in_memory = active_fraction_interval(p, classes=values, chunks=4, scheduler="threads", workers=2)
    assert in_memory == active_fraction_interval(path, classes=values, scheduler="synchronous")


def test_sure_voxels_give_a_point_and_the_interval_grows_with_delta():
    rng = np.random.default_rng(1)
    sure = rng.random(SHAPE) < 0.3
    p = np.stack([sure, ~sure]).astype(np.float32)
    for delta in (0.0, 0.1, 0.49):  # every p(active) in {0, 1}: nothing is undecided below delta 0.5
        found = active_fraction_interval(p, classes=[1, 2], delta=delta, scheduler="synchronous")
        assert found.low == found.fraction == found.high == pytest.approx(sure.mean()) and found.width == 0
    full = active_fraction_interval(p, classes=[1, 2], delta=0.5, widen=1, scheduler="synchronous")
    assert (full.low, full.high) == (0.0, 1.0)  # at 0.5 every voxel is undecided

    p = random_probabilities(2, "uint8", seed=2)
    summary = summarize(p, classes=[1, 2], scheduler="synchronous")
    found = [summary.interval(d, widen=1) for d in np.linspace(0, 0.5, 11)]
    assert all(a.low >= b.low and a.high <= b.high for a, b in zip(found, found[1:]))  # nested
    assert found[0].width == pytest.approx(np.mean(p[0] == p[1]))  # delta 0: only the exact ties
    assert all(f.width == pytest.approx(summary.undecided(f.delta)) for f in found)
    wider = [summary.interval(0.2, w) for w in (0, 1, 2, 4)]  # widened around the fraction, never past 0 or 1
    assert wider[0].low == wider[0].high == wider[0].fraction
    assert all(a.low >= b.low and a.high <= b.high for a, b in zip(wider, wider[1:]))
    assert wider[2].high - wider[2].fraction == pytest.approx(2 * (wider[1].high - wider[1].fraction))
    assert wider[3].low >= 0 and wider[3].high <= 1
    # active material and the rest swapped: the interval mirrors (ties aside, which go to the first channel)
    swapped = summarize(p[::-1], classes=[1, 2], scheduler="synchronous").interval(0.2)
    plain = summary.interval(0.2)
    assert (swapped.low, swapped.high) == pytest.approx((1 - plain.high, 1 - plain.low))
    assert swapped.soft_fraction == pytest.approx(1 - plain.soft_fraction)


def test_the_active_channel_comes_from_the_model_and_the_fraction_is_the_labels(tmp_path):
    rng = np.random.default_rng(0)
    truth = (np.indices((16, 16, 16)).sum(axis=0) > 22).astype(np.uint8) + 1
    image = (truth * 60.0 + rng.normal(0, 25, truth.shape)).astype(np.float32)
    scribbles = np.zeros_like(truth)
    scribbles[8, ::2, ::2] = 3 - truth[8, ::2, ::2]  # active material is class 1 but labelled here as the 2nd class
    forest = classify.train(image, scribbles, features="gaussian:1.0", trees=7, device="cpu").forest
    forest = forest.replace(classes=forest.classes[::-1].copy())  # channel 0 is now class 2, the rest
    np.save(tmp_path / "image.npy", image)
    classify.predict(tmp_path / "image.npy", forest, tmp_path / "seg.zarr/labels",
                     probabilities=tmp_path / "seg.zarr/proba", device="cpu", scheduler="synchronous")
    labels = io.open_array(tmp_path / "seg.zarr/labels")[:]
    found = active_fraction_interval(tmp_path / "seg.zarr/proba", scheduler="synchronous")
    assert io.info(tmp_path / "seg.zarr/proba").attrs["classes"] == [2, 1]
    probabilities = io.open_array(tmp_path / "seg.zarr/proba")[:]
    ties = np.mean(probabilities[0] == probabilities[1])  # uint8 rounding may tie what float32 told apart
    assert abs(found.fraction - np.mean(labels == 1)) <= ties and found.low <= np.mean(labels == 1) <= found.high
    in_memory = classify.predict(image, forest, device="cpu")
    assert active_fraction_interval(in_memory, classes=forest.classes, scheduler="synchronous") == found


@pytest.mark.gpu
def test_the_gpu_counts_equal_the_cpu_counts():
    p = random_probabilities(3, "float32", seed=4)
    cpu = summarize(p, classes=[2, 1, 3], chunks=5, device="cpu")
    gpu = summarize(p, classes=[2, 1, 3], chunks=5, device="gpu")
    assert np.array_equal(cpu.probability_counts, gpu.probability_counts)
    assert np.array_equal(cpu.margin_counts, gpu.margin_counts)


def test_what_cannot_be_an_interval_is_refused():
    p = random_probabilities(2, "uint8")
    with pytest.raises(ParameterError, match="classes="):
        summarize(p)
    with pytest.raises(InputError, match="class 1"):
        summarize(p, classes=[2, 3])
    with pytest.raises(InputError, match="2 probability channels but 3 classes"):
        summarize(p, classes=[1, 2, 3])
    with pytest.raises(InputError, match="twice"):
        summarize(p, classes=[1, 1])
    with pytest.raises(InputError, match=r"\(class, z, y, x\)"):
        summarize(p[0], classes=[1, 2])
    with pytest.raises(InputError, match="int16"):
        summarize(p.astype(np.int16), classes=[1, 2])
    with pytest.raises(ParameterError, match="delta"):
        active_fraction_interval(p, classes=[1, 2], delta=0.6)
    with pytest.raises(ParameterError, match="widen"):
        active_fraction_interval(p, classes=[1, 2], widen=-1)
    assert LEVELS == 255  # the grid of the uint8 probabilities gpuseg predict writes


def test_the_interval_command(tmp_path, capsys):
    p = random_probabilities(2, "uint8", seed=3)
    path = tmp_path / "proba.zarr"
    io.create_array(path, p.shape, p.dtype, (2, 5, 5, 5))[:] = p
    io.open_array(path, mode="r+").attrs["classes"] = [1, 2]
    assert run_cli("interval", path, "--delta", "0.2", "--widen", "2", "--json", tmp_path / "i.json", "-q") == 0
    found = active_fraction_interval(path, delta=0.2, widen=2, scheduler="synchronous")
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: active-material fraction {found.fraction:.4f}, interval {found.low:.4f} to "
                           f"{found.high:.4f}")
    assert json.loads((tmp_path / "i.json").read_text())["high"] == found.high
    one_line_error(capsys, run_cli("interval", path, "--delta", "0.7", "-q"), "delta")
    one_line_error(capsys, run_cli("interval", path, "--active", "3", "-q"), "class 3")
    one_line_error(capsys, run_cli("interval", path, "--json", tmp_path / "i.json", "-q"), "already exists")
