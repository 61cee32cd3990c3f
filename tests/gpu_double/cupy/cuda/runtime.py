"""``cupy.cuda.runtime``: device count, memory info and properties of the modelled devices."""

from __future__ import annotations

from typing import Any

from ..._model import MODEL

errorMemoryAllocation = 2
errorInvalidDevice = 101
streamDefault = 0
streamNonBlocking = 1
is_hip = False


class CUDARuntimeError(RuntimeError):
    """A CUDA runtime API error (``status`` is the cudaError_t code)."""

    _names = {errorMemoryAllocation: "cudaErrorMemoryAllocation: out of memory",
              errorInvalidDevice: "cudaErrorInvalidDevice: invalid device ordinal"}

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(self._names.get(status, f"cudaError {status}"))


CUDARuntimeError.__module__ = "cupy_backends.cuda.api.runtime"


def _check_device(device: int) -> int:
    if not 0 <= int(device) < MODEL.spec.count:
        raise CUDARuntimeError(errorInvalidDevice)
    return int(device)


def getDeviceCount() -> int:
    return MODEL.spec.count


def getDevice() -> int:
    return MODEL.current_device()


def setDevice(device: int) -> None:
    MODEL.set_current_device(_check_device(device))


def memGetInfo() -> tuple[int, int]:
    """(free, total) bytes of the current device, as the driver sees them (pool caches count as used)."""
    return MODEL.mem_get_info(MODEL.current_device())


def getDeviceProperties(device: int) -> dict[str, Any]:
    """A subset of cudaDeviceProp, keyed as cupy keys it (``name`` is bytes, as in cupy)."""
    s = MODEL.spec
    _check_device(device)
    return {
        "name": s.name, "totalGlobalMem": s.total_memory, "sharedMemPerBlock": 49152, "regsPerBlock": 65536,
        "warpSize": 32, "maxThreadsPerBlock": 1024, "maxThreadsDim": (1024, 1024, 64),
        "maxGridSize": (2**31 - 1, 65535, 65535), "clockRate": 1980000, "totalConstMem": 65536,
        "major": s.major, "minor": s.minor, "multiProcessorCount": s.multiprocessors,
        "l2CacheSize": s.l2_cache_bytes, "maxThreadsPerMultiProcessor": 2048, "memoryBusWidth": 5120,
        "memoryClockRate": 2619000, "concurrentKernels": 1, "ECCEnabled": 1, "integrated": 0,
        "pciBusID": 0x18 + device, "pciDeviceID": 0, "pciDomainID": 0, "isMultiGpuBoard": 0,
    }


def deviceSynchronize() -> None:
    MODEL.sync("deviceSynchronize")


def runtimeGetVersion() -> int:
    return 12080


def driverGetVersion() -> int:
    return 12080
