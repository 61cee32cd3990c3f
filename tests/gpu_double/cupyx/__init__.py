"""The double's ``cupyx``: only ``cupyx.scipy.ndimage`` is modelled (what gpuseg uses)."""

from __future__ import annotations

from ..cupy._stubs import module_getattr
from . import scipy

__all__ = ["scipy"]
__getattr__ = module_getattr("cupyx")
