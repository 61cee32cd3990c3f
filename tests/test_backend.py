import sys
import types

import numpy as np
import pytest

from gpuseg import backend
from gpuseg.errors import DeviceError


@pytest.fixture
def fresh_status():
    backend.gpu_status.cache_clear()
    backend.log_fallback.cache_clear()
    yield
    backend.gpu_status.cache_clear()
    backend.log_fallback.cache_clear()


def _fake_cupy_without_driver():
    """A cupy that imports but fails on first use, like cupy on a machine with no usable driver."""

    class CUDARuntimeError(RuntimeError):
        pass

    def get_device_count():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    return cupy


def test_cpu_backend_modules():
    be = backend.resolve("cpu")
    assert be.name == "cpu" and be.xp is np
    import scipy.ndimage

    assert be.ndi is scipy.ndimage
    x = np.arange(5)
    assert backend.for_array(x) is be and backend.to_host(be.asarray(x)) is not None


def test_auto_falls_back_when_driver_is_insufficient(monkeypatch, fresh_status, caplog):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy_without_driver())
    with caplog.at_level("INFO", logger="gpuseg"):
        be = backend.resolve("auto")
    assert be.name == "cpu"
    lines = [r.getMessage() for r in caplog.records if "no usable GPU" in r.getMessage()]
    assert len(lines) == 1 and "cudaErrorInsufficientDriver" in lines[0]
    backend.resolve("auto")  # a second call logs nothing more
    assert len([r for r in caplog.records if "no usable GPU" in r.getMessage()]) == 1


def test_a_gpu_probe_that_hangs_ends_in_bounded_time(monkeypatch, fresh_status):
    """A driver that never answers is no GPU after GPUSEG_GPU_PROBE_TIMEOUT: auto falls back, gpu is one line."""
    import threading
    import time

    release = threading.Event()
    cupy = _fake_cupy_without_driver()
    cupy.cuda.runtime.getDeviceCount = lambda: release.wait(30) and 1
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setenv("GPUSEG_GPU_PROBE_TIMEOUT", "0.3")
    start = time.monotonic()
    try:
        assert backend.resolve("auto").name == "cpu"
        with pytest.raises(DeviceError, match=r"did not answer within 0.3 s.*GPUSEG_GPU_PROBE_TIMEOUT.*--device cpu"):
            backend.resolve("gpu")
    finally:
        release.set()  # let the probe thread end
    assert time.monotonic() - start < 5


def test_gpu_requested_without_gpu_is_a_clear_error(monkeypatch, fresh_status):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy_without_driver())
    with pytest.raises(DeviceError, match="no GPU is usable.*--device cpu"):
        backend.resolve("gpu")


def test_unknown_device():
    with pytest.raises(DeviceError, match="unknown device"):
        backend.resolve("tpu")


@pytest.mark.gpu
def test_gpu_backend_roundtrip():
    be = backend.resolve("gpu")
    x = np.arange(10, dtype=np.float32)
    d = be.asarray(x)
    assert backend.for_array(d).name == "gpu"
    np.testing.assert_array_equal(backend.to_host(d * 2), x * 2)
