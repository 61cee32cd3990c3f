"""The GPU path of the engine, on a real GPU or the strict cupy double: each defect once found by reading
the code has a test here that failed on the code of that time."""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import backend, filters, io
from gpuseg.classify import pixel
from gpuseg.engine import Operation, Result, cluster, executor, plan, reduce
from gpuseg.engine.blocks import iter_blocks
from gpuseg.errors import DeviceError
from gpuseg.segment import threshold, watershed

pytestmark = pytest.mark.gpu

MiB = 2**20


def _cupy():
    import cupy

    return cupy


def test_the_cpu_backend_takes_device_arrays():
    x = _cupy().arange(6).reshape(2, 3)
    got = backend.resolve("cpu").asarray(x)
    assert isinstance(got, np.ndarray) and got.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_scalars_of_device_reductions_reach_the_host():
    import dask.array as da

    x = da.from_array(_cupy().asarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)), chunks=2, asarray=False)
    lo, hi = reduce.compute_scalars([x.min(), x.max()], scheduler="synchronous")
    assert (float(lo), float(hi)) == (0.0, 23.0)


def test_float_histogram_and_otsu_on_the_gpu_equal_the_cpu():
    vol = np.random.default_rng(1).normal(100, 20, (20, 20, 20)).astype(np.float32)
    counts_c, centers_c = threshold.histogram(vol, 64, device="cpu", chunks=8)
    counts_g, centers_g = threshold.histogram(vol, 64, device="gpu", chunks=8)
    np.testing.assert_array_equal(counts_g, counts_c)
    np.testing.assert_array_equal(centers_g, centers_c)


def test_counting_does_not_synchronise(gpu_double):
    vol = np.random.default_rng(2).integers(0, 255, (16, 16, 16)).astype(np.uint8)
    gpu_double.reset()
    counts, _ = threshold.histogram(vol, device="gpu", chunks=8)
    assert counts.sum() == vol.size
    assert "bincount" not in gpu_double.counters()["sync_reasons"]


def test_gpu_gaussian_sums_like_scipy_to_the_last_bit():
    vol = np.random.default_rng(3).random((18, 17, 16), dtype=np.float32)
    cpu = filters.gaussian(vol, 1.7, device="cpu")
    gpu = filters.gaussian(_cupy().asarray(vol), 1.7, device="gpu").get()
    np.testing.assert_array_equal(gpu, cpu)


def test_processes_on_one_gpu_share_its_memory():
    one = cluster.Session("threads", 4).placement("gpu")
    four = cluster.Session("processes", 4).placement("gpu")
    assert one.sharing == 1 and four.sharing == 4
    bound = filters.GAUSSIAN.bind({"sigma": (1.0,) * 3, "truncate": 4.0}, np.float32)
    sizes = [np.prod(plan.make(bound, (512,) * 3, (32,) * 3, device="gpu", workers=4, free_device_memory=2**30,
                               sharing=p.sharing).block_shape) for p in (one, four)]
    assert sizes[1] < sizes[0]


def _big_then_bigger(block, *, state):
    """Allocates 64 MiB, then asks for 128 MiB (which the double refuses the first time)."""
    cp = _cupy()
    first = cp.empty(64 * MiB, cp.uint8)
    state["calls"] += 1
    second = cp.empty(128 * MiB, cp.uint8)
    del first, second
    return block.astype(cp.float32) * 2


def test_out_of_memory_releases_the_failed_attempt_before_retrying(gpu_double, monkeypatch):
    gpu_double.reset(total_memory=1024 * MiB)
    gpu_double.fail_allocations_above(100 * MiB)
    seen = []
    real = backend.release_cached_memory

    def release():
        seen.append(gpu_double.pool().used_bytes())  # what the failed attempt still holds
        gpu_double.fail_allocations_above(None)  # the retry goes through
        real()

    monkeypatch.setattr(backend, "release_cached_memory", release)
    state = {"calls": 0}
    op = Operation("oom", _big_then_bigger, results={"output": Result(np.float32)})
    x = np.ones((8, 8, 8), np.float32)
    out = executor.run_block(op.bind({"state": state}, x.dtype), [x], next(iter_blocks(x.shape, x.shape, 0)),
                             backend.resolve("gpu"))
    np.testing.assert_array_equal(out["output"], 2 * x)
    assert state["calls"] == 2 and len(seen) == 1
    assert seen[0] < 64 * MiB, "the failed attempt's 64 MiB were still referenced when the pool was emptied"


