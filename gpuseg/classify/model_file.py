"""The model file: a trained :class:`~gpuseg.classify.forest.Forest` as numbers only, checked on reading.

An ``.npz`` (zip of ``.npy`` arrays) holding exactly the arrays of :data:`gpuseg.classify.forest.ARRAYS`
and ``header``: UTF-8 JSON stored as a uint8 array (format and version, feature count,
classes and their names, the feature specification, training information, the versions
that wrote it, and a SHA-256 over the header and every array). Read with
``allow_pickle=False``: a pickled object array is refused, never loaded.

The trees stored are the ones kept: a forest sized by the data (``gpuseg train`` without
``--trees``) holds only its first trees, possibly cut in depth, and ``info["size"]`` says how
they were chosen (``method`` ``agreement`` / ``fixed`` / ``full``; ``trees``, ``depth``,
``grown_trees``, ``grown_depth``, the ``agreement`` measured on ``sample`` unlabelled voxels of the
``region``, its ``stderr``, ``visits`` and ``grown_visits``). Files written before sizing existed
have no ``size`` record and load as they are; a header or size record asking for more (or fewer)
trees than the file holds is refused.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from gpuseg.classify import forest
>>> X = np.random.default_rng(0).random((100, 2), dtype=np.float32)
>>> f = forest.train(X, (X[:, 0] > 0.5).astype(np.uint8) + 1, trees=3)
>>> path = save(f, os.path.join(tempfile.mkdtemp(), "m.npz"))
>>> g = load(path)
>>> bool(np.array_equal(g.threshold, f.threshold)), g.class_names, len(g.info["sha256"])
(True, ('1', '2'), 64)
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import outputs
from ..errors import InputError
from .forest import ARRAYS, LEAF, Forest

FORMAT = "gpuseg-forest"
FORMAT_VERSION = 1


def _digest(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True).encode())
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def versions() -> dict[str, str]:
    """The versions of what writes a model file."""
    import sklearn

    from .. import __version__

    return {"gpuseg": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__}


def save(forest: Forest, path: str | os.PathLike) -> str:
    """Write ``forest`` to ``path`` (``.npz``): numbers only, with a SHA-256; replaced atomically.

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "n_features": int(forest.n_features),
        "n_trees": forest.n_trees, "classes": forest.classes.tolist(), "class_names": list(forest.class_names),
        "features": dict(forest.features), "versions": versions(),
        "info": {k: v for k, v in forest.info.items() if k not in ("sha256", "versions")},
    }
    header["sha256"] = _digest(header, forest.arrays())
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    with outputs.staged(path, overwrite=True) as tmp:
        _write_npz(Path(tmp), {"header": blob, **forest.arrays()})
    return path


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed member date, so the same forest gives the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


def load(path: str | os.PathLike) -> Forest:
    """Read a model file written by :func:`save`; never unpickles.

    Raises
    ------
    InputError
        Missing, truncated, tampered, pickled or structurally invalid files.
    """
    path = os.fspath(path)
    if Path(path).is_dir():
        raise InputError(f"{path}: is a folder, not a gpuseg model file (.npz); give the file `gpuseg train --model` wrote")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such model file; train one with `gpuseg train`")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        raise InputError(f"{path}: not a gpuseg model file (not an .npz archive); give the file `gpuseg train --model` "
                         "wrote")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if "header" not in names or names - {"header"} != set(ARRAYS):
                raise InputError(f"{path}: not a gpuseg model file (holds {sorted(names)}); train one with `gpuseg train`")
            blob = npz["header"]
            arrays = {name: npz[name] for name in ARRAYS}
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(f"{path}: holds pickled objects, which gpuseg never loads; use a model file written by `gpuseg train`") from None
        raise InputError(f"{path}: corrupt model file ({exc}); train it again") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
            struct.error) as exc:  # what zipfile raises on damaged archives (e.g. "encrypted" on flipped flag bits)
        raise InputError(f"{path}: truncated or corrupt model file ({type(exc).__name__}: {exc}); train it again") from None
    try:
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError("header is not a uint8 vector")
        header = json.loads(blob.tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: corrupt model header ({exc}); train it again") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{path}: not a gpuseg model file; train one with `gpuseg train`")
    if header.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: model format version {header.get('format_version')} is not {FORMAT_VERSION}; "
                         "train it again with this gpuseg")
    for name, dtype in ARRAYS.items():
        if arrays[name].dtype != dtype:
            raise InputError(f"{path}: array {name!r} is {arrays[name].dtype}, expected {dtype}; the file is corrupt")
    if header.get("sha256") != _digest(header, arrays):
        raise InputError(f"{path}: checksum mismatch, the model file was altered or damaged; train it again")
    forest = Forest(**arrays, n_features=int(header["n_features"]), class_names=tuple(header.get("class_names", ())),
                    features=header.get("features", {}),
                    info={**header.get("info", {}), "versions": header.get("versions", {}), "sha256": header["sha256"]})
    problem = validate(forest) or _size_problem(header, forest)
    if problem:
        raise InputError(f"{path}: invalid forest ({problem}); train it again")
    return forest


def _size_problem(header: Mapping[str, Any], forest: Forest) -> str:
    """What is wrong with the tree counts the header states ("" if nothing; files without them are fine)."""
    held = forest.n_trees
    size = forest.info.get("size")
    asked = [("the header", header.get("n_trees", held))]
    if size is not None:
        if not isinstance(size, Mapping):
            return "its size record is not a mapping"
        asked.append(("its size record", size.get("trees", held)))
    for where, n in asked:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"{where} asks for {n!r} trees, not a whole number >= 1"
        if n != held:
            return f"{where} asks for {n} trees but the file holds {held}"
    return ""


def validate(forest: Forest) -> str:
    """What is structurally wrong with ``forest`` ("" if nothing): the checks that make predicting it safe."""
    m = forest.n_nodes
    if not all(len(getattr(forest, n)) == m for n in ("threshold", "left", "right", "value")):
        return "node arrays differ in length"
    if forest.value.ndim != 2 or forest.value.shape[1] != forest.n_classes or forest.n_classes < 2:
        return "class distributions do not match the classes"
    if len(forest.class_names) != forest.n_classes:
        return "class names do not match the classes"
    starts = forest.tree_start
    if starts.ndim != 1 or len(starts) < 2 or starts[0] != 0 or starts[-1] != m or np.any(np.diff(starts) < 1):
        return "tree offsets are inconsistent"
    if not np.all(np.isfinite(forest.value)) or np.any(forest.value < 0) or not np.all(np.isfinite(forest.threshold)):
        return "non-finite or negative values"
    tree_end = np.repeat(starts[1:], np.diff(starts))
    node = np.arange(m)
    leaf = forest.feature == LEAF
    if np.any(leaf & ((forest.left != LEAF) | (forest.right != LEAF))):
        return "leaves with children"
    inner = ~leaf
    for child in (forest.left, forest.right):
        if np.any(inner & ((child <= node) | (child >= tree_end))):
            return "a child index outside its tree or before its parent"
    if np.any(inner & ((forest.feature < 0) | (forest.feature >= forest.n_features))):
        return "a feature index out of range"
    if np.any(leaf[starts[:-1]] & (np.diff(starts) > 1)):
        return "a tree whose root is a leaf but has more nodes"
    return ""
