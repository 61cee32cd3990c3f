"""A forest sized by the data: the fewest trees (and a depth cut, if it pays) whose labels agree with the
grown forest's on a sample of voxels nobody labelled.

scikit-learn grows its trees independently, so the first *k* trees are a fair *k*-tree forest, and one
traversal per tree (:func:`curves`) gives the labels of every prefix at once. See docs/classify.md,
"Forest size", for the rule and the curves measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError
from . import forest as fo
from .cpu import predict_proba
from .forest import LEAF, Forest, check_features
from .layout import breadth_first, pack

AGREEMENT = 0.999
"""Share of a sample's voxels on which a smaller forest's labels must equal the grown forest's."""
CONFIDENCE_Z = 2.33
"""Standard errors the sample's agreement must clear the target by (one-sided 99 %)."""
DEPTH_GAIN = 0.05
"""Cutting the trees' depth is adopted only if it saves at least this share of node visits."""


@dataclasses.dataclass(frozen=True)
class Sizing:
    """How a forest was sized by :func:`size`: what was kept, and how well it agrees with the grown forest.

    Attributes
    ----------
    trees, depth : int
        Trees kept (the first ones) and the depth they were cut at (``grown_depth``: not cut).
    agreement : float
        Share of the sample's voxels whose label the kept forest gives as the grown one does.
    sample : int
        Voxels in the sample.
    grown_trees, grown_depth : int
        The forest as trained.
    visits, grown_visits : float
        Mean inner-node visits per voxel (summed over the trees) of the kept and the grown forest.
    target : float
        The agreement asked for.
    stderr : float
        The standard error of ``agreement`` (which clears ``target`` by ``z`` of them).
    z : float
    """

    trees: int
    depth: int
    agreement: float
    sample: int
    grown_trees: int
    grown_depth: int
    visits: float
    grown_visits: float
    target: float = AGREEMENT
    stderr: float = 0.0
    z: float = CONFIDENCE_Z

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Curves:
    """Agreement with the grown forest and node visits of every prefix of trees, at each depth.

    ``agreement[j, k - 1]`` and ``visits[j, k - 1]`` belong to the first ``k`` trees cut at
    ``depths[j]`` (``depths[0]`` is the grown depth: not cut); ``visits`` are mean inner-node
    visits per voxel summed over those trees. ``sample`` voxels were compared.
    """

    depths: tuple[int, ...]
    agreement: np.ndarray
    visits: np.ndarray
    sample: int
    stderr: np.ndarray | None = None
    score: np.ndarray | None = None


