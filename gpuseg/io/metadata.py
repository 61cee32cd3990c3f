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


NAMING_KEYS = ("classes", "class_names", "channel_names", "features", "phase_names", "phases")
"""What a copy keeps besides the voxel size: what its channels or labels are (so a copy of a segmentation is
a label image again, with its names and a picked, not averaged, pyramid)."""


def inherit(attrs: Mapping[str, Any], *, names: bool = False) -> dict[str, Any]:
    """The attributes an output takes over from its input: the voxel size and, for a copy of it (``names``),
    what its labels or channels are (:data:`NAMING_KEYS`).

    Examples
    --------
    >>> attrs = {"voxel_size_nm": [400, 400, 400], "phase_names": {"1": "active"}, "command": "gpuseg phantom"}
    >>> inherit(attrs), inherit(attrs, names=True)["phase_names"]
    ({'voxel_size_nm': [400.0, 400.0, 400.0]}, {'1': 'active'})
    """
    size = voxel_size(attrs)
    kept = {k: attrs[k] for k in NAMING_KEYS if names and k in attrs}
    return {**kept, **({VOXEL_SIZE_KEY: size} if size is not None else {})}


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


LABEL_COLOURS = {1: (227, 89, 33, 255), 2: (51, 115, 217, 255), 3: (77, 191, 77, 255), 4: (148, 103, 189, 255),
                 5: (140, 86, 75, 255), 6: (227, 119, 194, 255), 7: (188, 189, 34, 255), 8: (23, 190, 207, 255)}
"""Opaque RGBA (0–255) of label values in a label image, the hues of :data:`gpuseg.plots.PHASE_COLOURS`;
further values cycle through them. 0 (not assigned) is transparent."""

DIFF_NAMES = {1: "only A has the phase", -1: "only B has the phase"}
"""Values of a difference volume (``gpuseg compare``'s int8 −1/0/+1)."""

_WIDE_INTEGERS = ("int32", "int64", "uint32", "uint64")  # never grey values from a CT: label volumes (a phantom's truth)


def is_label_image(dtype: Any, ndim: int, attrs: Mapping[str, Any]) -> bool:
    """Whether a volume holds labels (downsampled by picking, shown with class colours) rather than grey values.

    A 3-D integer volume that names its labels (a segmentation or prediction), counts its ``phases``, is a
    difference of one ``phase``, or has a dtype no scanner writes (int32/int64: a phantom's truth).

    Examples
    --------
    >>> is_label_image("uint8", 3, {"phase_names": {"1": "active"}}), is_label_image("uint8", 3, {})
    (True, False)
    >>> is_label_image("float32", 3, {"phases": 2}), is_label_image("uint8", 4, {"classes": [1, 2]})
    (False, False)
    """
    import numpy as np

    kind = np.dtype(dtype)
    if ndim != 3 or kind.kind not in "iu":
        return False
    return bool(stored_label_names(attrs)) or "phases" in attrs or "phase" in attrs or kind.name in _WIDE_INTEGERS


def label_table(attrs: Mapping[str, Any]) -> dict[int, str]:
    """Every non-zero label value an image's attributes promise, with its name (the study's convention
    where they name none: three phases unless ``phases`` says two).

    Examples
    --------
    >>> label_table({"phases": 2}), label_table({"phase": 1})[-1]
    ({1: 'active', 2: 'non-active'}, 'only B has the phase')
    """
    if "phase" in attrs and not stored_label_names(attrs):
        return dict(sorted(DIFF_NAMES.items()))
    stored = stored_label_names(attrs)
    if stored:
        values: Sequence[int] = sorted(v for v in stored if v != 0)
    else:
        try:
            phases = int(attrs.get("phases", 3))
        except (TypeError, ValueError):
            phases = 3
        values = list(range(1, max(phases, 1) + 1))
    return label_names(values, attrs)


def label_colour(value: int) -> tuple[int, int, int, int]:
    """RGBA (0–255) of a label value: :data:`LABEL_COLOURS`, transparent for 0, red/blue for a difference's −1."""
    if value == 0:
        return (0, 0, 0, 0)
    if value < 0:
        return (26, 64, 217, 255)
    cycle = sorted(LABEL_COLOURS)
    return LABEL_COLOURS[cycle[(value - 1) % len(cycle)]]
