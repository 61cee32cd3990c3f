"""Random forests for pixel classification: the flat numbers-only :class:`Forest` and its training.

A forest is trained with scikit-learn's ``RandomForestClassifier`` and then flattened into
plain arrays (one row per node, the trees one after another):

``feature`` (int32, -1 at leaves), ``threshold`` (float32), ``left`` / ``right`` (int32,
indices into the same arrays, -1 at leaves), ``value`` (float64, the leaf's class
distribution normalised to sum 1, as scikit-learn's ``predict_proba`` averages them) and
``tree_start`` (int64, where each tree's nodes begin, plus the total).

Thresholds are stored as float32, rounded *down* to the largest float32 not above
scikit-learn's float64 threshold. Features are float32, and for a float32 ``x`` the test
``x <= float32_threshold`` is then exactly scikit-learn's ``double(x) <= threshold``: a
rounded-to-nearest threshold would send ``x`` equal to the upper neighbour of a midpoint
split the wrong way.

The model file (``save`` / ``load`` of :mod:`gpuseg.classify.model_file`) is an ``.npz``
holding only numeric arrays and a JSON header stored as a uint8 array, read with
``allow_pickle=False``; a SHA-256 over header and arrays turns a truncated or tampered file
into an :class:`~gpuseg.errors.InputError`, and a structural check (children after their
parent, inside their tree; feature indices in range) keeps a crafted file from sending any
predictor out of bounds or into a loop. The predictors are :mod:`gpuseg.classify.cpu`
(scikit-learn's traversal) and :mod:`gpuseg.classify.gpu` (the CUDA kernel), one chosen by
the features' device in :mod:`gpuseg.classify.predictor`.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.random((200, 3), dtype=np.float32)
>>> y = np.where(X[:, 0] > 0.5, 2, 1).astype(np.uint8)
>>> forest = train(X, y, trees=5)
>>> forest.n_trees, forest.n_features, forest.classes.tolist()
(5, 3, [1, 2])
>>> from gpuseg.classify import predictor
>>> proba = predictor.predict_proba(X[:4], forest)
>>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1))
((4, 2), True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError

ARRAYS = {  # name -> dtype: what a model file must hold, and nothing else
    "feature": np.dtype(np.int32),
    "threshold": np.dtype(np.float32),
    "left": np.dtype(np.int32),
    "right": np.dtype(np.int32),
    "value": np.dtype(np.float64),
    "tree_start": np.dtype(np.int64),
    "classes": np.dtype(np.int64),
}
LEAF = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Forest:
    """A trained forest as flat arrays (see the module docstring) and what it was trained on.

    Attributes
    ----------
    feature, threshold, left, right, value, tree_start : ndarray
        The flattened trees.
    classes : ndarray of int64
        The class values (label values of the annotations), in the order of ``value``'s columns.
    n_features : int
        Feature channels the forest expects.
    class_names : tuple of str
        A name per class (default: the value as text).
    features : dict
        The feature specification (``FeatureSpec.to_dict()``) the forest was trained on.
    info : dict
        Anything else worth keeping (training parameters, sample counts, versions).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    tree_start: np.ndarray
    classes: np.ndarray
    n_features: int
    class_names: tuple[str, ...] = ()
    features: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_trees(self) -> int:
        return len(self.tree_start) - 1

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat arrays by name, as stored in a model file."""
        return {name: getattr(self, name) for name in ARRAYS}

    def replace(self, **changes: Any) -> Forest:
        return dataclasses.replace(self, **changes)

    def first(self, k: int) -> Forest:
        """The forest of the first ``k`` trees (scikit-learn grows them independently: a fair ``k``-tree forest).

        Raises
        ------
        ParameterError
            ``k`` is not a whole number from 1 to :attr:`n_trees`.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_trees:
            raise ParameterError(f"{k!r} trees asked of a forest that holds {self.n_trees}; "
                                 f"ask for a whole number from 1 to {self.n_trees}")
        end = int(self.tree_start[k])
        return self.replace(feature=self.feature[:end], threshold=self.threshold[:end], left=self.left[:end],
                            right=self.right[:end], value=self.value[:end], tree_start=self.tree_start[: k + 1])

    def digest(self) -> str:
        """A hash of what decides its predictions (arrays, classes, features): names it in run fingerprints."""
        import hashlib
        import json

        h = hashlib.sha256(json.dumps([self.classes.tolist(), self.n_features, dict(self.features)],
                                      sort_keys=True, default=str).encode())
        for array in self.arrays().values():
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()[:24]


