"""Forest inference on the GPU: one CUDA thread per voxel walks every tree (a CuPy ``RawKernel``).

Layout (after cuML FIL's "sparse" forests and APOC's per-pixel OpenCL kernels):

* every node is one 16-byte record ``(feature, threshold bits, left, right)`` read with a
  single ``int4`` load through the read-only cache; a leaf has ``feature = -1`` and keeps
  the row of its class distribution in ``left``;
* each tree's nodes are renumbered breadth first, so the top levels that every thread of a
  warp visits together lie side by side in memory and are served from cache;
* leaf distributions are a separate dense float32 table ``(leaves, K)``, read only once
  per tree and voxel;
* all threads of a warp walk the same tree at the same time (trees are the outer loop),
  so node reads near the root are broadcasts; feature reads ``X[v, f]`` of neighbouring
  voxels are neighbouring addresses when the features are channel-major ``(C, N)``, which
  is how :func:`gpuseg.features.compute_block` returns them — the kernel takes strides, so
  ``block.reshape(C, -1).T`` is read in place, without a transposed copy;
* leaf distributions and thresholds are float32; the per-class sums are float64 registers
  (``K`` is compiled in; one add per tree and class, cheap next to the node loads, and it
  keeps 100-tree sums within 1e-6 of scikit-learn's), written as float32 with arbitrary
  strides, e.g. straight into a ``(K, z, y, x)`` output.

:func:`predict_proba_reference` runs the same packed arrays through the same steps in
numpy, so the kernel's logic (packing, renumbering, float32 comparisons, sums) is tested
against scikit-learn on machines without a GPU.

Examples
--------
>>> import numpy as np
>>> from gpuseg.classify import cpu, forest as fo
>>> rng = np.random.default_rng(1)
>>> X = rng.random((300, 4), dtype=np.float32)
>>> f = fo.train(X, (X[:, 1] > 0.3).astype(np.uint8) + 1, trees=4)
>>> bool(np.allclose(predict_proba_reference(X, f), cpu.predict_proba(X, f), atol=1e-6))
True
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from ..errors import ParameterError
from .forest import LEAF, Forest, check_features

THREADS = 256

KERNEL_SOURCE = r"""
// N_CLASSES is defined in front of this source when it is compiled (one build per class count).
extern "C" __global__ void forest_proba(
    const float* __restrict__ X, const long long x_stride_v, const long long x_stride_f,
    const int4* __restrict__ nodes, const int* __restrict__ roots, const int n_trees,
    const float* __restrict__ leaf_values,
    float* __restrict__ out, const long long out_stride_v, const long long out_stride_k,
    const long long n)
{
    const long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= n) return;
    const float* x = X + v * x_stride_v;
    double acc[N_CLASSES];  // float64 sums: 100 float32 adds could drift past 1e-6; FP64 adds are cheap here
#pragma unroll
    for (int k = 0; k < N_CLASSES; ++k) acc[k] = 0.0;
    for (int t = 0; t < n_trees; ++t) {
        int4 node = __ldg(nodes + __ldg(roots + t));
        while (node.x >= 0) {                       // node.x: feature index, -1 at a leaf
            const float value = x[(long long)node.x * x_stride_f];
            // scikit-learn goes left when x <= threshold (thresholds are float32-floored)
            node = __ldg(nodes + ((value <= __int_as_float(node.y)) ? node.z : node.w));
        }
        const float* leaf = leaf_values + (long long)node.z * N_CLASSES;
#pragma unroll
        for (int k = 0; k < N_CLASSES; ++k) acc[k] += __ldg(leaf + k);
    }
