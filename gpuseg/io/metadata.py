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
