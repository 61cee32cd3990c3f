"""The double's ``cucim.skimage``: scikit-image on device arrays (see ``_wrap``)."""

from __future__ import annotations

from . import (
    color,
    exposure,
    feature,
    filters,
    measure,
    metrics,
    morphology,
    restoration,
    segmentation,
    transform,
    util,
)

__all__ = ["color", "exposure", "feature", "filters", "measure", "metrics", "morphology", "restoration", "segmentation", "transform", "util"]