# --------------------------------------------------------------------------- training


def train(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    trees: int = 100,
    random_state: int = 0,
    workers: int | None = None,
    class_names: Sequence[str] | None = None,
    spec: Mapping[str, Any] | None = None,
    **params: Any,
) -> Forest:
    """Train scikit-learn's ``RandomForestClassifier`` on labelled feature vectors and flatten it.

    Parameters
    ----------
    features : (N, C) float32 array
        One row per labelled voxel.
    labels : (N,) int array
        Class value per row (> 0).
    trees : int
        Number of trees (ilastik's default: 100).
    random_state : int
        Seed: the same samples give the same forest.
    workers : int, optional
        Threads scikit-learn trains with (``n_jobs``; default all cores).
    class_names : sequence of str, optional
        One name per distinct class value, in increasing value order.
    spec : mapping, optional
        The feature specification (``FeatureSpec.to_dict()``), stored with the forest.
    **params
        Further ``RandomForestClassifier`` parameters.

    Returns
    -------
    Forest

    Raises
    ------
    ParameterError
        Fewer than two classes, or mismatched lengths.
    """
    from sklearn.ensemble import RandomForestClassifier

    features = np.ascontiguousarray(features, dtype=np.float32)
    labels = np.asarray(labels).ravel()
    if features.ndim != 2 or len(features) != len(labels):
        raise ParameterError(f"features {features.shape} and labels {labels.shape} must pair one row per label")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ParameterError(f"training needs at least two classes; the labels hold {classes.tolist()}")
    if trees < 1:
        raise ParameterError(f"trees {trees} must be at least 1")
    clf = RandomForestClassifier(n_estimators=int(trees), random_state=random_state, n_jobs=workers or -1, **params)
    clf.fit(features, labels)
    names = tuple(class_names) if class_names is not None else tuple(str(c) for c in clf.classes_)
    if len(names) != len(classes):
        raise ParameterError(f"{len(names)} class names given for {len(classes)} classes {classes.tolist()}")
    info = {"trees": int(trees), "random_state": random_state, "n_samples": len(labels),
            "samples_per_class": {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))},
            "params": {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool, type(None)))}}
    return flatten(clf, class_names=names, spec=spec, info=info)


