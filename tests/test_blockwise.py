import itertools
import os
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import blockwise, io
from gpuseg.errors import OutputError, ParameterError


def box_mean(block, *, size):
    """A block operation with a known whole-array answer (halo = size // 2)."""
    return ndi.uniform_filter(block.astype(np.float32), size, mode="reflect")


def core_only(block, *, inner):
    """An operation that crops itself: returns the core's shape."""
    return block[inner] * 2


@pytest.mark.parametrize("shape,block,halo", [((10, 7, 5), (4, 3, 5), (2, 1, 0)), ((9, 9, 9), (2, 2, 2), 3), ((5, 6, 7), (8, 8, 8), 1)])
def test_blocks_tile_the_volume_once(shape, block, halo):
    seen = np.zeros(shape, int)
    for b in blockwise.iter_blocks(shape, block, halo):
        seen[b.core] += 1
        for c, p, i, h, n in zip(b.core, b.padded, b.inner, blockwise.normalize_halo(halo), shape):
            assert p.start == max(c.start - h, 0) and p.stop == min(c.stop + h, n)
            assert (i.start + p.start, i.stop + p.start) == (c.start, c.stop)
    assert (seen == 1).all()


def test_negative_halo_is_refused():
    with pytest.raises(ParameterError):
        blockwise.normalize_halo((1, -1, 0))


@pytest.fixture
def vol():
    return np.random.default_rng(3).random((23, 18, 21), dtype=np.float32)


@pytest.mark.parametrize("chunks", [(5, 5, 5), (2, 3, 4), (23, 18, 21), (7, 18, 1)])
def test_apply_chunked_equals_whole(vol, chunks):
    ref = box_mean(vol, size=5)
    np.testing.assert_array_equal(blockwise.apply(box_mean, vol, halo=2, chunks=chunks, size=5), ref)
    lazy = blockwise.apply(box_mean, da.from_array(vol, chunks=chunks), halo=2, size=5)
    assert isinstance(lazy, da.Array) and lazy.chunks == da.from_array(vol, chunks=chunks).chunks
    np.testing.assert_array_equal(lazy.compute(), ref)


def test_apply_with_channels_and_self_cropping(vol):
    def stack(block):
        return np.stack([block, -block])

    out = blockwise.apply(stack, vol, halo=1, chunks=4, channels=(2,))
    np.testing.assert_array_equal(out, np.stack([vol, -vol]))


def test_wrong_result_shape_is_an_error(vol):
    with pytest.raises(ValueError, match="expected the padded"):
        blockwise.apply(lambda b: b[1:], vol, halo=1, chunks=5)


def _run(src, out, **kw):
    return blockwise.run(box_mean, [src], out, shape=src.shape, dtype=np.float32, halo=2, kwargs={"size": 5}, **kw)


@pytest.mark.parametrize("scheduler,workers", [("synchronous", 1), ("threads", 2), ("processes", 2)])
def test_run_matches_whole_array_under_each_scheduler(tmp_path, vol, scheduler, workers):
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (6, 6, 6))
    src[:] = vol
    out = _run(src, tmp_path / "v.zarr/mean", chunks=(4, 5, 6), scheduler=scheduler, workers=workers)
    np.testing.assert_array_equal(out[:], box_mean(vol, size=5))
    assert out.chunks == (4, 5, 6)
    assert sorted(p.name for p in (tmp_path / "v.zarr").iterdir()) == ["mean", "raw", "zarr.json"]


def test_run_on_a_local_cluster(tmp_path, vol):
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (8, 8, 8))
    src[:] = vol
    out = _run(src, tmp_path / "v.zarr/mean", chunks=8, scheduler="local", workers=2)
    np.testing.assert_array_equal(out[:], box_mean(vol, size=5))


def test_auto_blocks_grow_to_the_budget():
    assert blockwise.auto_block_shape((23, 18, 21), (4, 5, 6), max_voxels=400) == (8, 5, 6)
    assert blockwise.auto_block_shape((23, 18, 21), (4, 5, 6), max_voxels=10**6) == (32, 20, 24)
    assert blockwise.auto_block_shape((8, 8, 8), (8, 8, 8), max_voxels=1) == (8, 8, 8)


def test_block_shape_multiple_of_chunks(tmp_path, vol):
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (6, 6, 6))
    src[:] = vol
    out = _run(src, tmp_path / "a.zarr", chunks=3, block_shape=(6, 9, 12))
    np.testing.assert_array_equal(out[:], box_mean(vol, size=5))
    with pytest.raises(ParameterError, match="multiple"):
        _run(src, tmp_path / "b.zarr", chunks=3, block_shape=(4, 6, 6))


