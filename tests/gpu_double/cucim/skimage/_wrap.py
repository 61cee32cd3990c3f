"""cuCIM routines computed by scikit-image on device data (device arrays in, device arrays out).

cuCIM mirrors scikit-image's API; gpuseg only imports ``cucim.skimage`` today, so the double
maps any ``cucim.skimage.<module>.<function>`` onto scikit-image's with strict arguments
(a numpy array raises ``TypeError``) and does not model cuCIM's own numerics.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..._device import adopt, host_view


def _arg(x: Any) -> Any:
    from ...cupy import ndarray

    if isinstance(x, ndarray):
        return host_view(x)
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(_arg(v) for v in x)
    return x


def _result(r: Any) -> Any:
    if isinstance(r, np.ndarray):
        return adopt(r.copy())
    if isinstance(r, tuple):
        return tuple(_result(v) for v in r)
    if isinstance(r, list):
        return [_result(v) for v in r]
    return r


def module_getattr(submodule: str):
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        func = getattr(importlib.import_module(f"skimage.{submodule}"), name)
        if not callable(func):
            return func

        def routine(*args: Any, **kwargs: Any) -> Any:
            return _result(func(*[_arg(a) for a in args], **{k: _arg(v) for k, v in kwargs.items()}))

        routine.__name__ = name
        return routine

    return __getattr__
