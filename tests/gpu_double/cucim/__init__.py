"""The double's ``cucim``: only ``cucim.skimage`` (gpuseg imports it and uses none of it today)."""

from __future__ import annotations

__version__ = "24.8.0+gpu_double"
