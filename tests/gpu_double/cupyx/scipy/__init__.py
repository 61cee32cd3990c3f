"""The double's ``cupyx.scipy``: ``ndimage`` only."""

from __future__ import annotations

from ...cupy._stubs import module_getattr
from . import ndimage

__all__ = ["ndimage"]
__getattr__ = module_getattr("cupyx.scipy")
