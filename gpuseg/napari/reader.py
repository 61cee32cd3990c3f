"""napari's reader of gpuseg outputs and OME-Zarr images: lazy, multiscale, in nanometres, labels in their colours.

``napari --plugin gpuseg out.zarr`` (or File ▸ Open, choosing gpuseg) opens every image at the path: a single image
(``seg.zarr``, ``v.zarr/raw``), or each image in a group (a phantom's ``raw`` and ``truth``, a prediction store's
labels, probabilities and uncertainty). Each level of an image's pyramid becomes one level of a multiscale layer,
read chunk by chunk as napari shows it (dask arrays over the zarr arrays: nothing is read whole). The scale is the
voxel size in nm from the image's ``coordinateTransformations`` (else level 0's ``voxel_size_nm``). Label images
(``image-label`` in the metadata, or a plain array :func:`gpuseg.io.metadata.is_label_image` calls labels) open as
Labels layers coloured and named as the metadata says; a channel image (probabilities, features) opens as one
layer per channel. Plain zarr arrays (``GPUSEG_OME_ZARR=0``) and other tools' NGFF 0.4/0.5 images open too.

:func:`layer_data` is the reader without napari (testable anywhere); :func:`read` adds napari's notifications:
a path holding no image (a zarr of something else), or a damaged one, is one message in napari's notification
area, and nothing opens.

Examples
--------
>>> import os, tempfile
>>> from gpuseg import phantom
>>> path = os.path.join(tempfile.mkdtemp(), "v.zarr")
>>> _ = phantom.generate(path, preset="nmc-1", shape=(16, 16, 16), seed=0)
>>> [(meta["name"], kind, meta["multiscale"]) for data, meta, kind in layer_data(path)]
[('raw', 'image', False), ('truth', 'labels', False)]
>>> layer_data(path)[1][1]["features"]["class"]
['not assigned', 'active', 'carbon-binder', 'pore']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import GpusegError, InputError
from ..io import metadata, ome
from ..io.paths import parse

LayerData = tuple[Any, dict[str, Any], str]
PATH_KEY = "gpuseg_path"
"""Layer metadata: the image's path, which the widget's training and prediction read out of core."""


def napari_get_reader(path: str | Sequence[str]) -> Any:
    """The reader for ``path`` when it names a zarr store or a node in one (napari's ``get_reader`` contract)."""
    if not isinstance(path, (str, os.PathLike)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        kind = parse(path).kind
    except GpusegError:
        return None
    return read if kind == "zarr" else None


def read(path: str | Sequence[str]) -> list[Any]:
    """napari's reader: every image at ``path`` as layer data; ``[(None,)]`` (nothing to open) after one message."""
    from napari.utils.notifications import show_warning

    where = os.fspath(path if isinstance(path, (str, os.PathLike)) else path[0])
    try:
        layers = layer_data(where)
    except GpusegError as exc:
        show_warning(str(exc))
        return [(None,)]
    if not layers:
        show_warning(f"{where}: holds no 3-D image gpuseg can open (an OME-Zarr image, or a zarr array of z, y, x); "
                     "open a tomogram, a segmentation or a group of them")
        return [(None,)]
    return layers


def layer_data(path: str | os.PathLike[str]) -> list[LayerData]:
    """``(data, kwargs, layer type)`` for every image at ``path``: the image itself, or the images in a group.

    Raises
    ------
    InputError
        Not a zarr store, or a damaged image.
    """
    loc = parse(path)
    if loc.kind != "zarr" or not Path(loc.container).exists():
        raise InputError(f"{path}: no such zarr store; check the path")
    try:
        found = zarr.open(store=loc.container, path=loc.inner, mode="r")
    except Exception as exc:
        raise InputError(f"{path}: cannot open as zarr ({exc}); check the path") from exc
    where = os.fspath(path).rstrip("/")
    if isinstance(found, zarr.Array) or ome.is_image(found.attrs.asdict()):
        return _layers(found, where)
    out: list[LayerData] = []
    for name, child in sorted(found.members(), key=lambda item: item[0]):
        if name.startswith("."):  # gpuseg's partial outputs, locks and journals
            continue
        if isinstance(child, zarr.Array) or ome.is_image(child.attrs.asdict()):
            out.extend(_layers(child, f"{where}/{name}"))
    return out


def _levels(node: zarr.Array | zarr.Group, where: str) -> tuple[list[zarr.Array], Mapping[str, Any]]:
    """The arrays of an image, full resolution first, and the NGFF attributes of the group holding them."""
    if isinstance(node, zarr.Array):
        return [node], {}
    attrs = node.attrs.asdict()
    if not ome.level_paths(attrs) and "bioformats2raw.layout" in ome.ngff(attrs) and "0" in node:
        series = node["0"]
        if isinstance(series, zarr.Group):
            return _levels(series, f"{where}/0")
    count = len(ome.level_paths(attrs))
    return [ome.resolve(node, k, where) for k in range(count)], attrs


def _layers(node: zarr.Array | zarr.Group, where: str) -> list[LayerData]:
    """The layer data of one image (several for a channel image), or none when it is not 3-D or 4-D."""
    import dask.array as da

    arrays, attrs = _levels(node, where)
    base = arrays[0]
    if base.ndim not in (3, 4):
        return []
    base_attrs: dict[str, Any] = dict(base.attrs.asdict())
    scales = ome.level_scales(attrs) if attrs else []
    voxel = scales[0] if scales and scales[0] is not None else metadata.voxel_size(base_attrs)
    levels = [da.from_array(a, chunks=a.chunks, name=False, inline_array=True) for a in arrays]
    name = Path(where).name.removesuffix(".zarr") or "image"
    kwargs: dict[str, Any] = {
        "name": name, "multiscale": len(levels) > 1, "axis_labels": ("z", "y", "x"),
        "metadata": {PATH_KEY: where, metadata.VOXEL_SIZE_KEY: voxel},
    }
    if voxel is not None:
        kwargs.update(scale=tuple(voxel), units=("nm",) * 3)
    data: Any = levels if len(levels) > 1 else levels[0]
    ngff = ome.ngff(attrs)
    if base.ndim == 3 and ("image-label" in ngff or (not attrs and metadata.is_label_image(base.dtype, 3, base_attrs))):
        table = _label_table(ngff.get("image-label"), base_attrs)
        values = sorted(table)
        colormap: dict[int | None, tuple[float, ...]] = {v: _rgba(table[v][1]) for v in values}
        colormap[None] = (0.0, 0.0, 0.0, 0.0)  # napari's default: any value not named is transparent
        kwargs.update(colormap=colormap, features={"index": values, "class": [table[v][0] for v in values]})
        return [(data, kwargs, "labels")]
    if base.ndim == 3:
        return [(data, kwargs, "image")]
    names = _channel_names(base_attrs, base.shape[0])
    classes = [int(c) for c in base_attrs.get("classes") or []]
    limits = (0.0, 255.0) if base.dtype == np.uint8 else (0.0, 1.0) if base.dtype.kind == "f" and classes else None
    colours = [_rgba(metadata.label_colour(c)) for c in classes] if len(classes) == base.shape[0] else None
    kwargs.update(channel_axis=0, name=[f"{name} {n}" for n in names], blending="additive", visible=True)
    if limits is not None:
        kwargs["contrast_limits"] = [limits] * base.shape[0]
    if colours is not None:  # each class's probability in its class's colour, from transparent
        kwargs["colormap"] = [{"colors": [[0.0, 0.0, 0.0, 0.0], list(c)], "name": f"gpuseg {n}"}
                              for c, n in zip(colours, names)]
    return [(data, kwargs, "image")]


def _label_table(image_label: Any, attrs: Mapping[str, Any]) -> dict[int, tuple[str, tuple[int, ...]]]:
    """Value → (name, RGBA 0–255): the image's ``image-label`` colours and classes, else gpuseg's convention."""
    table: dict[int, tuple[str, tuple[int, ...]]] = {}
    if isinstance(image_label, Mapping):
        image_label = dict(image_label)  # JSON of any shape: each entry is checked below
        names = {int(p["label-value"]): str(p.get("class", p["label-value"])) for p in image_label.get("properties") or []
                 if isinstance(p, Mapping) and "label-value" in p}
        for c in image_label.get("colors") or []:
            if isinstance(c, Mapping) and "label-value" in c and "rgba" in c:
                value = int(c["label-value"])
                table[value] = (names.get(value, str(value)), tuple(int(v) for v in c["rgba"]))
    if not table:
        named = {0: "not assigned", **metadata.label_table(attrs)}
        table = {v: (n, metadata.label_colour(v)) for v, n in named.items()}
    return table


def _channel_names(attrs: Mapping[str, Any], count: int) -> list[str]:
    """Names of a channel image's channels: its class names (probabilities), channel names (features), or numbers."""
    for key in ("class_names", "channel_names"):
        names = attrs.get(key)
        if isinstance(names, Sequence) and len(names) == count:
            return [str(n) for n in names]
    return [str(i) for i in range(count)]


def _rgba(colour: Sequence[int]) -> tuple[float, ...]:
    """RGBA 0–255 → 0–1, as napari takes colours."""
    return tuple(float(c) / 255 for c in colour)
