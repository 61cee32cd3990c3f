"""The CPU forest walk: numba kernels over the packed layout of :mod:`gpuseg.classify.layout`.

Eight rows walk one tree in lock step, branch free: a step is
``node + offset + (x[feature] > threshold)``, and a leaf is a node that steps to itself (its
offset is 0 and its threshold NaN), so a slot that reached its leaf just stays until all eight
have. Eight independent chains of loads hide each other's cache misses; one row at a time
waits for every node in turn. The trees are the outer loop over a whole call's rows, so a
tree (tens to hundreds of kB) stays in L2 while every row meets it. Measured side by side
(``benchmarks/cpu_predictors.py``): 1.5–2.5× scikit-learn's traversal on one thread, with the
same probabilities to the last bit.

The kernels are compiled on first use (about 2 s) and cached on disk beside this module
(numba's ``cache=True``), so later processes load them in milliseconds. They release the GIL:
the engine's worker threads predict their blocks in parallel.

The eight slots are written out by hand: numba keeps scalars in registers, not a small array.

Examples
--------
>>> from gpuseg.classify import forest as fo, layout
>>> rng = np.random.default_rng(1)
>>> X = rng.random((300, 4), dtype=np.float32)
>>> f = fo.train(X, (X[:, 1] > 0.3).astype(np.uint8) + 1, trees=4)
>>> bool(np.array_equal(proba_sums(X, layout.pack(f)) / 4, layout.predict_proba_reference(X, f)))
True
"""

from __future__ import annotations

import numba
import numpy as np

from .layout import PAYLOAD, Packed

_U = np.uint64  # unsigned indices: numba adds no wrap-around test for them


@numba.njit(nogil=True, cache=True, inline="always")
def _leaves8(ints, floats, root, X, r, m, C, fb, fmask):
    """The leaves that rows ``r … r + m - 1`` (m ≤ 8; missing slots repeat the last row) reach in one tree."""
    x0 = _U(r * C)
    x1 = _U((r + min(1, m - 1)) * C)
    x2 = _U((r + min(2, m - 1)) * C)
    x3 = _U((r + min(3, m - 1)) * C)
    x4 = _U((r + min(4, m - 1)) * C)
    x5 = _U((r + min(5, m - 1)) * C)
    x6 = _U((r + min(6, m - 1)) * C)
    x7 = _U((r + min(7, m - 1)) * C)
    i0 = i1 = i2 = i3 = i4 = i5 = i6 = i7 = root
    moved = True
    while moved:
        w0 = ints[_U(2) * i0 + _U(1)]
        w1 = ints[_U(2) * i1 + _U(1)]
        w2 = ints[_U(2) * i2 + _U(1)]
        w3 = ints[_U(2) * i3 + _U(1)]
        w4 = ints[_U(2) * i4 + _U(1)]
        w5 = ints[_U(2) * i5 + _U(1)]
        w6 = ints[_U(2) * i6 + _U(1)]
        w7 = ints[_U(2) * i7 + _U(1)]
        n0 = i0 + _U(w0 >> fb) + _U(X[x0 + _U(w0 & fmask)] > floats[_U(2) * i0])
        n1 = i1 + _U(w1 >> fb) + _U(X[x1 + _U(w1 & fmask)] > floats[_U(2) * i1])
        n2 = i2 + _U(w2 >> fb) + _U(X[x2 + _U(w2 & fmask)] > floats[_U(2) * i2])
        n3 = i3 + _U(w3 >> fb) + _U(X[x3 + _U(w3 & fmask)] > floats[_U(2) * i3])
        n4 = i4 + _U(w4 >> fb) + _U(X[x4 + _U(w4 & fmask)] > floats[_U(2) * i4])
        n5 = i5 + _U(w5 >> fb) + _U(X[x5 + _U(w5 & fmask)] > floats[_U(2) * i5])
        n6 = i6 + _U(w6 >> fb) + _U(X[x6 + _U(w6 & fmask)] > floats[_U(2) * i6])
        n7 = i7 + _U(w7 >> fb) + _U(X[x7 + _U(w7 & fmask)] > floats[_U(2) * i7])
        moved = ((n0 != i0) | (n1 != i1) | (n2 != i2) | (n3 != i3) | (n4 != i4) | (n5 != i5) | (n6 != i6)
                 | (n7 != i7))
        i0, i1, i2, i3, i4, i5, i6, i7 = n0, n1, n2, n3, n4, n5, n6, n7
    return i0, i1, i2, i3, i4, i5, i6, i7


@numba.njit(nogil=True, cache=True)
def _proba_sums(ints, floats, roots, leaf_values, X, C, acc, K, fb):
    n = len(acc) // K
    fmask = (1 << fb) - 1
    for t in range(len(roots)):
        root = _U(roots[t])
        for r in range(0, n, 8):
            m = min(8, n - r)
            leaves = _leaves8(ints, floats, root, X, r, m, C, fb, fmask)
            for j in range(m):
                word = ints[_U(2) * leaves[j]]
                at = (r + j) * K
                if word >= 0:  # a pure leaf: its class column
                    acc[at + (word & PAYLOAD)] += 1.0
                else:  # a mixed leaf: its row of class probabilities
                    row = (word & PAYLOAD) * K
                    for k in range(K):
                        acc[at + k] += leaf_values[row + k]


@numba.njit(nogil=True, cache=True)
def _apply(ints, floats, roots, X, C, out, fb):
    n = len(out) // len(roots)
    fmask = (1 << fb) - 1
    for t in range(len(roots)):
        root = _U(roots[t])
        for r in range(0, n, 8):
            m = min(8, n - r)
            leaves = _leaves8(ints, floats, root, X, r, m, C, fb, fmask)
            for j in range(m):
                out[t * n + r + j] = leaves[j]


def _rows(features: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(features, dtype=np.float32)


def proba_sums(features: np.ndarray, packed: Packed) -> np.ndarray:
    """Per-row sums over the trees of their leaves' class probabilities, ``(N, K)`` float64.

    Divided by the number of trees they are scikit-learn's ``predict_proba``, to the last bit.

    Parameters
    ----------
    features : (N, C) array
        Copied to a C-contiguous float32 array if it is not one.
    packed : Packed
    """
    X = _rows(features)
    acc = np.zeros((len(X), packed.n_classes), np.float64)
    ints = packed.nodes.reshape(-1)
    _proba_sums(ints, ints.view(np.float32), packed.roots, packed.leaf_values.reshape(-1), X.reshape(-1),
                X.shape[1], acc.reshape(-1), packed.n_classes, packed.feature_bits)
    return acc


def apply(features: np.ndarray, packed: Packed) -> np.ndarray:
    """The packed index of the leaf each row reaches in each tree, ``(T, N)`` int64 (scikit-learn's ``apply``, transposed)."""
    X = _rows(features)
    out = np.empty((len(packed.roots), len(X)), np.uint64)
    ints = packed.nodes.reshape(-1)
    _apply(ints, ints.view(np.float32), packed.roots, X.reshape(-1), X.shape[1], out.reshape(-1),
           packed.feature_bits)
    return out.view(np.int64)
