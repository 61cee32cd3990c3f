"""A study's YAML config: the keys ``gpuseg study --config`` reads, their defaults and their checks.

Example config (every key optional; the command line overrides it)::

    tomogram: scan.zarr/raw
    outdir: study-nmc1
    truth: scan.zarr/truth
    protocols: [S, gWS, cWS, ML1, ML2, ML3, MLX10, MLX25, MLX35, MLX50, MLX65]
    users: 3
    seed: 0
    variants: [raw, filtered]
    features: default
    trees: null            # grown and sized by the data
    figures: true
    compute: {device: auto, scheduler: threads, workers: null, chunks: null}

Examples
--------
>>> cfg = load(None)
>>> cfg["users"], cfg["variants"]
(3, ['raw', 'filtered'])
"""

from __future__ import annotations

import os
from typing import Any

from .. import config
from .protocols import VARIANTS
from .run import DEFAULT_PROTOCOLS

DEFAULTS: dict[str, Any] = {
    "tomogram": None,
    "outdir": None,
    "truth": None,
    "protocols": DEFAULT_PROTOCOLS,
    "users": 3,
    "seed": 0,
    "variants": list(VARIANTS),
    "features": "default",
    "trees": None,
    "figures": True,
    "compute": {"device": "auto", "scheduler": "threads", "workers": None, "chunks": None},
}


def _path(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(v.strip()))


def _int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


RULES: dict[str, config.Rule] = {
    "tomogram": (_path, "a path"),
    "outdir": (_path, "a folder path"),
    "truth": (_path, "a path or null"),
    "protocols": (lambda v: (isinstance(v, str) and bool(v.strip())) or (isinstance(v, list) and bool(v)
                                                                         and all(isinstance(p, str) for p in v)),
                  "protocol names: a list, or one comma-separated text"),
    "users": (lambda v: _int(v, 2), "an integer >= 2"),
    "seed": (lambda v: _int(v, 0), "an integer >= 0"),
    "variants": (lambda v: isinstance(v, list) and bool(v) and all(x in VARIANTS for x in v), "a list of raw, filtered"),
    "features": (lambda v: isinstance(v, str) and bool(v), "a feature set (default, ilastik-full, NAME:SCALE,...)"),
    "trees": (lambda v: v is None or _int(v, 1), "null (sized by the data) or an integer >= 1"),
    "figures": (lambda v: isinstance(v, bool), "true or false"),
    "compute.device": (lambda v: v in ("auto", "cpu", "gpu"), "auto, cpu or gpu"),
    "compute.scheduler": (lambda v: isinstance(v, str) and bool(v), "a scheduler name or address"),
    "compute.workers": (lambda v: v is None or _int(v, 1), "null (all cores) or an integer >= 1"),
    "compute.chunks": (lambda v: v is None or _int(v, 1) or (isinstance(v, list) and len(v) == 3
                                                              and all(_int(n, 1) for n in v)),
                       "null, an integer >= 1 or three (z y x)"),
}


def load(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The config at ``path`` (None: the defaults) merged onto :data:`DEFAULTS` and checked.

    Raises
    ------
    InputError
        No such file, not YAML, an unknown key or a value out of its range (one line naming the key).
    """
    return config.load(path, DEFAULTS, RULES)
