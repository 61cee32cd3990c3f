"""Import of ilastik pixel-classification projects (``.ilp``, HDF5): labels, label names, feature selection.

What is read, and where ilastik writes it (``ilastik/applets/base/appletSerializer.py``,
``SerialBlockSlot``; ``ilastik/applets/featureSelection/featureSelectionSerializer.py``):

* ``PixelClassification/LabelSets/labels000/block0000 …`` — the painted labels of the first
  image (lane 0), as dense blocks. Each block's ``blockSlice`` attribute places it in the
  image: ``"[z0:z1,y0:y1,x0:x1,0:1]"`` (ilastik's ``slicingToString``; stored as bytes by
  ilastik ≥ 1.3, as str before), one ``start:stop`` per axis of the label image, the
  channel axis last. The axis order is the block's vigra ``axistags`` attribute (JSON)
  when present, else ``zyxc`` (4 axes), ``tzyxc`` (5) or ``yxc`` (3, a 2-D image).
  0 = unlabelled, k = the k-th label name.
* ``PixelClassification/LabelNames`` — one name per label value, from 1.
* ``FeatureSelections/SelectionMatrix`` (features × scales, bool), ``Scales``,
  ``FeatureIds`` (row names) and, in ilastik ≥ 1.3.2, ``ComputeIn2d`` (one flag per scale).

The classifier stored in a project (``ClassifierForests``) is a pickled/vigra object and is
never read: gpuseg retrains from the labels.

Examples
--------
>>> parse_block_slice(b"[0:10,5:20,3:8,0:1]")
(slice(0, 10, None), slice(5, 20, None), slice(3, 8, None), slice(0, 1, None))
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError

LABELS_GROUP = "PixelClassification/LabelSets"
LABEL_NAMES = "PixelClassification/LabelNames"
FEATURES_GROUP = "FeatureSelections"
# ilastik's feature rows when a project does not list them (opFeatureSelection's order)
STANDARD_ORDER = ("GaussianSmoothing", "LaplacianOfGaussian", "GaussianGradientMagnitude",
                  "DifferenceOfGaussians", "StructureTensorEigenvalues", "HessianOfGaussianEigenvalues")
_SLICE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*$")


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.shape == () else value.tolist()
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_block_slice(text) -> tuple[slice, ...]:
    """ilastik's ``blockSlice`` attribute (``"[0:1,2:3,…]"``, str or bytes) → a tuple of slices."""
    body = _text(text).strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"blockSlice {body!r} is not of the form [a:b,c:d,...]")
    slices = []
    for part in body[1:-1].split(","):
        m = _SLICE.match(part)
        if not m or int(m.group(1)) < 0 or int(m.group(2)) < int(m.group(1)):
            raise ValueError(f"blockSlice {body!r} has a bad range {part!r}")
        slices.append(slice(int(m.group(1)), int(m.group(2))))
    return tuple(slices)