def float32_floor(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 ``threshold``.

    Examples
    --------
    >>> t = np.float64(np.float32(1.0)) + 2.0**-25   # between two float32 neighbours
    >>> bool(float32_floor(np.array([t]))[0] <= t)
    True
    """
    t32 = np.asarray(threshold, np.float64).astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def flatten(clf: Any, *, class_names: Sequence[str] = (), spec: Mapping[str, Any] | None = None,
            info: Mapping[str, Any] | None = None) -> Forest:
    """Flatten a fitted ``RandomForestClassifier`` (single output) into a :class:`Forest`."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("feature", "threshold", "left", "right", "value")}
    starts = [0]
    for est in clf.estimators_:
        tree = est.tree_
        leaf = tree.children_left == LEAF
        offset = starts[-1]
        parts["feature"].append(np.where(leaf, LEAF, tree.feature).astype(np.int32))
        parts["threshold"].append(np.where(leaf, np.float32(0), float32_floor(tree.threshold)).astype(np.float32))
        parts["left"].append(np.where(leaf, LEAF, tree.children_left + offset).astype(np.int32))
        parts["right"].append(np.where(leaf, LEAF, tree.children_right + offset).astype(np.int32))
        value = tree.value[:, 0, :].astype(np.float64)
        total = value.sum(axis=1, keepdims=True)
        parts["value"].append(value / np.where(total == 0, 1, total))
        starts.append(offset + tree.node_count)
    arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return Forest(
        **arrays, tree_start=np.asarray(starts, np.int64), classes=np.asarray(clf.classes_, np.int64),
        n_features=int(clf.n_features_in_), class_names=tuple(class_names or (str(c) for c in clf.classes_)),
        features=dict(spec or {}), info=dict(info or {}),
    )


# --------------------------------------------------------------------------- sizing: fewer trees, shallower trees


def node_depth(forest: Forest) -> np.ndarray:
    """Depth of every node (roots 0), level by level from the roots.

    Examples
    --------
    >>> X = np.random.default_rng(0).random((200, 3), dtype=np.float32)
    >>> f = train(X, np.where(X[:, 0] > 0.5, 2, 1).astype(np.uint8), trees=2)
    >>> d = node_depth(f)
    >>> int(d[f.tree_start[0]]), bool(np.all(d[f.left[f.left >= 0]] == d[f.left >= 0] + 1))
    (0, True)
    """
    depth = np.zeros(forest.n_nodes, np.int32)
    level, d = forest.tree_start[:-1], 0
    while len(level):
        depth[level] = d
        level = level[forest.feature[level] != LEAF]
        level, d = np.concatenate([forest.left[level], forest.right[level]]), d + 1
    return depth


def max_depth(forest: Forest) -> int:
    """The depth of the deepest leaf (a root alone: 0)."""
    return int(node_depth(forest).max()) if forest.n_nodes else 0


def truncate(forest: Forest, depth: int) -> Forest:
    """Every tree cut at ``depth``: inner nodes there become leaves holding their subtree's class distribution.

    The distribution stored at an inner node is that of the (bootstrap-weighted) training samples
    reaching it, normalised: exactly the leaf a tree grown with ``max_depth=depth`` would hold there
    (the same splits above it), so the cut tree is that tree.

    Examples
    --------
    >>> X = np.random.default_rng(0).random((400, 3), dtype=np.float32)
    >>> f = train(X, np.where(X[:, 0] + 0.2 * X[:, 1] > 0.5, 2, 1).astype(np.uint8), trees=3)
    >>> g = truncate(f, 2)
    >>> max_depth(g), g.n_trees, bool(np.allclose(g.value.sum(axis=1), 1))
    (2, 3, True)
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ParameterError(f"tree depth {depth!r} must be a whole number >= 1")
    d = node_depth(forest)
    keep = d <= depth
    if keep.all():
        return forest
    new = np.cumsum(keep) - 1
    leaf = (forest.feature == LEAF) | (d == depth)
    child = lambda a: np.where(leaf, LEAF, new[np.where(leaf, 0, a)]).astype(np.int32)[keep]
    tree = np.repeat(np.arange(forest.n_trees), np.diff(forest.tree_start))
    counts = np.bincount(tree[keep], minlength=forest.n_trees)
    return forest.replace(
        feature=np.where(leaf, LEAF, forest.feature).astype(np.int32)[keep],
        threshold=np.where(leaf, np.float32(0), forest.threshold).astype(np.float32)[keep],
        left=child(forest.left), right=child(forest.right), value=forest.value[keep],
        tree_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


def check_features(features: Any, forest: Forest) -> None:
    """Raise unless ``features`` are rows ``(N, C)`` of the ``C`` channels ``forest`` was trained on."""
    if features.ndim != 2 or features.shape[1] != forest.n_features:
        raise ParameterError(f"features of shape {tuple(features.shape)} given to a forest of {forest.n_features} features")
