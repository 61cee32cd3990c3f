"""OME-Zarr (OME-NGFF 0.5, the version on zarr v3): the multiscale image a zarr volume becomes, and reading one.

Layout. A volume at ``PATH`` (``seg.zarr``, ``seg.zarr/proba``) is an NGFF image group: ``PATH/0`` is the
full-resolution array, which keeps gpuseg's attributes (voxel size, provenance, the run's fingerprint);
``PATH/1``, ``PATH/2`` … halve it along z, y and x, down to about :data:`MIN_EDGE` voxels along the smallest
edge. The group's ``ome`` attributes hold ``multiscales`` (axes z, y, x, with c first for a channel output
such as probabilities or features; each level's voxel size in nm as its ``scale``) and, for a label image
(a segmentation, a prediction, a phantom's truth), ``image-label`` with a colour and a class name per value.
Readers (:func:`gpuseg.io.zarrio.open_array`) resolve an image group to its level 0, so every command takes
the same path as before, and OME-Zarr images written by other tools (NGFF 0.4 or 0.5) are read at level 0.

Libraries. ome-zarr-py (0.12 and later write NGFF 0.5 on zarr v3) writes the metadata
(``ome_zarr.writer.write_multiscales_metadata``) into the group gpuseg has filled with zarr-python, and
ome-zarr-models, the pydantic models of the specification that ome-zarr-py itself depends on, validates it
(:func:`validate`). Neither builds gpuseg's pyramid: ome-zarr-py downsamples by ``resize`` (an interpolation,
not a mean) or nearest, and writes levels through ``da.to_zarr`` with its own codecs; ngff-zarr has a mean
(bin shrink) but writes the whole store itself (its own codec chain, through zarrista) and brings the
itk-wasm runtime. Here each level is made from the one before, read back from disk one block of chunks at a
time by a small thread pool (:data:`PYRAMID_BYTES` bound all blocks in flight together): the mean over 2×2×2
voxels for grey values, every second voxel for labels (a mean of labels is a label no voxel has). An odd
edge keeps its last voxel (levels are ``ceil(n / 2)`` long), so label and grey pyramids share shapes.

Completion. A new image carries :data:`PENDING_KEY` and lists only level 0 until :func:`write_multiscale`
has written every level; the marker goes last. :func:`finish` (called by :mod:`gpuseg.engine.outputs` before
an output is committed) builds whatever is pending, so a committed output always has its whole pyramid, and
a run killed while building it rebuilds the pyramid when rerun.

Switch. Outputs are written this way unless switched off (``GPUSEG_OME_ZARR=0`` in the environment, or
:func:`enable` (False)); then a volume is one plain zarr array at ``PATH``, as gpuseg wrote before. Reading
both layouts is always on.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import InputError
from . import metadata
from .paths import node, parse

log = logging.getLogger("gpuseg")

NGFF_VERSION = "0.5"
MIN_EDGE = 64
"""Levels go on halving while the smallest edge of the next one would still be at least this long."""
PENDING_KEY = "gpuseg_pyramid"
"""Group attribute of an image whose pyramid is not complete yet."""
ENV_SWITCH = "GPUSEG_OME_ZARR"
"""Environment variable: ``0`` (or ``false``, ``no``, ``off``) writes plain zarr arrays instead of OME-Zarr images."""
OFF = ("0", "false", "no", "off")
PYRAMID_BYTES = 1 << 30
"""Host memory the pyramid builder's blocks in flight may take together."""
MAX_TASKS = 4096  # per level: beyond it, blocks of several chunks (per-task overhead over tiny chunks)
UNIT_NM = {"angstrom": 0.1, "nanometer": 1.0, "micrometer": 1e3, "millimeter": 1e6, "centimeter": 1e7, "meter": 1e9}

_switch: bool | None = None


def enabled() -> bool:
    """Whether new zarr volumes are written as OME-Zarr images: :func:`enable`, else ``GPUSEG_OME_ZARR``
    (``0``, ``false``, ``no`` or ``off`` switch it off), else yes.

    Examples
    --------
    >>> enable(False); enabled()
    False
    >>> enable(None)
    """
    if _switch is not None:
        return _switch
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in OFF


def enable(on: bool | None = True) -> None:
    """Write zarr volumes as OME-Zarr images (``on``), as plain arrays (False), or as the environment says (None)."""
    global _switch
    _switch = on


# --------------------------------------------------------------------------- reading


