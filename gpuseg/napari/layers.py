"""napari layers as gpuseg reads them: full-resolution data, placement, the source to read, names, strokes.

Qt-free helpers of :mod:`gpuseg.napari.widget`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .reader import PATH_KEY


def level0(layer: Any) -> Any:
    """A layer's full-resolution data (level 0 of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def placed_like(image: Any) -> dict[str, Any]:
    """Scale, position, units and axis names of ``image``, for a layer drawn over it."""
    return {"scale": image.scale, "translate": image.translate, "units": image.units, "axis_labels": image.axis_labels}


def ndim(layer: Any) -> int:
    return len(level0(layer).shape)


def source_of(image: Any) -> Any:
    """What training and prediction read: the image's path when it came from disk (out of core), else its array."""
    path = image.metadata.get(PATH_KEY)  # set by the gpuseg reader; another reader's source path may mean anything
    return os.fspath(path) if path else np.asarray(level0(image))


def default_output(image: Any) -> str:
    """``DIR/NAME-forest.zarr`` beside the image's store, else in the working folder."""
    path = image.metadata.get(PATH_KEY)
    if path:
        store = Path(path.split(".zarr")[0] + ".zarr")
        return os.fspath(store.with_name(f"{store.stem}-{image.name}-forest.zarr"))
    return os.fspath(Path.cwd() / f"{image.name}-forest.zarr")


def free_name(viewer: Any, base: str) -> str:
    name, i = base, 1
    while name in viewer.layers:
        i += 1
        name = f"{base} [{i}]"
    return name


def stroke_slices(item: Any) -> set[int]:
    """z slices a napari paint event's history item reached (best effort: napari's atoms are not public)."""
    found: set[int] = set()
    for atom in item or []:
        key = getattr(atom, "slice_key", None)
        if key is not None and isinstance(key[0], slice):
            found.update(range(key[0].start or 0, key[0].stop or 0))
        elif isinstance(atom, tuple) and atom and isinstance(atom[0], tuple) and len(atom[0]) == 3:
            found.update(np.unique(np.asarray(atom[0][0])).tolist())
    return found
