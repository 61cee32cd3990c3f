"""The GPU test double itself: it must fail wherever real cupy fails, or it would hide gpuseg's GPU bugs.

Each test uses the ``gpu_double`` fixture (the double installed and reset; skipped on a real GPU).
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
import scipy.ndimage as sndi

from gpuseg import backend
from tests.test_forest import _at_thresholds


def test_cpu_tests_see_no_double():
    """Outside gpu tests the double is not installed: ``import cupy`` finds a real cupy or nothing."""
    import gpu_double

    assert not gpu_double.installed()
    assert all(not getattr(m, "__name__", "").startswith("gpu_double") for k, m in sys.modules.items()
               if k.split(".")[0] in ("cupy", "cupyx", "cucim"))
    assert backend.for_array(np.zeros(2)).name == "cpu"


def test_installed_double_is_a_working_gpu(gpu_double):
    import cupy

    assert backend.gpu_status() == (True, "")
    x = cupy.arange(4)
    assert type(x).__module__ == "cupy" and backend.for_array(x).name == "gpu"
    assert backend.resolve("gpu").ndi.__name__.endswith("cupyx.scipy.ndimage")


# --------------------------------------------------------------------------- host / device boundary


def test_implicit_conversion_to_numpy_raises(gpu_double):
    import cupy

    x = cupy.arange(6, dtype=cupy.float32)
    zero_d = x.sum()
    host = np.zeros(6, np.float32)
    message = "Implicit conversion to a NumPy array is not allowed"
    for convert in (lambda: np.asarray(x), lambda: np.array(x), lambda: np.asarray(zero_d),
                    lambda: host.__setitem__(slice(None), x), lambda: np.float32(zero_d) + host):
        with pytest.raises(TypeError, match=message):
            convert()
    np.testing.assert_array_equal(x.get(), np.arange(6))
    np.testing.assert_array_equal(cupy.asnumpy(x), np.arange(6))
    assert cupy.asnumpy(host) is host


@pytest.mark.parametrize("op", ["add", "mul", "lt", "eq", "iadd"])
def test_numpy_operands_are_refused_both_ways(gpu_double, op):
    import operator

    import cupy

    x = cupy.ones(3, cupy.float32)
    h = np.ones(3, np.float32)
    f = getattr(operator, op)
    with pytest.raises(TypeError):
        f(x, h)
    with pytest.raises(TypeError):
        f(h.copy(), x)


def test_routines_refuse_numpy_arrays_but_take_scalars(gpu_double):
    import cupy

    x = cupy.arange(4, dtype=cupy.float32)
    for call in (lambda: cupy.maximum(x, np.ones(4, np.float32)), lambda: cupy.concatenate([x, np.ones(2)]),
                 lambda: cupy.add(x, np.array(1.0)), lambda: cupy.where(x > 1, x, np.zeros(4)),
                 lambda: cupy.sqrt(x, out=np.empty(4, np.float32)), lambda: cupy.maximum(x, [1, 2, 3, 4]),
                 lambda: cupy.bincount(np.arange(3)), lambda: cupy.ascontiguousarray(np.ones(2))):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(TypeError, match="Wrong arguments"):
        cupy.add(x, 1, where=x > 0)
    assert (cupy.maximum(x, np.float32(2)) + 1.5).dtype == np.float32  # numpy scalars and Python scalars are fine
    assert cupy.asarray(np.ones(3)).dtype == np.float64 and gpu_double.counters()["h2d_transfers"] == 1


def test_zero_d_arrays_convert_explicitly_and_synchronise(gpu_double):
    import cupy

    s = cupy.arange(5).sum()
    assert isinstance(s, cupy.ndarray) and s.ndim == 0
    before = gpu_double.counters()
    assert int(s) == 10 and float(s) == 10.0 and bool(s) and s.item() == 10
    after = gpu_double.counters()
    assert after["syncs"] - before["syncs"] == 4 and after["d2h_transfers"] - before["d2h_transfers"] == 4
    with pytest.raises(TypeError):
        range(s)  # cupy arrays have no __index__


def test_reductions_and_scalar_indexing_return_0d_device_arrays(gpu_double):
    import cupy

    x = cupy.arange(12, dtype=cupy.float32).reshape(3, 4)
    for r in (x.sum(), x.max(), cupy.mean(x), cupy.count_nonzero(x), x.argmax(), cupy.allclose(x, x), x[1, 2]):
        assert isinstance(r, cupy.ndarray) and r.ndim == 0, r
    view = x[1, 2]
    view[...] = 100  # a 0-d view, as in cupy
    assert float(x[1, 2]) == 100.0


# --------------------------------------------------------------------------- arrays


def test_dtypes_are_numpys_and_unsupported_ones_fail(gpu_double):
    import cupy

    assert cupy.float32 is np.float32 and cupy.dtype is np.dtype and cupy.uint8 is np.uint8
    with pytest.raises(ValueError, match="Unsupported dtype"):
        cupy.asarray(np.array(["a"]))
    with pytest.raises(ValueError, match="Unsupported dtype"):
        cupy.zeros(3, np.longdouble)


def test_views_share_memory_and_keep_numpy_strides(gpu_double):
    import cupy

    x = cupy.zeros((4, 6), cupy.float32)
    used = gpu_double.pool().used_bytes()
    t = x.T
    r = x.reshape(2, 12)
    same = x.astype(cupy.float32, copy=False)
    assert same is x and t.strides == (4, 24) and r.strides == (48, 4)
    assert gpu_double.pool().used_bytes() == used  # views allocate nothing
    t[5, 3] = 7
    assert float(x[3, 5]) == 7.0 and float(r[1, 11]) == 7.0
    assert x.reshape(-1)[::2].strides == (8,)
    strides = x.T.copy().strides
    assert strides == (16, 4)
    assert gpu_double.pool().used_bytes() == used  # the copy died at once, its block is cached


def test_empty_is_uninitialised_memory(gpu_double):
    import cupy

    assert bool(cupy.isnan(cupy.empty(8, cupy.float32)).all())
    assert int(cupy.empty(3, cupy.int16)[0]) == -1


def test_indexing_follows_cupy(gpu_double):
    import cupy

    x = cupy.arange(10) * 10
    h2d = gpu_double.counters()["h2d_transfers"]
    assert x[np.array([1, 3])].tolist() == [10, 30]  # numpy index arrays are copied over
    assert gpu_double.counters()["h2d_transfers"] == h2d + 1
    assert x[cupy.asarray([12, -1])].tolist() == [20, 90]  # out-of-bounds indices wrap around
    syncs = gpu_double.counters()["syncs"]
    assert x[x > 50].shape == (4,)  # a boolean mask waits for the device
    assert gpu_double.counters()["syncs"] == syncs + 1
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[2:4] = np.array([1, 2])
    x[cupy.asarray([2, 3])] = np.array([1, 2])  # through an index array a host value is copied over
    x[0:2] = 5
    assert x[:4].tolist() == [5, 5, 1, 2]
    with pytest.raises(IndexError):
        x[10]


# --------------------------------------------------------------------------- memory


def test_pool_caches_freed_blocks_per_stream(gpu_double):
    import cupy

    pool = cupy.get_default_memory_pool()
    x = cupy.empty(1000, cupy.float32)  # 4000 bytes -> 4096 (rounded to 512)
    assert pool.used_bytes() == pool.total_bytes() == 4096
    del x
    assert pool.used_bytes() == 0 and pool.total_bytes() == 4096 and pool.n_free_blocks() == 1
    free_before, total = cupy.cuda.runtime.memGetInfo()
    y = cupy.empty(500, cupy.float64)  # same size, same (null) stream: the cached block, no cudaMalloc
    assert gpu_double.counters()["driver_mallocs"] == 1 and cupy.cuda.runtime.memGetInfo()[0] == free_before
    small = cupy.empty(10, cupy.uint8)  # 512 bytes, split from nothing: a new block
    del y
    with cupy.cuda.Stream(non_blocking=True):
        z = cupy.empty(1000, cupy.float32)  # another stream cannot reuse the null stream's block
    assert gpu_double.counters()["driver_mallocs"] == 3 and pool.total_bytes() == 4096 * 2 + 512
    del z, small
    pool.free_all_blocks()
    assert pool.total_bytes() == 0 and cupy.cuda.runtime.memGetInfo() == (total, total)


def test_pool_splits_and_merges_cached_blocks(gpu_double):
    import cupy

    pool = cupy.get_default_memory_pool()
    big = cupy.empty(4096, cupy.uint8)
    del big
    a = cupy.empty(1024, cupy.uint8)  # best fit: split from the cached 4096-byte block
    b = cupy.empty(1024, cupy.uint8)
    assert gpu_double.counters()["driver_mallocs"] == 1 and pool.total_bytes() == 4096
    pool.free_all_blocks()  # the free remainder is split: it cannot go back to the driver
    assert pool.total_bytes() == 4096
    del a, b  # the pieces merge again into one unsplit block
    pool.free_all_blocks()
    assert pool.total_bytes() == 0


def test_out_of_memory_injection_and_recovery(gpu_double):
    import cupy

    gpu_double.fail_next_allocations(1)
    with pytest.raises(cupy.cuda.memory.OutOfMemoryError) as info:
        cupy.zeros(1000, cupy.float32)
    assert type(info.value).__name__ == "OutOfMemoryError" and backend.is_out_of_memory(info.value)
    assert str(info.value) == "Out of memory allocating 4,096 bytes (allocated so far: 0 bytes)."
    assert cupy.zeros(1000, cupy.float32).shape == (1000,)  # only the next one failed
    gpu_double.fail_allocations_above(1 << 20)
    cupy.empty(1 << 18, cupy.float32)
    with pytest.raises(cupy.cuda.memory.OutOfMemoryError):
        cupy.empty((1 << 18) + 1, cupy.float32)
    gpu_double.clear_faults()
    assert gpu_double.counters()["oom_errors"] == 2


def test_a_full_device_frees_cached_blocks_and_retries_then_fails(gpu_double):
    import cupy

    gpu_double.reset(total_memory=1 << 20)
    pool = cupy.get_default_memory_pool()
    with cupy.cuda.Stream(non_blocking=True):
        cached = cupy.empty(600 * 1024, cupy.uint8)
        del cached  # cached on this stream's arena: the null stream cannot reuse it
    assert pool.total_bytes() == 600 * 1024 and pool.used_bytes() == 0
    kept = cupy.empty(700 * 1024, cupy.uint8)  # cudaMalloc fails, the pool frees its cache, the retry succeeds
    assert pool.total_bytes() == 700 * 1024 and gpu_double.counters()["failed_driver_mallocs"] == 1
    with pytest.raises(cupy.cuda.memory.OutOfMemoryError, match=r"Out of memory allocating 409,600 bytes "
                                                                 r"\(allocated so far: 716,800 bytes\)\."):
        cupy.empty(400 * 1024, cupy.uint8)
    del kept
    assert cupy.cuda.runtime.memGetInfo()[0] == (1 << 20) - 700 * 1024  # cached, not yet released
    backend.release_cached_memory()
    assert cupy.cuda.runtime.memGetInfo() == (1 << 20, 1 << 20) and backend.free_device_memory() == 1 << 20


# --------------------------------------------------------------------------- devices, streams, synchronisation


def test_streams_are_per_thread_and_devices_are_checked(gpu_double):
    import cupy

    seen = {}
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        assert cupy.cuda.get_current_stream() == stream
        t = threading.Thread(target=lambda: seen.setdefault("other", cupy.cuda.get_current_stream()))
        t.start()
        t.join()
        stream.synchronize()
    assert seen["other"] == cupy.cuda.Stream.null and cupy.cuda.get_current_stream() == cupy.cuda.Stream.null
    assert gpu_double.counters()["streams_created"] == 1 and gpu_double.counters()["sync_reasons"]["Stream.synchronize"] == 1
    with cupy.cuda.Device(0) as dev:
        assert dev.id == 0 and cupy.cuda.Device().id == 0
        dev.synchronize()
    with pytest.raises(cupy.cuda.runtime.CUDARuntimeError), cupy.cuda.Device(1):
        pass
    props = cupy.cuda.runtime.getDeviceProperties(0)
    assert isinstance(props["name"], bytes) and props["totalGlobalMem"] == gpu_double.spec().total_memory
    assert props["multiProcessorCount"] > 0 and props["l2CacheSize"] > 0
    assert cupy.cuda.runtime.getDeviceCount() == 1


def test_synchronising_routines_are_counted(gpu_double):
    import cupy

    x = cupy.asarray(np.array([0, 1, 1, 3], np.int64))
    before = gpu_double.counters()["syncs"]
    cupy.bincount(x, minlength=5)  # (x < 0).any() and int(x.max()): two waits, even with minlength
    cupy.nonzero(x)
    assert gpu_double.counters()["syncs"] - before == 3
    with pytest.raises(ValueError, match="non-negative"):
        cupy.bincount(cupy.asarray(np.array([-1, 2])))
    with pytest.raises(TypeError, match="x must be int array"):
        cupy.bincount(cupy.ones(3))


# --------------------------------------------------------------------------- RawKernel


AXPY = r"""
extern "C" __global__ void axpy(const float* __restrict__ x, float* __restrict__ y, const float a, const int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}
"""


def test_raw_kernel_marshals_arguments_like_cupy(gpu_double):
    import cupy

    kernel = cupy.RawKernel(AXPY, "axpy")
    x = cupy.arange(300, dtype=cupy.float32)
    y = cupy.ones(300, cupy.float32)
    kernel((3,), (128,), (x, y, np.float32(2), np.int32(300)))
    np.testing.assert_array_equal(y.get(), 1 + 2 * np.arange(300, dtype=np.float32))
    # A Python int is an int64: for an int parameter its low four bytes are read (as on a GPU, little-endian).
    kernel((3,), (128,), (x, y, np.float32(0), 300))
    # A Python float is a float64: a float parameter reads its low four bytes, garbage as on a GPU.
    garbage = np.frombuffer(np.float64(2.0).tobytes()[:4], np.float32)[0]
    before = y.get()
    kernel((1,), (1,), (x, y, 2.0, np.int32(2)))
    np.testing.assert_array_equal(y.get()[:2], before[:2] + garbage * np.arange(2, dtype=np.float32))
    assert gpu_double.counters()["kernel_launches"] == 3
    with pytest.raises(TypeError, match="Only numpy.ndarrays of size one"):
        kernel((1,), (1,), (x.get(), y, np.float32(1), np.int32(1)))
    with pytest.raises(TypeError, match="incorrect type"):
        kernel(1, (1,), (x, y, np.float32(1), np.int32(1)))
    with pytest.raises(cupy.cuda.driver.CUDADriverError, match="CUDA_ERROR_INVALID_VALUE"):
        kernel((1,), (2048,), (x, y, np.float32(1), np.int32(1)))
    with pytest.raises(cupy.cuda.driver.CUDADriverError, match="ILLEGAL_ADDRESS"):
        kernel((1,), (1,), (12345, y, np.float32(1), np.int32(1)))
    with pytest.raises(TypeError, match="narrower"):
        kernel((1,), (1,), (x, y, np.float32(1), np.int16(1)))
    with pytest.raises(TypeError, match="parameters"):
        kernel((1,), (1,), (x, y, np.float32(1)))
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel((1,), (1,), (x, y, np.float32(1), "3"))
    with pytest.raises(cupy.cuda.compiler.CompileException):
        cupy.RawKernel('extern "C" __global__ void bad() { undefined_thing(); }', "bad")((1,), (1,), ())
    with pytest.raises(cupy.cuda.driver.CUDADriverError, match="NOT_FOUND"):
        cupy.RawKernel("__global__ void mangled() {}", "mangled")((1,), (1,), ())


def _forest_and_sklearn(X, y, trees):
    from sklearn.ensemble import RandomForestClassifier

    from gpuseg.classify import forest as fo

    forest = fo.train(X, y, trees=trees, random_state=0, workers=1)
    clf = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(fo.flatten(clf).threshold, forest.threshold)  # the same trees
    return forest, clf


def test_raw_kernel_runs_the_real_forest_kernel_like_sklearn(gpu_double):
    import cupy

    from gpuseg.classify import forest as fo
    from gpuseg.classify import gpu as forest_gpu
    from gpuseg.classify import layout

    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 6)).astype(np.float32)
    y = (np.digitize(X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(0, 0.5, 1500), [0.0, 1.0]) + 1).astype(np.uint8)
    forest, clf = _forest_and_sklearn(X, y, trees=12)
    test = rng.normal(size=(3000, 6)).astype(np.float32)
    rows = np.concatenate([test] + [_at_thresholds(clf, X, s) for s in (0, 1, -1)])
    got = forest_gpu.predict_proba(cupy.asarray(rows), forest).get()
    np.testing.assert_allclose(got, clf.predict_proba(rows), atol=1e-6, rtol=0)
    # channel-major features read through a transposed view, written into a strided output
    channel_major = cupy.asarray(np.ascontiguousarray(rows.T))
    out = cupy.zeros((forest.n_classes, len(rows)), cupy.float32)
    forest_gpu.predict_proba(channel_major.T, forest, out=out.T)
    np.testing.assert_allclose(out.get().T, clf.predict_proba(rows), atol=1e-6, rtol=0)
    # a forest cut at depth 3: its leaves hold mixed classes, read from the kernel's float32 table
    cut = fo.truncate(forest, 3)
    got = forest_gpu.predict_proba(cupy.asarray(rows), cut).get()
    np.testing.assert_allclose(got, layout.predict_proba_reference(rows, cut), atol=1e-6, rtol=0)
    assert len(layout.pack(cut).leaf_values) > cut.n_trees
    assert gpu_double.counters()["kernel_launches"] == 3


# --------------------------------------------------------------------------- cupyx.scipy.ndimage


def test_cupyx_gaussian_accumulates_float32_within_the_documented_bound(gpu_double):
    import cupy
    import cupyx.scipy.ndimage as cndi

    x = (np.random.default_rng(5).random((24, 25, 26), dtype=np.float32) * 1000).astype(np.float32)
    sigma = (1.0, 2.0, 3.5)
    got = cndi.gaussian_filter(cupy.asarray(x), sigma, mode="reflect", output=cupy.float32).get()
    ref = sndi.gaussian_filter(x, sigma, mode="reflect", output=np.float32)
    taps = [2 * int(4.0 * s + 0.5) + 1 for s in sigma]
    bound = cndi.float32_error_bound(taps, float(np.abs(x).max()))
    diff = np.abs(got.astype(np.float64) - ref)
    assert diff.max() <= bound
    assert diff.max() > 0  # float32 accumulation shows: a double that called scipy would agree exactly
    uniform = cndi.uniform_filter(cupy.asarray(x), 3).get()
    assert np.abs(uniform.astype(np.float64) - sndi.uniform_filter(x, 3)).max() <= cndi.float32_error_bound(
        [3, 3, 3], float(np.abs(x).max()))


def test_cupyx_label_and_argument_checks(gpu_double):
    import cupy
    import cupyx.scipy.ndimage as cndi

    mask = np.random.default_rng(1).random((12, 13, 14)) > 0.6
    structure = cndi.generate_binary_structure(3, 3)
    assert isinstance(structure, cupy.ndarray)
    labels, n = cndi.label(cupy.asarray(mask), structure=structure)
    ref, n_ref = sndi.label(mask, structure=sndi.generate_binary_structure(3, 3))
    assert isinstance(n, int) and n == n_ref and labels.dtype == np.int32
    np.testing.assert_array_equal(labels.get(), ref)
    with pytest.raises(TypeError):
        cndi.label(mask)
    with pytest.raises(TypeError):
        cndi.gaussian_filter(mask.astype(np.float32), 1.0)
    with pytest.raises(RuntimeError, match="boundary mode"):
        cndi.gaussian_filter(cupy.ones((3, 3)), 1.0, mode="bogus")
