"""``cucim.skimage.restoration``: scikit-image's restoration on device arrays (see ``_wrap``)."""

from __future__ import annotations

from ._wrap import module_getattr

__getattr__ = module_getattr("restoration")