def test_existing_output_needs_overwrite(tmp_path, vol):
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (6, 6, 6))
    src[:] = vol
    _run(src, tmp_path / "o.zarr", chunks=8)
    before = io.open_array(tmp_path / "o.zarr")[:]
    with pytest.raises(OutputError, match="--overwrite"):
        blockwise.run(box_mean, [src], tmp_path / "o.zarr", shape=vol.shape, dtype=np.float32, halo=1, kwargs={"size": 3})
    np.testing.assert_array_equal(io.open_array(tmp_path / "o.zarr")[:], before)
    out = blockwise.run(box_mean, [src], tmp_path / "o.zarr", shape=vol.shape, dtype=np.float32, halo=1, kwargs={"size": 3}, overwrite=True)
    np.testing.assert_array_equal(out[:], box_mean(vol, size=3))


def _store_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


CRASHING_RUN = """
import sys, numpy as np
from gpuseg import blockwise, io
from tests.test_blockwise import box_mean
src = io.open_array(sys.argv[1])
blockwise.run(box_mean, [src], sys.argv[2], shape=src.shape, dtype=np.float32, halo=2, chunks=4,
              block_shape=(4, 4, 4), kwargs={"size": 5}, scheduler="synchronous", attrs={"note": "fixed"})
"""


def test_killed_run_resumes_to_identical_bytes(tmp_path, vol):
    """A run killed half-way (and a torn chunk left behind), rerun, equals a clean run byte for byte."""
    src = io.create_array(tmp_path / "in.zarr/raw", vol.shape, vol.dtype, (6, 6, 6))
    src[:] = vol
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = lambda out, **extra: subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path / "in.zarr/raw"), str(tmp_path / out)],
        env={**env, **extra}, cwd=root, capture_output=True, text=True,
    )
    clean = run("clean.zarr")
    assert clean.returncode == 0, clean.stderr
    killed = run("resumed.zarr", GPUSEG_CRASH_AFTER="7")
    assert killed.returncode == 137
    assert not (tmp_path / "resumed.zarr").exists()  # the output appears only when complete
    partial = tmp_path / ".resumed.zarr.partial.zarr"
    done = sorted(os.listdir(partial / blockwise.DONE_DIR))
    assert len(done) == 6  # the 7th block was written but died before its marker
    # tear one more chunk, as a kill during a write on a non-atomic store would
    torn = done[0]  # block = chunk here, so block i-j-k is chunk c/i/j/k
    chunk = partial / "c" / Path(*torn.split("-"))
    chunk.write_bytes(chunk.read_bytes()[:5])
    (partial / blockwise.DONE_DIR / torn).unlink()
    resumed = run("resumed.zarr")
    assert resumed.returncode == 0, resumed.stderr
    assert _store_bytes(tmp_path / "resumed.zarr") == _store_bytes(tmp_path / "clean.zarr")
    np.testing.assert_array_equal(io.open_array(tmp_path / "resumed.zarr")[:], box_mean(vol, size=5))


def test_changed_parameters_do_not_resume(tmp_path, vol):
    src = io.create_array(tmp_path / "in.zarr/raw", vol.shape, vol.dtype, (6, 6, 6))
    src[:] = vol
    partial = blockwise._partial_path(str(tmp_path / "o.zarr"))
    stale = blockwise._open_partial(partial, "another-run", vol.shape, np.float32, (4, 4, 4), {})
    stale[:] = 99
    (Path(partial) / blockwise.DONE_DIR / "0-0-0").touch()
    out = _run(src, tmp_path / "o.zarr", chunks=4, block_shape=(4, 4, 4))
    np.testing.assert_array_equal(out[:], box_mean(vol, size=5))


def test_auto_block_counts_the_halo_where_memory_is_the_limit():
    # 128³ grows to 256³ only when the padded block (256 + 2·8)³ fits the budget
    assert blockwise.auto_block_shape((512,) * 3, (128,) * 3, 256**3) == (256, 256, 256)
    assert blockwise.auto_block_shape((512,) * 3, (128,) * 3, 256**3, halo=(8, 8, 8)) == (256, 256, 128)
    assert blockwise.auto_block_shape((512,) * 3, (128,) * 3, 272**3, halo=(8, 8, 8)) == (256, 256, 256)


