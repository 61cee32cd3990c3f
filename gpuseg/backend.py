"""One switch between the CPU (numpy, scipy) and the GPU (cupy, cupyx).

Array code never branches on the device itself: it asks :func:`for_array` for the
modules that match the array it was given, and calls ``xp`` and ``ndi`` exactly as it
would call numpy and ``scipy.ndimage``.

cuCIM is not used: every GPU kernel gpuseg needs is in ``cupyx.scipy.ndimage`` (Gaussian
and derivative filters, Sobel, labelling) or is its own (forest inference); the one
scikit-image algorithm it runs, the watershed, has no cuCIM version. Importing cuCIM
would only add a large dependency and start-up time (``docs/cluster.md``).

Examples
--------
>>> import numpy as np
>>> be = resolve("cpu")
>>> be.name, be.xp.__name__, be.ndi.__name__
('cpu', 'numpy', 'scipy.ndimage')
>>> for_array(np.zeros(3)).name
'cpu'
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import types
from typing import Any, Literal

import numpy as np

from .errors import DeviceError

log = logging.getLogger("gpuseg")

Device = Literal["auto", "cpu", "gpu"]
DEVICES = ("auto", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class Backend:
    """The array modules of one device.

    Attributes
    ----------
    name : {"cpu", "gpu"}
    xp : module
        ``numpy`` or ``cupy``.
    ndi : module
        ``scipy.ndimage`` or ``cupyx.scipy.ndimage``.
    """

    name: str
    xp: types.ModuleType
    ndi: types.ModuleType

    def asarray(self, array: Any) -> Any:
        """Move ``array`` onto this backend's device (no copy if already there)."""
        if self.name == "cpu":
            return to_host(array)
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        """Return ``array`` as a numpy array on the host."""
        return to_host(array)


@functools.cache
def _cpu() -> Backend:
    import scipy.ndimage

    return Backend("cpu", np, scipy.ndimage)


PROBE_TIMEOUT_S = 60.0
"""How long the GPU probe may take (``GPUSEG_GPU_PROBE_TIMEOUT`` overrides): a first CUDA context takes
seconds; a hung driver or a device held in exclusive mode by another process would take forever."""


@functools.cache
def gpu_status() -> tuple[bool, str]:
    """Whether a CUDA device really works, and why not if it does not, within :data:`PROBE_TIMEOUT_S`.

    Importing cupy is not enough: with no usable driver cupy imports fine and
    fails on first use (``cudaErrorInsufficientDriver``), so a tiny kernel is run. It runs in a
    daemon thread, so a probe that never returns counts as no GPU instead of hanging the run.
    """
    timeout = float(os.environ.get("GPUSEG_GPU_PROBE_TIMEOUT", PROBE_TIMEOUT_S))
    answer: list[tuple[bool, str]] = []
    probe = threading.Thread(target=lambda: answer.append(_probe_gpu()), name="gpuseg-gpu-probe", daemon=True)
    probe.start()
    probe.join(timeout)
    if not answer:
        return False, (f"the GPU did not answer within {timeout:g} s (a hung driver, or a device another process "
                       "holds exclusively); set GPUSEG_GPU_PROBE_TIMEOUT to wait longer")
    return answer[0]


def _probe_gpu() -> tuple[bool, str]:
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"cupy is not importable ({type(exc).__name__}: {exc})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "no CUDA device found"
        int((cupy.arange(4) * 2).sum())
    except Exception as exc:
        return False, f"CUDA is not usable ({type(exc).__name__}: {exc})"
    return True, ""


@functools.cache
def _gpu() -> Backend:
    import cupy
    import cupyx.scipy.ndimage

    return Backend("gpu", cupy, cupyx.scipy.ndimage)


def resolve(device: str = "auto") -> Backend:
    """Return the backend for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}
        ``auto`` takes the GPU only when a CUDA device actually works and
        otherwise falls back to the CPU with one log line.

    Returns
    -------
    Backend

    Raises
    ------
    DeviceError
        ``gpu`` was asked for and no GPU is usable, or ``device`` is unknown.
    """
    if device == "cpu":
        return _cpu()
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: use one of auto, cpu, gpu")
    ok, why = gpu_status()
    if ok:
        return _gpu()
    if device == "gpu":
        raise DeviceError(f"--device gpu was asked for but no GPU is usable: {why}; use --device cpu")
    log_fallback(why)
    return _cpu()


@functools.cache
def log_fallback(why: str) -> None:
    """Say once per reason that the work runs on the CPU."""
    log.info("no usable GPU (%s); computing on the CPU", why)


def for_array(array: Any) -> Backend:
    """Return the backend whose device holds ``array`` (cupy arrays: GPU; anything else: CPU)."""
    if type(array).__module__.split(".")[0] == "cupy":
        return _gpu()
    return _cpu()


def to_host(array: Any) -> np.ndarray:
    """Return ``array`` as a numpy array (copying from the GPU if needed)."""
    if type(array).__module__.split(".")[0] == "cupy":
        host: np.ndarray = array.get()
        return host
    return np.asarray(array)


def count(values: Any, n: int) -> Any:
    """Exact int64 counts of each of ``0 … n-1`` among ``values`` (integers known to lie in that range).

    On the GPU without a synchronisation: ``cupy.bincount`` checks the sign and the maximum of
    its input on the host, two synchronisations per call, which stall the stream in the
    counting loops of histograms and comparisons; an atomic add into ``n`` bins does not.

    Examples
    --------
    >>> count(np.array([0, 2, 2, 1]), 4).tolist()
    [1, 1, 2, 0]
    """
    if for_array(values).name == "cpu":
        return np.bincount(np.asarray(values).ravel(), minlength=n).astype(np.int64, copy=False)
    import cupy

    counts = cupy.zeros(n, cupy.uint64)  # atomicAdd has a native 64-bit unsigned form
    cupy.add.at(counts, values.ravel(), cupy.uint64(1))
    return counts.astype(cupy.int64)


def scipy_precision(array: Any) -> Any:
    """``array`` as the input from which this device's ``ndimage`` filters accumulate as scipy's do.

    scipy sums every correlation in float64 and rounds each axis's result to the output
    dtype; cupyx sums in ``promote_types(input, float32)``, i.e. float32 for float32 input.
    Given float64 input, cupyx sums in float64 too, so CPU and GPU round the same sums to
    float32 (a resumed run may continue on the other device). On the CPU: unchanged.
    """
    if for_array(array).name == "cpu":
        return array
    return array.astype("float64", copy=False)


def free_device_memory() -> int:
    """Bytes the current GPU can still give this process: the driver's free memory plus cupy's cached pool blocks."""
    import cupy

    free, _total = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU allocation failure (cupy's ``OutOfMemoryError``, or a CUDA out-of-memory error)."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def release_cached_memory() -> None:
    """Give the blocks cached in cupy's memory pools back to the driver (after an out-of-memory error)."""
    import cupy

    cupy.get_default_memory_pool().free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()


def device_identity() -> str:
    """Which GPU this process uses (its PCI bus id), to tell processes that share one."""
    import cupy

    device = cupy.cuda.Device()
    try:
        return str(device.pci_bus_id)
    except Exception:  # older cupy or a test double without it
        return str(device.id)
