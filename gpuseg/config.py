"""YAML pipeline configs: read with ``yaml.safe_load`` (plain data only, never code), merged onto defaults."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import InputError

DEMO_DEFAULTS: dict[str, Any] = {
    "output": "gpuseg-demo",
    "phantom": {"shape": [96, 96, 96], "seed": 0, "voxel_size_nm": 397.0},
    "filter": {"sigma": 1.0, "truncate": 4.0},
    "segment": {"method": "otsu"},
    "compute": {"device": "auto", "scheduler": "threads", "workers": None, "chunks": 48},
}


def merge(defaults: Mapping[str, Any], given: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``given`` laid over ``defaults``; a key ``defaults`` lacks is an error (a typo, usually)."""
    out = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        name = f"{where}{key}"
        if key not in defaults:
            raise InputError(f"config key {name!r} is unknown; known here: {', '.join(defaults)}")
        if isinstance(defaults[key], Mapping):
            if not isinstance(value, Mapping):
                raise InputError(f"config key {name!r} must be a mapping")
            out[key] = merge(defaults[key], value, f"{name}.")
        else:
            out[key] = value
    return out


def load(path: str | os.PathLike | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Read the YAML file at ``path`` (None: the defaults alone) and merge it onto ``defaults``.

    Examples
    --------
    >>> load(None, {"a": 1})
    {'a': 1}
    """
    if path is None:
        return copy.deepcopy(dict(defaults))
    try:
        with open(path) as f:
            given = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file; check the path") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if not isinstance(given, Mapping):
        raise InputError(f"{path}: a config must be a YAML mapping of keys to values")
    return merge(defaults, given)
