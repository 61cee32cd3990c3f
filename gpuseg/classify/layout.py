"""The packed forest every predictor walks: 8-byte nodes, children side by side, pure leaves inside the node.

After cuML FIL's ``sparse8`` layout. A node is two 32-bit words:

==========  ==========================================  =====================================
node        word 0                                      word 1
==========  ==========================================  =====================================
inner       threshold (float32)                         ``feature | offset << feature_bits``
pure leaf   NaN whose payload is the class column       0
mixed leaf  NaN with the sign bit, payload: its row of  0
            :attr:`Packed.leaf_values`
==========  ==========================================  =====================================

* The children of an inner node are ``node + offset`` (left: ``x <= threshold``) and the node
  after it (right), so one index is stored, and a step is ``node + offset + (x > threshold)``.
* A leaf steps to itself: its offset is 0 and ``x > NaN`` is false. A kernel can walk several
  rows in lock step without a branch, and a leaf is recognised by word 1 being 0 (inner nodes
  have offset ≥ 1). Features are never NaN: gpuseg refuses such inputs before they get here.
* Each tree is renumbered breadth first: the top levels, which every row visits, lie together
  at the tree's start and stay cached.
* A fully grown tree's leaves are almost all pure (one class, probability 1): they carry their
  class in the node, and only the others keep a row of class probabilities in a separate
  table. A 100-tree forest of 4 M nodes packs into 32 MB plus its few mixed leaves, which an
  H100's 50 MB L2 holds; the 16-byte nodes and dense leaf table before took 88 MB.

Adding the class columns of pure leaves as 1.0 and the rows of mixed ones in float64, tree by
tree, and dividing by the tree count at the end gives scikit-learn's ``predict_proba`` to the
last bit (its leaves store the same normalised distributions; the same order of float64 adds).
:func:`predict_proba_reference` is that walk in numpy, the reference of the CPU
(:mod:`gpuseg.classify.cpu`) and GPU (:mod:`gpuseg.classify.gpu`) kernels.

Examples
--------
>>> from gpuseg.classify import forest as fo
>>> rng = np.random.default_rng(1)
>>> X = rng.random((300, 4), dtype=np.float32)
>>> f = fo.train(X, (X[:, 1] > 0.3).astype(np.uint8) + 1, trees=4)
>>> p = pack(f)
>>> p.nodes.dtype, p.nodes.shape == (f.n_nodes, 2), p.feature_bits
(dtype('int32'), True, 2)
>>> leaf = p.nodes[:, 1] == 0
>>> bool(np.isnan(p.nodes[leaf, 0].view(np.float32)).all()), int(leaf.sum()) == int((f.feature < 0).sum())
(True, True)
>>> from sklearn.ensemble import RandomForestClassifier   # the same trees, unflattened
>>> clf = RandomForestClassifier(4, random_state=0).fit(X, (X[:, 1] > 0.3) + 1)
>>> g = fo.flatten(clf)
>>> bool(np.array_equal(predict_proba_reference(X, g), clf.predict_proba(X)))
True
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ..errors import ParameterError
from .forest import LEAF, Forest, check_features

QUIET_NAN = 0x7FC00000  # float32 bits of a quiet NaN: exponent all ones, top mantissa bit set
MIXED = 1 << 31  # the sign bit: a mixed leaf
PAYLOAD = (1 << 22) - 1  # the NaN's remaining mantissa bits: a class column or a row of leaf_values


@dataclasses.dataclass(frozen=True, eq=False)
class Packed:
    """A forest in the packed layout (see the module docstring).

    Attributes
    ----------
    nodes : (M, 2) int32
        The node words; ``nodes.view(np.float32)[:, 0]`` are the thresholds.
    roots : (T,) int64
        Each tree's root (its first node).
    leaf_values : (L, K) float64
        Class probabilities of the mixed leaves (at least one row, so kernels always get an array).
    feature_bits : int
        Bits of word 1 that hold the feature index.
    """

    nodes: np.ndarray
    roots: np.ndarray
    leaf_values: np.ndarray
    feature_bits: int

    @property
    def n_classes(self) -> int:
        return int(self.leaf_values.shape[1])

    @property
    def feature_mask(self) -> int:
        return (1 << self.feature_bits) - 1

    @property
    def nbytes(self) -> int:
        """Bytes of nodes and leaf table: what must stay cached for a fast walk."""
        return int(self.nodes.nbytes + self.leaf_values.nbytes)


def breadth_first(forest: Forest) -> np.ndarray:
    """The forest's node indices in packed order: tree by tree, breadth first, each node's children side by side.

    ``breadth_first(forest)[i]`` is the index into ``forest``'s flat arrays of packed node ``i``.
    """
    order = []
    for t in range(forest.n_trees):
        level = np.array([forest.tree_start[t]], np.int64)
        while len(level):
            order.append(level)
            inner = level[forest.feature[level] != LEAF]
            level = np.stack([forest.left[inner], forest.right[inner]], axis=1).ravel().astype(np.int64)
    return np.concatenate(order)


@functools.lru_cache(maxsize=4)  # Forest hashes by identity: one packing per loaded forest
def pack(forest: Forest) -> Packed:
    """Lay ``forest`` out in the packed layout.

    Raises
    ------
    ParameterError
        A tree too large for the offsets left beside the feature index (over 2**(31 - feature_bits) nodes),
        or more than 2**22 mixed leaves.
    """
    order = breadth_first(forest)
    new_index = np.empty(forest.n_nodes, np.int64)
    new_index[order] = np.arange(forest.n_nodes)
    feature_bits = max(1, int(forest.n_features - 1).bit_length())
    leaf = forest.feature[order] == LEAF
    value = forest.value[order]
    pure = leaf & (np.count_nonzero(value, axis=1) == 1) & (value.max(axis=1) == 1.0)
    mixed = leaf & ~pure
    offset = np.where(leaf, 0, new_index[np.where(leaf, order, forest.left[order])] - np.arange(forest.n_nodes))
    if offset.max(initial=0) >= 1 << (31 - feature_bits):
        raise ParameterError(f"a tree of this forest is too large to pack: a child lies {offset.max()} nodes after "
                             f"its parent, the most {1 << (31 - feature_bits)} with {forest.n_features} features")
    n_mixed = int(np.count_nonzero(mixed))
    if n_mixed > PAYLOAD + 1:
        raise ParameterError(f"this forest has {n_mixed} leaves of mixed classes, more than the {PAYLOAD + 1} a "
                             "packed forest can hold; train fewer trees (--trees) or smaller ones")
    payload = np.zeros(forest.n_nodes, np.int64)
    payload[pure] = np.argmax(value[pure], axis=1)
    payload[mixed] = np.arange(n_mixed)
    leaf_word = (QUIET_NAN | payload | np.where(mixed, MIXED, 0)).astype(np.uint32).view(np.int32)
    nodes = np.empty((forest.n_nodes, 2), np.int32)
    nodes[:, 0] = np.where(leaf, leaf_word, forest.threshold[order].astype(np.float32).view(np.int32))
    nodes[:, 1] = np.where(leaf, 0, forest.feature[order] | offset << feature_bits)
    leaf_values = value[mixed] if mixed.any() else np.zeros((1, forest.n_classes))
    return Packed(nodes, new_index[forest.tree_start[:-1]], np.ascontiguousarray(leaf_values, np.float64),
                  feature_bits)


def predict_proba_reference(features: np.ndarray, forest: Forest) -> np.ndarray:
    """The kernels' walk in numpy: packed nodes, float32 comparisons, float64 sums tree by tree.

    Parameters
    ----------
    features : (N, C) float32 array
    forest : Forest

    Returns
    -------
    (N, K) float64 array
        Equal to scikit-learn's ``predict_proba`` of the forest the flat arrays came from.
    """
    features = np.asarray(features, dtype=np.float32)
    check_features(features, forest)
    packed = pack(forest)
    word0, word1 = packed.nodes[:, 0].astype(np.int64), packed.nodes[:, 1].astype(np.int64)
    threshold = packed.nodes[:, 0].view(np.float32)
    acc = np.zeros((len(features), packed.n_classes), np.float64)
    rows = np.arange(len(features))
    for root in packed.roots:
        node = np.full(len(features), root, np.int64)
        active = rows if word1[root] else rows[:0]
        while len(active):  # rows still at an inner node
            here = node[active]
            w = word1[here]
            node[active] = here + (w >> packed.feature_bits) + (features[active, w & packed.feature_mask] > threshold[here])
            active = active[word1[node[active]] != 0]
        leaf = word0[node]
        pure = leaf >= 0
        acc[rows[pure], leaf[pure] & PAYLOAD] += 1.0
        acc[~pure] += packed.leaf_values[leaf[~pure] & PAYLOAD]
    return acc / len(packed.roots)