def ngff(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The NGFF part of a group's attributes: ``ome`` (0.5), else the attributes themselves (0.4 and before)."""
    inner = attrs.get("ome")
    return inner if isinstance(inner, Mapping) else attrs


def is_image(attrs: Mapping[str, Any]) -> bool:
    """Whether group attributes describe an NGFF multiscale image (or a bioformats2raw collection of them)."""
    meta = ngff(attrs)
    return bool(meta.get("multiscales")) or "bioformats2raw.layout" in meta


def level_paths(attrs: Mapping[str, Any]) -> list[str]:
    """The arrays of an image's first multiscale, full resolution first."""
    try:
        return [str(d["path"]) for d in ngff(attrs)["multiscales"][0]["datasets"]]
    except (KeyError, IndexError, TypeError):
        return []


def resolve(group: zarr.Group, level: int = 0, name: str = "") -> zarr.Array:
    """The array of ``level`` of the OME-Zarr image ``group`` (the first image of a bioformats2raw collection)."""
    attrs = group.attrs.asdict()
    where = name or _where(group)
    if not level_paths(attrs) and "bioformats2raw.layout" in ngff(attrs) and "0" in group:
        series = group["0"]
        if isinstance(series, zarr.Group):
            return resolve(series, level, f"{where}/0")
    paths = level_paths(attrs)
    if not paths:
        raise InputError(f"{where}: is a zarr group but not an OME-Zarr image; name one of its arrays")
    if not 0 <= level < len(paths):
        raise InputError(f"{where}: has resolution levels 0 to {len(paths) - 1}, not {level}")
    try:
        arr = group[paths[level]]
    except KeyError:
        arr = None
    if not isinstance(arr, zarr.Array):
        raise InputError(f"{where}: its level {level} ({paths[level]}) is missing; the image is damaged: re-create it")
    return arr


def read_level(path: str | os.PathLike[str], level: int = 0) -> zarr.Array:
    """Open resolution ``level`` of the OME-Zarr image at ``path`` (a plain zarr array is its own level 0).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "v.zarr")
    >>> _ = create_image(p, (128, 128, 128), "uint8", (64, 64, 64), {})
    >>> write_multiscale(p)
    ['0', '1']
    >>> read_level(p).shape, read_level(p, 1).shape
    ((128, 128, 128), (64, 64, 64))
    """
    from .zarrio import open_array

    loc = parse(path)
    if level == 0:
        return open_array(path)
    try:
        found = zarr.open(store=loc.container, path=loc.inner, mode="r")
    except Exception as exc:
        raise InputError(f"{path}: cannot open as zarr ({exc}); check the path") from exc
    if isinstance(found, zarr.Array):
        raise InputError(f"{path}: is a plain zarr array: it has level 0 only, not {level}")
    return resolve(found, level, os.fspath(path))


def level_scales(attrs: Mapping[str, Any]) -> list[list[float] | None]:
    """Each level's voxel size (z, y, x) in nm from an image's NGFF metadata (None for a level without space units)."""
    try:
        image = ngff(attrs)["multiscales"][0]
        axes, top = image["axes"], image.get("coordinateTransformations") or []
        levels = [d["coordinateTransformations"] for d in image["datasets"]]
    except (KeyError, IndexError, TypeError):
        return []
    return [_scale(axes, [*transforms, *top]) for transforms in levels]


def _scale(axes: Sequence[Any], transforms: Sequence[Mapping[str, Any]]) -> list[float] | None:
    try:
        scale = [1.0] * len(axes)
        for t in transforms:
            if t.get("type") == "scale":
                scale = [a * float(b) for a, b in zip(scale, t["scale"])]
        space = [(a, s) for a, s in zip(axes, scale) if isinstance(a, Mapping) and a.get("type") == "space"]
    except (KeyError, TypeError, ValueError):
        return None
    if len(space) != 3 or any(a.get("unit") not in UNIT_NM for a, _ in space):
        return None
    return [s * UNIT_NM[a["unit"]] for a, s in space]


def validate(path: str | os.PathLike[str]) -> Any:
    """Check an OME-Zarr image against NGFF 0.5 with ome-zarr-models; its model, or :class:`InputError`."""
    import ome_zarr_models

    try:
        return ome_zarr_models.open_ome_zarr(zarr.open_group(node(path), mode="r"), version="0.5")
    except Exception as exc:
        why = " ".join(line.strip() for line in str(exc).strip().splitlines()[:3]) or type(exc).__name__
        raise InputError(f"{path}: not a valid OME-Zarr {NGFF_VERSION} image ({why})") from exc


def _where(group: zarr.Group) -> str:
    """A group's path on disk, as messages name it."""
    root = getattr(group.store, "root", None)
    return os.fspath(Path(root, group.path)) if root is not None else str(group.store_path)


# --------------------------------------------------------------------------- writing


def axes(ndim: int, voxel_known: bool) -> list[dict[str, str]]:
    """NGFF axes: z, y, x in nanometres (no unit when the voxel size is unknown), a channel axis c before them."""
    space = [{"name": n, "type": "space", **({"unit": "nanometer"} if voxel_known else {})} for n in "zyx"]
    return [{"name": "c", "type": "channel"}] * (ndim - 3) + space


def level_shapes(shape: Sequence[int], min_edge: int = MIN_EDGE) -> list[tuple[int, ...]]:
    """Shapes of the pyramid's levels: the last three axes halved (rounding up) while the smallest stays ≥ ``min_edge``.

    Examples
    --------
    >>> [s[0] for s in level_shapes((1024, 1024, 1024))]
    [1024, 512, 256, 128, 64]
    >>> level_shapes((3, 200, 301, 300))
    [(3, 200, 301, 300), (3, 100, 151, 150)]
    """
    lead, space = tuple(int(n) for n in shape[:-3]), tuple(int(n) for n in shape[-3:])
    shapes = [lead + space]
    while min(half := tuple(-(-n // 2) for n in space)) >= max(min_edge, 1) and half != space:
        shapes.append(lead + half)
        space = half
    return shapes


def datasets(count: int, ndim: int, voxel: Sequence[float] | None, method: str) -> list[dict[str, Any]]:
    """Each level's ``coordinateTransformations``: the voxel size × 2^k, and for a mean the shift of a block's centre."""
    size = list(voxel) if voxel is not None else [1.0, 1.0, 1.0]
    lead = [1.0] * (ndim - 3)
    out = []
    for k in range(count):
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": lead + [v * 2**k for v in size]}]
        if method == "mean" and k:  # level k's voxel averages 2^k of level 0's: its centre lies (2^k - 1)/2 further on
            transforms.append({"type": "translation", "translation": [0.0] * len(lead) + [v * (2**k - 1) / 2 for v in size]})
        out.append({"path": str(k), "coordinateTransformations": transforms})
    return out


def create_image(path: str | os.PathLike[str], shape: Sequence[int], dtype: Any, chunks: Sequence[int],
                 attrs: Mapping[str, Any], overwrite: bool = False, fill_value: Any = 0) -> zarr.Array:
    """A new OME-Zarr image group at ``path`` with its level 0 (returned, to be filled); its pyramid is pending.

    The metadata lists level 0 alone (a valid single-level image) until :func:`write_multiscale` has run.
    """
    from .zarrio import compressor_for

    loc = parse(path)
    if loc.inner:
        group = zarr.open_group(store=loc.container, mode="a").create_group(loc.inner, overwrite=overwrite)
    else:
        group = zarr.open_group(store=loc.container, mode="w")
    voxel = metadata.voxel_size(attrs)
    image = {"name": node(path).name, "axes": axes(len(shape), voxel is not None),
             "datasets": datasets(1, len(shape), voxel, "mean")}
    start: dict[str, Any] = {"ome": {"version": NGFF_VERSION, "multiscales": [image]}, PENDING_KEY: "pending"}
    group.attrs.update(start)
    return group.create_array(name="0", shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
                              compressors=compressor_for(dtype), fill_value=fill_value, attributes=dict(attrs),
                              dimension_names=[a["name"] for a in axes(len(shape), True)])


def write_multiscale(group_or_path: zarr.Group | str | os.PathLike[str], *, kind: str | None = None,
                     voxel_size: float | Sequence[float] | None = None, min_edge: int | None = None,
                     name: str | None = None, workers: int | None = None) -> list[str]:
    """Build the pyramid of the image whose level 0 is ``0`` in the group, block by block, and write its metadata.

    Parameters
    ----------
    group_or_path : zarr.Group or path
        An image group (from :func:`create_image`, or any group holding the full-resolution array ``0``).
    kind : {"labels", "grey"}, optional
        Labels: every second voxel and ``image-label`` metadata; grey: the mean. Default: from level 0's
        dtype and attributes (:func:`gpuseg.io.metadata.is_label_image`).
    voxel_size : nm, optional
        Default: level 0's ``voxel_size_nm``.
    min_edge : int, optional
        Default :data:`MIN_EDGE`.
    name : str, optional
        The image's name in its metadata (default: the group's folder name).
    workers : int, optional
        Threads; default as many as the cores and :data:`PYRAMID_BYTES` allow.

    Returns
    -------
    list of str
        The levels' array names, full resolution first.
    """
    group = group_or_path if isinstance(group_or_path, zarr.Group) else zarr.open_group(node(group_or_path), mode="r+")
    base = group["0"]
    if not isinstance(base, zarr.Array) or base.ndim not in (3, 4):
        raise InputError(f"{_where(group)}: needs its full-resolution 3-D or 4-D array at 0")
    attrs = base.attrs.asdict()
    labels = kind == "labels" if kind is not None else metadata.is_label_image(base.dtype, base.ndim, attrs)
    voxel = metadata.normalize_voxel_size(voxel_size) or metadata.voxel_size(attrs)
    shapes = level_shapes(base.shape, MIN_EDGE if min_edge is None else min_edge)
    table = metadata.label_table(attrs) if labels else {}
    checked = table if labels and kind is None and metadata.stored_label_names(attrs) else {}
    if not _levels(group, base, shapes, "nearest" if labels else "mean", workers, checked):
        log.info("%s: holds values beyond its named labels: building a grey-value pyramid instead", _where(group))
        labels, table = False, {}
        _levels(group, base, shapes, "mean", workers, {})
    _write_metadata(group, len(shapes), base.ndim, voxel, labels, table, name or Path(_where(group)).name)
    return [str(k) for k in range(len(shapes))]


def _levels(group: zarr.Group, base: zarr.Array, shapes: Sequence[tuple[int, ...]], method: str,
            workers: int | None, table: Mapping[int, str]) -> bool:
    """Write levels 1… (each from the one before); with a label ``table``, stop (False) at level 1 if it holds
    a value beyond the table's range (an uncertainty map named like its prediction is not a label image)."""
    src = base
    for k, shape in enumerate(shapes[1:], 1):
        chunks = tuple(min(c, n) for c, n in zip(base.chunks, shape))
        dst = group.create_array(name=str(k), shape=shape, dtype=base.dtype, chunks=chunks,
                                 compressors=base.compressors, fill_value=base.fill_value, overwrite=True,
                                 dimension_names=getattr(base.metadata, "dimension_names", None))
        low, high = _level(src, dst, method, workers)
        if k == 1 and table and (low < min(0, *table) or high > max(table)):
            return False
        src = dst
    return True


def _write_metadata(group: zarr.Group, count: int, ndim: int, voxel: Sequence[float] | None, labels: bool,
                    table: Mapping[int, str], name: str) -> None:
    """The complete NGFF metadata through ome-zarr-py's writer; the pending marker goes last."""
    import warnings

    from .. import __version__

    with warnings.catch_warnings():  # ome-zarr's writer module warns about its own deprecated Scaler on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr.format import FormatV05
        from ome_zarr.writer import add_metadata, write_multiscales_metadata

    fmt = FormatV05()
    method = "nearest" if labels else "mean"
    about = {"method": f"gpuseg {__version__}: " + ("every second voxel" if labels else "mean over 2x2x2 voxels"),
             "kwargs": {"downscale": 2}}
    write_multiscales_metadata(group, datasets(count, ndim, voxel, method), fmt=fmt, axes=axes(ndim, voxel is not None),
                               name=name.removesuffix(".zarr") or "image", metadata=about)
    if labels:
        values = sorted({0, *table})
        colours = [{"label-value": v, "rgba": list(metadata.label_colour(v))} for v in values]
        named = {0: "not assigned", **table}  # the validator wants a property for every coloured value
        properties = [{"label-value": v, "class": named[v]} for v in values]
        add_metadata(group, {"image-label": {"colors": colours, "properties": properties}}, fmt=fmt)
    if PENDING_KEY in group.attrs:
        del group.attrs[PENDING_KEY]


# --------------------------------------------------------------------------- block by block


def downsample(block: np.ndarray, method: str) -> np.ndarray:
    """Halve the last three axes of ``block``: ``"mean"`` over 2×2×2 voxels (an odd edge: over the voxels it has;
    integers rounded), or ``"nearest"``, every second voxel.

    Examples
    --------
    >>> b = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    >>> downsample(b, "mean").tolist(), downsample(b, "nearest").tolist()
    ([[[4]]], [[[0]]])
    >>> downsample(np.array([[[1.0, 3.0, 8.0]]]), "mean").tolist()
    [[[2.0, 8.0]]]
    """
    if method == "nearest":
        return block[..., ::2, ::2, ::2]
    odd = [n % 2 for n in block.shape[-3:]]
    if any(odd):  # repeating the last voxel makes a pair's mean that voxel: the mean over what the edge has
        block = np.pad(block, [(0, 0)] * (block.ndim - 3) + [(0, o) for o in odd], mode="edge")
    lead, (z, y, x) = block.shape[:-3], block.shape[-3:]
    pairs = block.reshape(*lead, z // 2, 2, y // 2, 2, x // 2, 2)
    mean = pairs.mean(axis=tuple(len(lead) + i for i in (1, 3, 5)), dtype=np.float64)
    if block.dtype.kind in "iu":
        mean = np.rint(mean)
    return mean.astype(block.dtype)


def _blocks(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """Regions of ``block`` (chunk-aligned) over the last three axes of ``shape``."""
    space, edge = shape[-3:], block[-3:]
    for z in range(0, space[0], edge[0]):
        for y in range(0, space[1], edge[1]):
            for x in range(0, space[2], edge[2]):
                yield tuple(slice(a, min(a + e, n)) for a, e, n in zip((z, y, x), edge, space))


def _task_block(shape: Sequence[int], chunks: Sequence[int]) -> list[int]:
    """The output block of one task: a chunk, or several where a level has more than :data:`MAX_TASKS` chunks."""
    block = [int(c) for c in chunks[-3:]]
    while math.prod(-(-n // b) for n, b in zip(shape[-3:], block)) > MAX_TASKS:
        axis = int(np.argmin([b / n for b, n in zip(block, shape[-3:])]))
        block[axis] *= 2
    return block


def _level(src: zarr.Array, dst: zarr.Array, method: str, workers: int | None) -> tuple[float, float]:
    """Fill ``dst`` from ``src`` (twice its size), one block per task; the smallest and largest value written."""
    from .zarrio import read

    block = _task_block(dst.shape, dst.chunks)
    lead = tuple(slice(None) for _ in dst.shape[:-3])
    item = np.dtype(src.dtype).itemsize * math.prod(dst.shape[:-3])
    per_task = math.prod(block) * (8 * item * 2 + 8 * math.prod(dst.shape[:-3]))  # 2x2x2 input (+ its edge copy) and a float64 mean
    threads = workers or max(1, min(os.cpu_count() or 1, PYRAMID_BYTES // max(per_task, 1)))

    def one(region: tuple[slice, ...]) -> tuple[float, float]:
        wide = tuple(slice(2 * r.start, min(2 * r.stop, n)) for r, n in zip(region, src.shape[-3:]))
        out = downsample(np.asarray(read(src, (*lead, *wide))), method)
        dst[(*lead, *region)] = out
        return (float(out.min()), float(out.max())) if out.size else (math.inf, -math.inf)

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        found = list(pool.map(one, _blocks(dst.shape, block)))
    return min(lo for lo, _ in found), max(hi for _, hi in found)


def finish(path: str | os.PathLike[str], *, name: str | None = None, pyramid: bool = True) -> list[str]:
    """Complete every image at or below ``path`` whose pyramid is pending; the groups completed.

    ``pyramid`` False (a temporary): only the marker goes, leaving a single-level image.
    """
    top = node(path)
    done = []
    for folder in _pending(top):
        group = zarr.open_group(folder, mode="r+")
        if pyramid:
            log.info("%s: building its multiscale pyramid", name or folder)
            write_multiscale(group, name=name if folder == top and name else folder.name)
        elif PENDING_KEY in group.attrs:
            del group.attrs[PENDING_KEY]
        done.append(os.fspath(folder))
    return done


def _pending(top: Path) -> Iterator[Path]:
    """Image groups at or below ``top`` marked pending (arrays and hidden folders are not entered)."""
    for folder, dirs, _ in os.walk(top):
        try:
            meta = json.loads((Path(folder) / "zarr.json").read_text())
        except (OSError, ValueError):
            dirs[:] = []
            continue
        if meta.get("node_type") != "group":
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".gpuseg"))
        if PENDING_KEY in (meta.get("attributes") or {}):
            yield Path(folder)
