"""``cupy.testing``: not modelled by the double (gpuseg does not use it); any attribute raises NotImplementedError."""

from __future__ import annotations

from ._stubs import module_getattr

__getattr__ = module_getattr("cupy.testing")
