"""YAML pipeline configs: read with ``yaml.safe_load`` (plain data only, never code), merged onto defaults."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from .errors import InputError

DEMO_DEFAULTS: dict[str, Any] = {
    "output": "gpuseg-demo",
    "phantom": {"preset": "nmc-2", "shape": [96, 96, 96], "seed": 0, "voxel_size_nm": 397.0},
    # a few of the reference study's protocols: thresholds, both watersheds, one painted-scribble forest; 20 trees
    # (not sized by the data) keep the forests quick and their time foreseeable
    "study": {"protocols": ["S", "gWS", "cWS", "MLX25"], "users": 3, "seed": 0, "variants": ["raw", "filtered"],
              "features": "default", "trees": 20},
    "compute": {"device": "auto", "scheduler": "threads", "workers": None, "chunks": 48},
}


Rule = tuple[Callable[[Any], bool], str]
"""A test a config value must pass, and what it must be (for the message)."""


def _number(v: Any, low: float = 0.0) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > low


def _integer(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _one_or_three(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: test(v) or (isinstance(v, list) and len(v) == 3 and all(map(test, v)))


def _parses(module: str, function: str) -> Callable[[Any], bool]:
    """Whether ``module.function`` accepts a value (raises no :class:`GpusegError`): the demo's protocol names and
    features are checked by the parsers that will read them, imported only when a config is checked."""
    def test(value: Any) -> bool:
        from importlib import import_module

        from .errors import GpusegError

        if not isinstance(value, (str, list)) or not value:
            return False
        try:
            getattr(import_module(module), function)(value)
        except (GpusegError, TypeError, AttributeError):
            return False
        return True
    return test


def _preset(value: Any) -> bool:
    from .phantom import PRESETS

    return isinstance(value, str) and value in PRESETS


DEMO_RULES: dict[str, Rule] = {
    "output": (lambda v: isinstance(v, str) and bool(v.strip()), "a folder path"),
    "phantom.preset": (_preset, "a phantom preset: nmc-1, nmc-2, gra-1, gra-2, nex-v or nex-u (docs/phantoms.md)"),
    "phantom.shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(_integer(n, 16) for n in v),
                      "three integers >= 16 (z y x voxels)"),
    "phantom.seed": (lambda v: _integer(v, 0), "an integer >= 0"),
    "phantom.voxel_size_nm": (_number, "a number > 0 (nm)"),
    "study.protocols": (_parses("gpuseg.study.protocols", "parse_protocols"),
                        "protocol names, a list or one comma-separated text: S (= S1,S2,S3), S1, S2, S3, gWS, cWS, "
                        "ML1, ML2, ML3, MLX<percent> (see docs/study.md)"),
    "study.users": (lambda v: _integer(v, 2) and v <= 100, "an integer from 2 to 100 (simulated users)"),
    "study.seed": (lambda v: _integer(v, 0) and v < 2**32, "an integer from 0 to 2**32 - 1"),
    "study.variants": (lambda v: isinstance(v, list) and bool(v) and all(x in ("raw", "filtered") for x in v),
                       "a list of raw, filtered"),
    "study.features": (lambda v: isinstance(v, str) and _parses("gpuseg.featurespec", "parse_features")(v),
                       "a feature set (default, ilastik-full, NAME:SCALE,...; see docs/features.md)"),
    "study.trees": (lambda v: v is None or (_integer(v, 1) and v <= 5000),
                    "null (sized by the data) or an integer from 1 to 5000"),
    "compute.device": (lambda v: v in ("auto", "cpu", "gpu"), "auto, cpu or gpu"),
    "compute.scheduler": (lambda v: isinstance(v, str) and bool(v), "a scheduler name or address"),
    "compute.workers": (lambda v: v is None or _integer(v, 1), "null (all cores) or an integer >= 1"),
    "compute.chunks": (_one_or_three(lambda n: _integer(n, 1)), "an integer >= 1 or three (z y x)"),
}


def check(cfg: Mapping[str, Any], rules: Mapping[str, Rule], where: str = "config") -> None:
    """Raise :class:`InputError` naming the first key of ``cfg`` whose value breaks its rule.

    Examples
    --------
    >>> check({"filter": {"sigma": "one"}}, {"filter.sigma": (lambda v: isinstance(v, float), "a number")})
    Traceback (most recent call last):
    ...
    gpuseg.errors.InputError: config: key 'filter.sigma' is 'one'; it must be a number
    """
    for key, (test, wanted) in rules.items():
        value: Any = cfg
        for part in key.split("."):
            value = value[part]
        if not test(value):
            raise InputError(f"{where}: key {key!r} is {value!r}; it must be {wanted}")


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


def load(path: str | os.PathLike | None, defaults: Mapping[str, Any],
         rules: Mapping[str, Rule] | None = None) -> dict[str, Any]:
    """Read the YAML file at ``path`` (None: the defaults alone), merge it onto ``defaults``, check ``rules``.

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
    merged = merge(defaults, given)
    check(merged, rules or {}, str(path))
    return merged
