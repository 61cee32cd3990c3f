"""Forest inference on the CPU: the packed forest walked by numba kernels, in batches of rows.

:mod:`gpuseg.classify.layout` packs a :class:`~gpuseg.classify.forest.Forest` once (8-byte
nodes, children side by side, pure leaves inside the node) and :mod:`gpuseg.classify.walk`
walks it, eight rows in lock step, releasing the GIL so the engine's threads predict their
blocks in parallel. The sums are float64, tree by tree, divided by the tree count at the end:
the probabilities equal scikit-learn's ``RandomForestClassifier.predict_proba`` to the last bit.
Features are copied to float32 in batches of :data:`BATCH` rows, which bounds the contiguous
copy the kernel walks.

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

from typing import Any

import numpy as np

from ..errors import ParameterError
from .forest import Forest, check_features
from .layout import pack

BATCH = 1 << 18  # rows per kernel call: bounds the (N, C) float32 copy; a tree stays cached over a whole batch


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
    from . import walk  # numba: imported when a forest is first walked, not with the command line

    features = np.asarray(features)
    check_features(features, forest)
    n = len(features)
    if out is None:
        out = np.empty((n, forest.n_classes), np.float64)
    if out.shape != (n, forest.n_classes):
        raise ParameterError(f"out must have shape {(n, forest.n_classes)}, not {out.shape}")
    packed = pack(forest)
    for start in range(0, n, BATCH):
        sums = walk.proba_sums(features[start : start + BATCH], packed)
        out[start : start + len(sums)] = sums / forest.n_trees
    return out