def curves(forest: Forest, features: Any, reference: Any = None, depths: Sequence[int] = (),
           groups: Any = None, score: Callable[[np.ndarray], float] | None = None) -> Curves:
    """Agreement of every first-``k``-tree forest (``k`` = 1 … all) with ``reference`` labels, and its node visits.

    One traversal per tree: each voxel's leaf in the grown tree gives, through its ancestor at
    each depth of ``depths``, what the tree cut there would answer, so the cut forests cost no
    traversal of their own. ``reference`` defaults to the grown forest's own labels.

    ``stderr`` is the agreement's standard error: neighbouring voxels disagree together, so
    with ``groups`` (a block number per row, e.g. 8³ blocks of a crop) it is the blocks' (a
    cluster sample's ratio estimate), never below the binomial one of independent voxels.
    With ``score`` (e.g. accuracy against a truth), ``score[j, k - 1]`` is what it returns for
    the class values that forest gives the rows.
    """
    X = np.ascontiguousarray(features, dtype=np.float32)
    check_features(X, forest)
    if reference is None:
        reference = forest.classes[np.argmax(predict_proba(X, forest), axis=1)]
    reference = np.asarray(reference)
    ref_index = np.searchsorted(forest.classes, reference)
    grown = fo.max_depth(forest)
    cuts = [grown, *sorted({int(d) for d in depths if 1 <= int(d) < grown}, reverse=True)]
    depth = fo.node_depth(forest)
    inner = np.flatnonzero(forest.feature != LEAF)
    parent = np.arange(forest.n_nodes)
    parent[forest.left[inner]] = inner
    parent[forest.right[inner]] = inner
    ancestors = []
    for cut in cuts:  # each node's ancestor at depth `cut` (itself if not deeper)
        anc = np.arange(forest.n_nodes)
        for level in range(cut + 1, grown + 1):
            at = np.flatnonzero(depth == level)
            anc[at] = anc[parent[at]]
        ancestors.append(anc)
    n, k, m = forest.n_trees, forest.n_classes, len(X)
    group = np.zeros(m, np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    sizes = np.bincount(group).astype(np.float64)
    agreement, visits, stderr, scores = (np.zeros((len(cuts), n)) for _ in range(4))
    acc = np.zeros((len(cuts), m, k))
    from .walk import apply  # numba, imported on first use

    leaves = breadth_first(forest)[apply(X, pack(forest))]  # (trees, rows): each row's leaf in each tree
    for t, leaf in enumerate(leaves):
        for j, (cut, anc) in enumerate(zip(cuts, ancestors)):
            acc[j] += forest.value[anc[leaf]]
            visits[j, t] = np.minimum(depth[leaf], cut).mean()
            labels = np.argmax(acc[j] / (t + 1), axis=1)  # as predict_proba divides: the same ties
            differ = labels != ref_index
            if score is not None:
                scores[j, t] = score(forest.classes[labels])
            rate = differ.mean()
            agreement[j, t] = 1 - rate
            binomial = ((differ.sum() + 0.5) / (m + 1) * (1 - rate) / m) ** 0.5
            cluster = 0.0
            if len(sizes) > 1:
                d = np.bincount(group, weights=differ, minlength=len(sizes))
                cluster = (len(sizes) / (len(sizes) - 1) * np.sum((d - rate * sizes) ** 2)) ** 0.5 / m
            stderr[j, t] = max(binomial, cluster)
    return Curves(tuple(cuts), agreement, np.cumsum(visits, axis=1), m, stderr,
                  None if score is None else scores)


def smallest(agreement: np.ndarray, target: float = AGREEMENT, stderr: np.ndarray | None = None,
             z: float = CONFIDENCE_Z) -> int:
    """The fewest trees ``k`` from which on every larger prefix agrees on at least ``target`` (0: none does).

    With ``stderr``, the agreement less ``z`` standard errors must reach ``target`` (a one-sided
    confidence bound; the grown forest itself, the last prefix, always qualifies).
    """
    bound = np.asarray(agreement) - (0 if stderr is None else z * np.asarray(stderr))
    ok = bound >= target
    ok[-1] |= agreement[-1] == 1
    if not ok[-1]:
        return 0
    fails = np.flatnonzero(~ok)
    return int(fails[-1]) + 2 if len(fails) else 1


def size(forest: Forest, features: Any, reference: Any = None, *, target: float = AGREEMENT,
         depths: Sequence[int] = (), groups: Any = None, z: float = CONFIDENCE_Z) -> tuple[Forest, Sizing]:
    """The smallest forest (first trees, cut depth) whose labels agree with ``forest``'s on ``target`` of ``features``.

    Every prefix of trees is measured (:func:`curves`); the fewest trees from which on every larger
    prefix agrees, by :data:`CONFIDENCE_Z` standard errors, are kept. Cut ``depths`` (e.g. three
    quarters and half the grown depth) can be tried too; one is adopted only when it saves at
    least :data:`DEPTH_GAIN` of the node visits of the uncut choice, at the same agreement. By
    default none is: on every forest of ``benchmarks/forest_size.py`` no cut paid, and each tried
    costs a third of the sizing's time.

    Parameters
    ----------
    forest : Forest
        The grown forest.
    features : (N, C) array
        The sample: feature rows of voxels the forest was not trained on.
    reference : (N,) array, optional
        ``forest``'s labels of the sample, if already known.
    target : float
        Agreement asked for (default 99.9 %).

    Returns
    -------
    (Forest, Sizing)
        The kept forest (its ``info`` unchanged) and how it was chosen.
    """
    if not 0 < target <= 1:
        raise ParameterError(f"agreement target {target} must lie in (0, 1]")
    if len(features) == 0:
        raise ParameterError("sizing a forest needs a sample of at least one voxel")
    grown = fo.max_depth(forest)
    c = curves(forest, features, reference, depths, groups)
    choices = []
    for j, cut in enumerate(c.depths):
        k = smallest(c.agreement[j], target, None if c.stderr is None else c.stderr[j], z)
        if k:
            choices.append((float(c.visits[j, k - 1]), j, k, cut))
    if not choices or choices[0][1] != 0:  # a reference not the grown forest's own labels: keep every tree
        choices.insert(0, (float(c.visits[0, -1]), 0, forest.n_trees, grown))
    uncut = choices[0]
    best = min(choices)
    if best[0] > (1 - DEPTH_GAIN) * uncut[0]:
        best = uncut
    visits, j, k, cut = best
    kept = forest.first(k)
    if cut < grown:
        kept = fo.truncate(kept, cut)
    return kept, Sizing(trees=k, depth=cut, agreement=float(c.agreement[j, k - 1]), sample=c.sample,
                        grown_trees=forest.n_trees, grown_depth=grown, visits=visits,
                        grown_visits=float(c.visits[0, -1]), target=target,
                        stderr=float(0 if c.stderr is None else c.stderr[j, k - 1]), z=z)
