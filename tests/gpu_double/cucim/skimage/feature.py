"""``cucim.skimage.feature``: scikit-image's feature on device arrays (see ``_wrap``)."""

from __future__ import annotations

from ._wrap import module_getattr

__getattr__ = module_getattr("feature")
