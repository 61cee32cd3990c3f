"""A run killed at random moments resumes to the bytes of an uninterrupted run, whatever the rerun's
workers, block budget or scheduler, for every kind of output: filter, features, prediction with
probabilities and uncertainty, phantom, watershed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gpuseg import classify, features, filters, io, phantom
from gpuseg.engine import faults, plan
from gpuseg.segment import threshold, watershed
from tests import killer
from tests.killer import Killed

SHAPE = (24, 20, 22)
BUDGETS = (1, 2**14, 2**28)  # host bytes per block: one chunk, a few, as large as the engine likes


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    raw, truth = phantom.make("nmc-1", SHAPE, seed=4)
    arr = io.create_array(folder / "in.zarr/raw", SHAPE, raw.dtype, (8, 8, 8))
    arr[:] = raw
    scribbles = np.zeros(SHAPE, np.uint8)
    scribbles[12, ::2, ::2] = truth[12, ::2, ::2]
    model = classify.train(raw, scribbles, features="gaussian:1.0,hessian:1.0", trees=5, device="cpu",
                           model=folder / "m.npz").model
    return folder / "in.zarr/raw", model


def _run_op(name, src, model, out, **kw):
    """One of the operations under test, writing below ``out``; returns the paths it writes."""
    common = {"device": "cpu", "chunks": 8, **kw}
    if name == "filter":
        filters.gaussian(src, 1.5, output=f"{out}/g", **common)
        return [f"{out}/g"]
    if name == "features":
        features.compute(src, "gaussian:1.0,gradient:1.0", output=f"{out}/f", **common)
        return [f"{out}/f"]
    if name == "predict":
        classify.predict(src, model, f"{out}/labels", probabilities=f"{out}/p", uncertainty=f"{out}/u", **common)
        return [f"{out}/labels", f"{out}/p", f"{out}/u"]
    if name == "watershed":
        watershed.watershed(src, 100, 160, halo=4, output=f"{out}/w", **common)
        return [f"{out}/w"]
    if name == "threshold":
        threshold.apply_thresholds(src, (90, 150), output=f"{out}/t", **common)
        return [f"{out}/t"]
    group = str(out).replace(".zarr", "-ph.zarr")
    phantom.generate(group, "nmc-2", SHAPE, seed=3, **common)
    return [f"{group}/truth", f"{group}/raw"]


OPERATIONS = ["filter", "features", "predict", "watershed", "phantom"]  # and, across devices, one whose
# bytes are the same on every device, so its chunks are kept when a resume changes device


def _kill_and_resume(tmp_path, volume, monkeypatch, name, devices, least_kills=2):
    """Kill ``name`` at four random moments, resuming each time with other workers, block budget,
    scheduler and (cycling through ``devices``) device; the bytes must equal an uninterrupted run's on
    the device that finished it (an output never mixes two devices' bits)."""
    src, model = volume
    # the watershed's blocks are fixed by its declaration (its bytes depend on them): make them small here
    monkeypatch.setattr(watershed, "WATERSHED", dataclasses.replace(watershed.WATERSHED, max_block_voxels=20**3))
    rng = np.random.default_rng(sum(map(ord, name)))
    kills, done, paths = 0, False, []
    try:
        while kills < 4 and not done:
            killer.arm(str(rng.choice(["block:written", "block:marked", "commit:start"])), int(rng.integers(1, 4)))
            monkeypatch.setattr(plan, "HOST_BLOCK_BYTES", BUDGETS[kills % 3])
            device = devices[kills % len(devices)]
            try:
                paths = _run_op(name, src, model, tmp_path / "out.zarr", workers=int(rng.integers(1, 9)),
                                scheduler="synchronous", device=device)
                done = True
            except Killed:
                kills += 1
    finally:
        faults.hook = None
    if not done:  # resumed once more, with threads and yet another budget
        monkeypatch.setattr(plan, "HOST_BLOCK_BYTES", BUDGETS[int(rng.integers(0, 3))])
        device = devices[-1]
        paths = _run_op(name, src, model, tmp_path / "out.zarr", workers=2, scheduler="threads", device=device)
    assert kills >= least_kills
    reference = [io.open_array(p, mode="r")[:] for p in _run_op(name, src, model, tmp_path / "ref.zarr", device=device)]
    for got, want in zip(paths, reference):
        np.testing.assert_array_equal(io.open_array(got, mode="r")[:], want)
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert not leftovers, leftovers


@pytest.mark.parametrize("name", OPERATIONS)
def test_random_kills_resume_to_the_uninterrupted_bytes(tmp_path, volume, monkeypatch, name):
    _kill_and_resume(tmp_path, volume, monkeypatch, name, ["cpu"])


@pytest.mark.gpu
@pytest.mark.parametrize("name", [*OPERATIONS, "threshold"])
def test_resuming_on_the_other_device_gives_the_same_bytes(tmp_path, volume, monkeypatch, name):
    """CPU ↔ GPU between kills: float outputs start afresh on the other device, integer ones keep their chunks."""
    _kill_and_resume(tmp_path, volume, monkeypatch, name, ["gpu", "cpu"], least_kills=1)  # GPU blocks are few