def test_gpu_blocks_come_from_free_device_memory():
    small = blockwise.gpu_block_voxels(100, in_flight=3, free=4 * 2**30)
    large = blockwise.gpu_block_voxels(100, in_flight=3, free=80 * 2**30)
    assert small == int(4 * 2**30 * blockwise.GPU_MEMORY_SHARE / 3 / 100)
    assert large == blockwise.GPU_MAX_BLOCK_VOXELS  # capped
    # the blocks in flight together stay within the share of free memory
    assert 3 * small * 100 <= 4 * 2**30 * blockwise.GPU_MEMORY_SHARE


def test_device_slot_is_a_no_op_on_the_cpu():
    from gpuseg import backend

    with backend.device_slot(backend.resolve("cpu")):
        pass


def test_timing_shares_of_a_run(tmp_path):
    from gpuseg import timing

    vol = np.random.default_rng(3).random((32, 32, 32), dtype=np.float32)
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (16, 16, 16))
    src[:] = vol
    with timing.collect() as totals:
        out = blockwise.run(box_mean, [src], tmp_path / "v.zarr/out", shape=vol.shape, dtype=np.float32, halo=1,
                            chunks=16, block_shape=(16, 16, 16), kwargs={"size": 3}, device="cpu",
                            scheduler="threads", workers=2)
    assert totals["blocks"] == 8
    np.testing.assert_allclose(out[:], ndi.uniform_filter(vol, 3, mode="reflect"), rtol=1e-6)
    assert all(totals[p] > 0 for p in ("read", "compute", "write"))
    shares = timing.shares(totals)
    assert abs(sum(shares.values()) - 1) < 1e-9 and shares["compute"] > 0
    with timing.collect() as idle:  # nothing runs: nothing is counted
        pass
    assert idle["blocks"] == 0 and timing.shares(idle)["io"] == 0


def cupy_box_mean(block, *, size):
    """The GPU twin of box_mean (cupyx.scipy.ndimage on a cupy block)."""
    from gpuseg import backend

    return backend.for_array(block).ndi.uniform_filter(block.astype("float32"), size, mode="reflect")


@pytest.mark.gpu
def test_gpu_run_with_more_threads_than_device_slots(tmp_path):
    """Eight threads share the GPU's few block slots (own streams): same bytes as the CPU, timing on the device."""
    from gpuseg import backend, timing

    vol = np.random.default_rng(4).random((64, 64, 64), dtype=np.float32)
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (16, 16, 16))
    src[:] = vol
    with timing.collect() as totals:
        out = blockwise.run(cupy_box_mean, [src], tmp_path / "v.zarr/gpu", shape=vol.shape, dtype=np.float32, halo=1,
                            chunks=16, block_shape=(16, 16, 16), kwargs={"size": 3}, device="gpu",
                            scheduler="threads", workers=8)
    np.testing.assert_allclose(out[:], ndi.uniform_filter(vol, 3, mode="reflect"), rtol=1e-5, atol=1e-6)
    assert totals["blocks"] == 64 and totals["to_device"] > 0 and totals["gpu_pool_peak"] > 0
    # automatic GPU blocks: sized from free device memory, several in flight
    auto = blockwise.run(cupy_box_mean, [src], tmp_path / "v.zarr/auto", shape=vol.shape, dtype=np.float32, halo=1,
                         chunks=16, kwargs={"size": 3}, device="gpu")
    np.testing.assert_array_equal(auto[:], out[:])
    assert blockwise.gpu_block_voxels(64) > 16**3 and backend.free_device_memory() > 0


def test_device_slots_bound_the_blocks_on_the_gpu(monkeypatch):
    """Many threads, at most GPU_BLOCKS_IN_FLIGHT inside at once, and only that many streams ever made
    (cupy's pool reuses memory per stream). A stand-in cupy records what the slots do."""
    import sys
    import threading
    import time
    import types

    from gpuseg import backend

    made, inside, peak = [], [0], [0]
    lock = threading.Lock()

    class Stream:
        def __init__(self, non_blocking):
            assert non_blocking
            made.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Stream=Stream))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_slot_streams", None)
    gpu = backend.Backend("gpu", np, ndi, None)

    def work():
        for _ in range(5):
            with backend.device_slot(gpu):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.002)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == backend.GPU_BLOCKS_IN_FLIGHT
    assert len(made) == backend.GPU_BLOCKS_IN_FLIGHT