def _axis_keys(dataset, ndim: int) -> str:
    tags = dataset.attrs.get("axistags")
    if tags is not None:
        try:
            return "".join(a["key"] for a in json.loads(_text(tags))["axes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable axistags ({exc})") from None
    default = {3: "yxc", 4: "zyxc", 5: "tzyxc"}.get(ndim)
    if default is None:
        raise ValueError(f"label block of {ndim} axes and no axistags")
    return default


@dataclasses.dataclass(frozen=True)
class FeatureSelection:
    """An ilastik feature selection as stored: ``matrix[row, column]`` selects feature ``feature_ids[row]`` at ``scales[column]``."""

    matrix: np.ndarray
    scales: tuple[float, ...]
    feature_ids: tuple[str, ...]
    compute_in_2d: tuple[bool, ...]


def _open(path: str | os.PathLike):
    import h5py

    if not Path(path).is_file():
        raise InputError(f"{path}: no such ilastik project; check the path")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable ilastik project (HDF5: {exc}); save it again from ilastik") from None


def iter_label_blocks(path: str | os.PathLike, lane: int = 0) -> Iterator[tuple[tuple[slice, slice, slice], np.ndarray]]:
    """Yield ``(region (z, y, x) slices, uint8 labels)`` for every label block of image ``lane``.

    Raises
    ------
    InputError
        The project has no labels for the lane, or a block is malformed (bad ``blockSlice``,
        shape not matching it, a time or channel extent other than one, labels over 255).
    """
    with _open(path) as f:
        name = f"{LABELS_GROUP}/labels{lane:03d}"
        if name not in f:
            raise InputError(f"{path}: no labels for image {lane} ({name} is missing); paint labels in ilastik first")
        group = f[name]
        for key in sorted(group):
            ds = group[key]
            where = f"{path}: label block {name}/{key}"
            try:
                region = parse_block_slice(ds.attrs["blockSlice"])
                axes = _axis_keys(ds, ds.ndim)
            except KeyError:
                raise InputError(f"{where} has no blockSlice attribute; the project is corrupt") from None
            except ValueError as exc:
                raise InputError(f"{where}: {exc}; the project is corrupt") from None
            if len(region) != ds.ndim or len(axes) != ds.ndim:
                raise InputError(f"{where}: blockSlice {len(region)} axes, axistags {axes!r}, data {ds.ndim} axes; the project is corrupt")
            if tuple(s.stop - s.start for s in region) != ds.shape:
                raise InputError(f"{where}: data shape {ds.shape} does not match its blockSlice; the project is corrupt")
            try:
                data = ds[()]
            except (OSError, ValueError) as exc:
                raise InputError(f"{where} is unreadable ({exc}); the project is corrupt") from None
            yield _to_zyx(data, region, axes, where)


def _to_zyx(data: np.ndarray, region, axes: str, where: str):
    for extra in ("t", "c"):
        if extra in axes:
            i = axes.index(extra)
            if data.shape[i] != 1:
                raise InputError(f"{where}: {data.shape[i]} entries along axis {extra!r}; only one time point and one label channel are supported")
            data = np.take(data, 0, axis=i)
            region = region[:i] + region[i + 1 :]
            axes = axes.replace(extra, "")
    if "z" not in axes:  # a 2-D image: one z-slice
        data, region, axes = data[None], (slice(0, 1), *region), "z" + axes
    if sorted(axes) != ["x", "y", "z"]:
        raise InputError(f"{where}: unsupported axes {axes!r}")
    order = [axes.index(a) for a in "zyx"]
    data = np.transpose(data, order)
    region = tuple(region[i] for i in order)
    if data.size and (data.min() < 0 or data.max() > 255):
        raise InputError(f"{where}: label values outside 0..255")
    return region, data.astype(np.uint8)


def label_names(path: str | os.PathLike) -> tuple[str, ...]:
    """The project's label names (value 1 first); empty if it names none."""
    with _open(path) as f:
        if LABEL_NAMES not in f:
            return ()
        return tuple(_text(v) for v in f[LABEL_NAMES][()])


def feature_selection(path: str | os.PathLike) -> FeatureSelection:
    """The project's feature selection (pass it to :func:`gpuseg.features.from_selection_matrix`).

    Raises
    ------
    InputError
        No feature selection, or a malformed one.
    """
    with _open(path) as f:
        if FEATURES_GROUP not in f or "SelectionMatrix" not in f[FEATURES_GROUP]:
            raise InputError(f"{path}: no feature selection ({FEATURES_GROUP}/SelectionMatrix); select features in ilastik or pass --features")
        g = f[FEATURES_GROUP]
        try:
            matrix = np.asarray(g["SelectionMatrix"][()], dtype=bool)
            scales = tuple(float(s) for s in np.atleast_1d(g["Scales"][()]))
            ids = tuple(_text(v) for v in g["FeatureIds"][()]) if "FeatureIds" in g else STANDARD_ORDER
            in2d = tuple(bool(v) for v in np.atleast_1d(g["ComputeIn2d"][()])) if "ComputeIn2d" in g else ()
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: malformed feature selection ({exc}); select features again in ilastik") from None
    if matrix.shape != (len(ids), len(scales)):
        raise InputError(f"{path}: SelectionMatrix is {matrix.shape} for {len(ids)} features x {len(scales)} scales; the project is corrupt")
    if not matrix.any():
        raise InputError(f"{path}: no features are selected; select features in ilastik or pass --features")
    # ilastik writes ComputeIn2d with one flag per scale, but some writers pad or cut it
    in2d = (in2d + (False,) * len(scales))[: len(scales)] if in2d else ()
    return FeatureSelection(matrix, scales, ids, in2d)