#pragma unroll
    for (int k = 0; k < N_CLASSES; ++k) out[v * out_stride_v + k * out_stride_k] = (float)(acc[k] / n_trees);
}
"""


@dataclasses.dataclass(frozen=True, eq=False)
class Packed:
    """A forest in the kernel's layout (numpy arrays; see the module docstring).

    Attributes
    ----------
    nodes : (M, 4) int32
        ``feature, threshold bits, left, right``; leaves: ``-1, 0, leaf row, leaf row``.
    roots : (T,) int32
        Each tree's root (its first node after renumbering).
    leaf_values : (L, K) float32
        Leaf class distributions.
    """

    nodes: np.ndarray
    roots: np.ndarray
    leaf_values: np.ndarray

    @property
    def n_classes(self) -> int:
        return self.leaf_values.shape[1]


def _breadth_first(forest: Forest, lo: int, hi: int) -> np.ndarray:
    """Node indices of one tree in breadth-first order."""
    order, level = [], np.array([lo])
    while len(level):
        order.append(level)
        inner = level[forest.feature[level] != LEAF]
        level = np.stack([forest.left[inner], forest.right[inner]], axis=1).ravel()
    return np.concatenate(order)


@functools.lru_cache(maxsize=4)  # Forest hashes by identity
def pack(forest: Forest) -> Packed:
    """Lay ``forest`` out for the kernel: breadth-first 16-byte node records and a leaf table."""
    order = np.concatenate([_breadth_first(forest, int(forest.tree_start[t]), int(forest.tree_start[t + 1]))
                            for t in range(forest.n_trees)])
    new_index = np.empty(forest.n_nodes, np.int64)
    new_index[order] = np.arange(forest.n_nodes)
    leaf = forest.feature[order] == LEAF
    leaf_row = np.cumsum(leaf) - 1
    nodes = np.empty((forest.n_nodes, 4), np.int32)
    nodes[:, 0] = np.where(leaf, -1, forest.feature[order])
    nodes[:, 1] = forest.threshold[order].astype(np.float32).view(np.int32)
    nodes[:, 2] = np.where(leaf, leaf_row, new_index[np.maximum(forest.left[order], 0)])
    nodes[:, 3] = np.where(leaf, leaf_row, new_index[np.maximum(forest.right[order], 0)])
    roots = new_index[forest.tree_start[:-1]].astype(np.int32)
    leaf_values = np.ascontiguousarray(forest.value[order][leaf], dtype=np.float32)
    if forest.n_nodes >= 2**31:
        raise ParameterError(f"forest of {forest.n_nodes} nodes is too large for 32-bit node indices")
    return Packed(nodes, roots, leaf_values)


def predict_proba_reference(features: np.ndarray, forest: Forest) -> np.ndarray:
    """The kernel's steps in numpy: packed nodes, float32 comparisons, float64 sums, tree by tree.

    Parameters
    ----------
    features : (N, C) float32 array
    forest : Forest

    Returns
    -------
    (N, K) float32 array
    """
    features = np.asarray(features, dtype=np.float32)
    check_features(features, forest)
    packed = pack(forest)
    feature, threshold = packed.nodes[:, 0], packed.nodes[:, 1].view(np.float32)
    left, right = packed.nodes[:, 2], packed.nodes[:, 3]
    acc = np.zeros((len(features), packed.n_classes), np.float64)
    rows = np.arange(len(features))
    for root in packed.roots:
        node = np.full(len(features), root, np.int64)
        active = rows
        while len(active):  # voxels still at an inner node
            here = node[active]
            go_left = features[active, feature[here]] <= threshold[here]
            node[active] = np.where(go_left, left[here], right[here])
            active = active[feature[node[active]] >= 0]
        acc += packed.leaf_values[left[node]]
    return (acc / len(packed.roots)).astype(np.float32)


@functools.cache
def _kernel(n_classes: int):
    import cupy

    return cupy.RawKernel(f"#define N_CLASSES {int(n_classes)}\n" + KERNEL_SOURCE, "forest_proba")


@functools.lru_cache(maxsize=4)
def _device_arrays(forest: Forest, device_id: int):
    import cupy

    packed = pack(forest)
    with cupy.cuda.Device(device_id):
        arrays = (cupy.asarray(packed.nodes), cupy.asarray(packed.roots), cupy.asarray(packed.leaf_values))
        # uploaded on this thread's stream; other threads' streams read them without ordering, so wait here
        cupy.cuda.get_current_stream().synchronize()
        return arrays


def predict_proba(features: Any, forest: Forest, out: Any = None) -> Any:
    """Class probabilities ``(N, K)`` float32 of cupy feature rows ``(N, C)``, on the GPU.

    Parameters
    ----------
    features : (N, C) cupy array
        float32; any strides (e.g. ``block.reshape(C, -1).T``).
    forest : Forest
    out : (N, K) cupy float32 array, optional
        Written in place; any strides (e.g. ``probabilities.reshape(K, -1).T``).

    Returns
    -------
    (N, K) cupy float32 array
    """
    import cupy

    check_features(features, forest)
    if features.dtype != cupy.float32:
        features = features.astype(cupy.float32)
    n = features.shape[0]
    if out is None:
        out = cupy.empty((n, forest.n_classes), cupy.float32)
    if out.shape != (n, forest.n_classes) or out.dtype != cupy.float32:
        raise ParameterError(f"out must be float32 of shape {(n, forest.n_classes)}, not {out.dtype} {out.shape}")
    if n == 0:
        return out
    nodes, roots, leaf_values = _device_arrays(forest, cupy.cuda.Device().id)
    item = features.itemsize
    args = (
        features, np.int64(features.strides[0] // item), np.int64(features.strides[1] // item),
        nodes, roots, np.int32(forest.n_trees), leaf_values,
        out, np.int64(out.strides[0] // item), np.int64(out.strides[1] // item), np.int64(n),
    )
    _kernel(forest.n_classes)(((n + THREADS - 1) // THREADS,), (THREADS,), args)
    return out
