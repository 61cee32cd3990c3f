"""The metadata every gpuseg output carries: voxel size, source, command and version."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

VOXEL_SIZE_KEY = "voxel_size_nm"


def provenance(source: str | os.PathLike | None = None, **extra: Any) -> dict[str, Any]:
    """Attributes naming what wrote an output: the command line, the source and gpuseg's version."""
    from .. import __version__

    attrs: dict[str, Any] = {"gpuseg_version": __version__, "command": " ".join(sys.argv)}
    if source is not None:
        attrs["source"] = str(source)
    attrs.update(extra)
    return attrs


def voxel_size(attrs: Mapping[str, Any]) -> list[float] | None:
    """The voxel size (z, y, x) in nm stored in ``attrs``, or None."""
    value = attrs.get(VOXEL_SIZE_KEY)
    return None if value is None else [float(v) for v in value]


def normalize_voxel_size(value: float | Sequence[float] | None) -> list[float] | None:
    """One number or three numbers (z, y, x) in nm → a list of three, or None."""
    from ..errors import ParameterError

    if value is None:
        return None
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != 3 or min(values) <= 0:
        raise ParameterError(f"voxel size {value!r} must be one or three positive numbers (nm)")
    return values


def inherit(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes an output takes over from its input (the voxel size)."""
    size = voxel_size(attrs)
    return {VOXEL_SIZE_KEY: size} if size is not None else {}


PHASE_NAMES = {2: {1: "active", 2: "non-active"}, 3: {1: "active", 2: "carbon-binder", 3: "pore"}}
"""The study's label convention: two phases (active / non-active) or three (active / carbon-binder / pore)."""


def stored_label_names(attrs: Mapping[str, Any]) -> dict[int, str]:
    """Names of label values stored in ``attrs`` (``phase_names`` of a segmentation, or ``classes`` +
    ``class_names`` of a prediction); {} when none or unreadable."""
    names: dict[int, str] = {}
    try:
        if isinstance(attrs.get("phase_names"), Mapping):
            names.update({int(k): str(v) for k, v in attrs["phase_names"].items()})
        if attrs.get("classes") is not None and attrs.get("class_names") is not None:
            names.update({int(k): str(v) for k, v in zip(attrs["classes"], attrs["class_names"])})
    except (TypeError, ValueError):
        return {}
    return names


def label_names(values: Sequence[int], attrs: Mapping[str, Any] | None = None) -> dict[int, str]:
    """A name for each non-zero label value: stored names first, else the convention of :data:`PHASE_NAMES`.

    Examples
    --------
    >>> label_names([1, 2]), label_names([1, 2, 3])[2], label_names([1, 2], {"classes": [1, 2], "class_names": ["a", "b"]})
    ({1: 'active', 2: 'non-active'}, 'carbon-binder', {1: 'a', 2: 'b'})
    """
    stored = stored_label_names(attrs or {})
    values = [int(v) for v in values if int(v) != 0]
    default = PHASE_NAMES[3] if values and max(values) >= 3 else PHASE_NAMES[2]
    return {v: stored.get(v, default.get(v, f"class {v}")) for v in values}
