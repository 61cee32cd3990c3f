"""Helpers for the double's own device-side code (cupyx, cuCIM): data access without counting a transfer.

A cupyx or cuCIM routine runs on the device, so reading its input's data is no host transfer;
these helpers give that code the numpy view behind a device array, and make results into new
device allocations. Code under test never gets here: it only sees the public modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def host_view(x: Any) -> np.ndarray:
    """The numpy view behind a device array (no transfer: for modelled device code only)."""
    return x._a


def new_device(shape: Any, dtype: Any) -> Any:
    from .cupy import _core

    return _core.empty(shape, dtype)


def device_array(host: np.ndarray) -> Any:
    """A host array copied to the device (counted as a host-to-device transfer)."""
    from .cupy import _core

    return _core.from_host(np.asarray(host))


def adopt(result: np.ndarray) -> Any:
    """A result computed on the device's data: a new device allocation holding it."""
    from .cupy import _core

    return _core.wrap_result(result)