def test_a_block_too_large_for_the_device_is_computed_in_halves_with_the_same_bytes(gpu_double):
    vol = np.random.default_rng(4).random((32, 24, 24), dtype=np.float32)
    expected = filters.gaussian(vol, 1.0, device="cpu")
    gpu_double.reset()
    gpu_double.fail_allocations_above(8 * 32 * 24 * 24 - 1)  # a whole block's float64 copy does not fit; a half does
    got = filters.gaussian(vol, 1.0, device="gpu", chunks=(32, 24, 24))
    np.testing.assert_array_equal(got, expected)
    assert gpu_double.counters()["oom_errors"] >= 2


def test_an_operation_whose_bytes_depend_on_the_blocking_is_not_split(gpu_double):
    vol = (np.random.default_rng(5).random((16, 16, 16)) * 255).astype(np.uint8)
    gpu_double.reset()
    gpu_double.fail_allocations_above(4 * 16**3 - 1)
    with pytest.raises(DeviceError, match="GPU out of memory"):
        watershed.watershed(vol, 80, 170, halo=4, device="gpu", chunks=16)


def test_the_watershed_floods_on_the_host_with_the_device_released(monkeypatch):
    holding, flooded_holding = set(), []
    real_slot = executor.device_slot

    @contextlib.contextmanager
    def tracked(be):
        with real_slot(be):
            holding.add(threading.get_ident())
            try:
                yield
            finally:
                holding.discard(threading.get_ident())

    flood = watershed.WATERSHED.finish

    def watching(landscape, **params):
        flooded_holding.append(threading.get_ident() in holding)
        return flood(landscape, **params)

    monkeypatch.setattr(executor, "device_slot", tracked)
    monkeypatch.setattr(watershed, "WATERSHED", dataclasses.replace(watershed.WATERSHED, finish=watching))
    vol = (np.random.default_rng(6).random((16, 16, 16)) * 255).astype(np.uint8)
    got = watershed.watershed(vol, 80, 170, halo=4, device="gpu", chunks=8)
    np.testing.assert_array_equal(got, watershed.watershed(vol, 80, 170, halo=4, device="cpu", chunks=8))
    assert flooded_holding and not any(flooded_holding), "a block flooded while holding a device slot"


def test_outputs_are_written_after_the_device_is_released(tmp_path, monkeypatch):
    from gpuseg.engine import run

    slots_free_while_writing = []
    real = run.outputs.mark_done

    class Recorder(dict):
        dtype = np.dtype(np.float32)

        def __setitem__(self, key, value):
            slots_free_while_writing.append(executor._slot_streams.qsize())

    monkeypatch.setattr(run.outputs, "mark_done", lambda *a: None)
    bound = filters.GAUSSIAN.bind({"sigma": (1.0,) * 3, "truncate": 4.0}, np.float32)
    block = next(iter_blocks((8, 8, 8), (8, 8, 8), bound.halo))
    run._block_task(bound, [np.ones((8, 8, 8), np.float32)], {"output": Recorder()}, block, "gpu", {}, (8, 8, 8),
                    {"output": str(tmp_path / "o.zarr")}, ["the volume"])
    monkeypatch.setattr(run.outputs, "mark_done", real)
    assert slots_free_while_writing == [plan.IN_FLIGHT]


def test_uncertainty_on_the_gpu_needs_no_partition(monkeypatch):
    from gpuseg.classify import forest as fo

    rng = np.random.default_rng(7)
    image = rng.random((12, 12, 12), dtype=np.float32)
    labels = np.zeros(image.shape, np.uint8)
    labels[6, ::2, ::2] = rng.integers(1, 4, labels[6, ::2, ::2].shape)
    model = pixel.train(image, labels, features="gaussian:1.0", trees=4, device="cpu").forest
    assert isinstance(model, fo.Forest) and model.n_classes == 3
    monkeypatch.setattr(_cupy(), "partition", lambda *a, **k: (_ for _ in ()).throw(AssertionError("partition")))
    gpu = pixel.predict(_cupy().asarray(image), model, device="gpu")
    cpu = pixel.predict(image, model, device="cpu")
    np.testing.assert_allclose(gpu.uncertainty.get(), cpu.uncertainty, atol=1e-6)
    np.testing.assert_array_equal(gpu.labels.get(), cpu.labels)


def test_a_file_input_runs_on_the_gpu(tmp_path):
    vol = np.random.default_rng(8).random((20, 20, 20), dtype=np.float32)
    np.save(tmp_path / "v.npy", vol)
    filters.gaussian(tmp_path / "v.npy", 1.2, output=tmp_path / "g.zarr", device="gpu", chunks=8)
    np.testing.assert_array_equal(io.open_array(tmp_path / "g.zarr")[:], ndi.gaussian_filter(vol, 1.2, output=np.float32))
