"""Forest inference on the CPU: scikit-learn's own tree traversal, trees rebuilt from the flat arrays without pickle.

Each tree of a :class:`~gpuseg.classify.forest.Forest` becomes a scikit-learn ``Tree``
through ``Tree.__setstate__`` (plain arrays, never unpickled), so predicting runs the same
compiled traversal as ``RandomForestClassifier.predict_proba``, with the same float64 sums:
the probabilities are equal to scikit-learn's. Features are copied in batches of
:data:`BATCH` rows, which bounds the contiguous copy scikit-learn needs.

Examples
--------
>>> import numpy as np
>>> from gpuseg.classify import forest as fo
>>> X = np.random.default_rng(0).random((200, 3), dtype=np.float32)
>>> f = fo.train(X, np.where(X[:, 0] > 0.5, 2, 1).astype(np.uint8), trees=5)
>>> proba = predict_proba(X[:4], f)
>>> proba.dtype, proba.shape, bool(np.allclose(proba.sum(axis=1), 1))
(dtype('float64'), (4, 2), True)
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from ..errors import DeviceError, ParameterError
from .forest import LEAF, Forest, check_features

BATCH = 1 << 18  # voxels per predictor call: bounds the (N, C) copy scikit-learn needs
SKLEARN_SUPPORTED = ((1, 4), (1, 10))
"""scikit-learn versions ``[low, high)`` whose private ``Tree.__setstate__`` takes the trees rebuilt here.

The rebuild fills scikit-learn's ``NODE_DTYPE`` by field name (``left_child``, ``right_child``,
``feature``, ``threshold``; the others zero) and hands ``{"max_depth", "node_count", "nodes",
"values"}`` with ``values`` float64 ``(nodes, 1, classes)``: checked to give ``predict_proba`` to
the last bit on 1.3.2, 1.4.2, 1.5.2, 1.6.1, 1.7.2, 1.8.0 and 1.9.1. 1.4 is the project's lower
bound (``pyproject.toml``), and releases after 1.9 are refused until they are checked.
"""


def supported_range() -> str:
    (a, b), (c, d) = SKLEARN_SUPPORTED
    return f">={a}.{b},<{c}.{d}"


def check_sklearn(version: str | None = None) -> None:
    """Refuse a scikit-learn whose ``Tree.__setstate__`` the CPU predictor has not been checked against.

    Raises
    ------
    DeviceError
        One line naming the installed version and the supported range.
    """
    if version is None:
        import sklearn

        version = sklearn.__version__
    match = re.match(r"(\d+)\.(\d+)", version)
    low, high = SKLEARN_SUPPORTED
    if match is None or not low <= (int(match[1]), int(match[2])) < high:
        raise DeviceError(_unsupported(version))


def _unsupported(version: str, cause: str = "") -> str:
    return (f"scikit-learn {version} is installed, but gpuseg's CPU forest predictor rebuilds scikit-learn trees "
            f"through a private interface checked only for scikit-learn {supported_range()}"
            f"{f' ({cause})' if cause else ''}; install one: pip install 'scikit-learn{supported_range()}'")


def predict_proba(features: Any, forest: Forest, out: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities ``(N, K)`` float64 of numpy feature rows ``(N, C)``: the mean of the trees' leaf distributions.

    Parameters
    ----------
    features : (N, C) array
        Any strides (e.g. ``block.reshape(C, -1).T``); copied to float32 in batches.
    forest : Forest
    out : (N, K) float array, optional
        Written in place; any strides (e.g. ``probabilities.reshape(K, -1).T``). The sums
        are float64 either way.

    Returns
    -------
    (N, K) array
        ``out``, or a new float64 array.
    """
    features = np.asarray(features)
    check_features(features, forest)
    n = len(features)
    if out is None:
        out = np.empty((n, forest.n_classes), np.float64)
    if out.shape != (n, forest.n_classes):
        raise ParameterError(f"out must have shape {(n, forest.n_classes)}, not {out.shape}")
    trees = sklearn_trees(forest)
    for start in range(0, n, BATCH):
        batch = np.ascontiguousarray(features[start : start + BATCH], dtype=np.float32)
        acc = np.zeros((len(batch), forest.n_classes), np.float64)
        for tree in trees:
            acc += tree.predict(batch)
        acc /= len(trees)
        out[start : start + len(batch)] = acc
    return out


@functools.lru_cache(maxsize=4)  # Forest hashes by identity: one rebuild per loaded forest
def sklearn_trees(forest: Forest) -> list:
    """scikit-learn ``Tree`` objects from the flat arrays, through ``Tree.__setstate__`` (plain arrays, no pickle)."""
    import sklearn

    check_sklearn()
    try:
        from sklearn.tree._tree import NODE_DTYPE, Tree

        return _rebuild(forest, NODE_DTYPE, Tree)
    except (ImportError, AttributeError, KeyError, ValueError, TypeError) as exc:
        raise DeviceError(_unsupported(sklearn.__version__, f"{type(exc).__name__}: {exc}")) from None


def _rebuild(forest: Forest, NODE_DTYPE: Any, Tree: Any) -> list:
    trees = []
    n_classes = np.array([forest.n_classes], dtype=np.intp)
    for t in range(forest.n_trees):
        lo, hi = int(forest.tree_start[t]), int(forest.tree_start[t + 1])
        leaf = forest.feature[lo:hi] == LEAF
        nodes = np.zeros(hi - lo, dtype=NODE_DTYPE)
        nodes["left_child"] = np.where(leaf, LEAF, forest.left[lo:hi] - lo)
        nodes["right_child"] = np.where(leaf, LEAF, forest.right[lo:hi] - lo)
        nodes["feature"] = np.where(leaf, -2, forest.feature[lo:hi])  # scikit-learn's TREE_UNDEFINED
        nodes["threshold"] = np.where(leaf, -2.0, forest.threshold[lo:hi].astype(np.float64))
        tree = Tree(forest.n_features, n_classes, 1)
        tree.__setstate__({"max_depth": _depth(forest, lo, hi), "node_count": hi - lo, "nodes": nodes,
                           "values": np.ascontiguousarray(forest.value[lo:hi, None, :])})
        trees.append(tree)
    return trees


def _depth(forest: Forest, lo: int, hi: int) -> int:
    """Depth of one tree, level by level from the root."""
    inner = np.flatnonzero(forest.feature[lo:hi] != LEAF) + lo
    level, depth = np.array([lo]), 0
    while True:
        level = level[np.isin(level, inner)]
        if not len(level):
            return depth
        level, depth = np.concatenate([forest.left[level], forest.right[level]]), depth + 1


# --------------------------------------------------------------------------- sizing
