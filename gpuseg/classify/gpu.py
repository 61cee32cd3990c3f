"""Forest inference on the GPU: one CUDA thread per voxel walks every tree (a CuPy ``RawKernel``).

The forest is the packed layout of :mod:`gpuseg.classify.layout` (after cuML FIL's ``sparse8``):
8-byte nodes read with one ``int2`` load through the read-only cache, the two children side by
side so a step is ``node + offset + (x > threshold)``, pure leaves carrying their class inside
the node, each tree breadth first so the top levels that every thread of a warp visits together
lie side by side. A 100-tree forest of 4 M nodes is 32 MB (plus its few mixed leaves): it fits
an H100's 50 MB L2, which the 16-byte nodes and dense leaf table before it (88 MB) did not.

* All threads of a warp walk the same tree at the same time (trees are the outer loop), so
  node reads near the root are broadcasts; feature reads ``X[v, f]`` of neighbouring voxels are
  neighbouring addresses when the features are channel-major ``(C, N)``, which is how
  :func:`gpuseg.features.compute_block` returns them — the kernel takes strides, so
  ``block.reshape(C, -1).T`` is read in place, without a transposed copy.
* Mixed leaves' class probabilities are a float32 table, read once per tree and voxel; the
  per-class sums are float64 registers (``K`` is compiled in; one add per tree and class, cheap
  next to the node loads, and it keeps 100-tree sums within 1e-6 of scikit-learn's), written as
  float32 with arbitrary strides, e.g. straight into a ``(K, z, y, x)`` output.
* Not done: a tree's top levels in shared memory (FIL's other trick); to be measured against the
  read-only cache when a GPU is at hand.

:func:`gpuseg.classify.layout.predict_proba_reference` walks the same packed arrays in numpy,
and the tests run this kernel's own source through the cupy test double (compiled as C++), so
the kernel's logic is tested against scikit-learn on machines without a GPU.

Examples
--------
>>> import numpy as np
>>> from gpuseg.classify import cpu, forest as fo, layout
>>> rng = np.random.default_rng(1)
>>> X = rng.random((300, 4), dtype=np.float32)
>>> f = fo.train(X, (X[:, 1] > 0.3).astype(np.uint8) + 1, trees=4)
>>> bool(np.array_equal(layout.predict_proba_reference(X, f), cpu.predict_proba(X, f)))
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import ParameterError
from .forest import Forest, check_features
from .layout import PAYLOAD, pack

THREADS = 256

KERNEL_SOURCE = r"""
// N_CLASSES, FEATURE_BITS and PAYLOAD are defined in front of this source when it is compiled.
extern "C" __global__ void forest_proba(
    const float* __restrict__ X, const long long x_stride_v, const long long x_stride_f,
    const int2* __restrict__ nodes, const long long* __restrict__ roots, const int n_trees,
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
        long long i = __ldg(roots + t);
        int2 node = __ldg(nodes + i);
        while (node.y != 0) {                       // word 1 is 0 only at a leaf
            const float value = x[(long long)(node.y & ((1 << FEATURE_BITS) - 1)) * x_stride_f];
            // left (node + offset) when x <= threshold, as scikit-learn (thresholds are float32-floored)
            i += (node.y >> FEATURE_BITS) + (value > __int_as_float(node.x));
            node = __ldg(nodes + i);
        }
        const int payload = node.x & PAYLOAD;       // a leaf's word 0 is a NaN carrying its payload
        if (node.x >= 0) {                          // pure leaf: its class has probability 1
#pragma unroll
            for (int k = 0; k < N_CLASSES; ++k) acc[k] += (k == payload) ? 1.0 : 0.0;
        } else {                                    // mixed leaf (sign bit): its row of the table
            const float* leaf = leaf_values + (long long)payload * N_CLASSES;
#pragma unroll
            for (int k = 0; k < N_CLASSES; ++k) acc[k] += __ldg(leaf + k);
        }
    }
#pragma unroll
    for (int k = 0; k < N_CLASSES; ++k) out[v * out_stride_v + k * out_stride_k] = (float)(acc[k] / n_trees);
}
"""


@functools.cache
def _kernel(n_classes: int, feature_bits: int):
    import cupy

    defines = f"#define N_CLASSES {int(n_classes)}\n#define FEATURE_BITS {int(feature_bits)}\n#define PAYLOAD {PAYLOAD}\n"
    return cupy.RawKernel(defines + KERNEL_SOURCE, "forest_proba")


@functools.lru_cache(maxsize=4)
def _device_arrays(forest: Forest, device_id: int):
    import cupy

    packed = pack(forest)
    with cupy.cuda.Device(device_id):
        arrays = (cupy.asarray(packed.nodes), cupy.asarray(packed.roots),
                  cupy.asarray(packed.leaf_values.astype(np.float32)))
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
    _kernel(forest.n_classes, pack(forest).feature_bits)(((n + THREADS - 1) // THREADS,), (THREADS,), args)
    return out
