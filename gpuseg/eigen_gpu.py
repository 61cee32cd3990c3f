"""The 3×3 closed form of :mod:`gpuseg.eigen` fused into one CUDA kernel, for cupy float32 arrays.

The GPU twin of :mod:`gpuseg.eigen_cpu`: one thread per voxel reads its six entries, solves in
float64 (scale by the largest entry, shift by the mean of the diagonal, Smith's trigonometric
roots, the middle root from the trace) and writes three float32 eigenvalues. Against the array
form it replaces about twenty passes over memory by one, and it gives the CPU's numbers: the
float32 array form loses up to 1 % of a channel's scale on the structure tensor's smallest
eigenvalue at large scales, where it is tiny against the largest.

``tests/test_filters_derivatives.py`` compares it, through the cupy test double (which compiles
the CUDA source as C++), with the numba loop and with numpy's ``eigvalsh``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

THREADS = 256

KERNEL_SOURCE = r"""
extern "C" __global__ void symmetric_eigenvalues_3x3(
    const float* a00, const float* a01, const float* a02, const float* a11, const float* a12, const float* a22,
    float* out, long long n)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double m00 = a00[i], m01 = a01[i], m02 = a02[i], m11 = a11[i], m12 = a12[i], m22 = a22[i];
    double scale = fmax(fmax(fmax(fabs(m00), fabs(m01)), fmax(fabs(m02), fabs(m11))), fmax(fabs(m12), fabs(m22)));
    double sum = m00 + m01 + m02 + m11 + m12 + m22;
    if (scale == 0.0 || sum - sum != 0.0) {  // the zero matrix: zeros; an inf or NaN entry: NaN
        float value = scale == 0.0 ? 0.0f : (float)NAN;
        out[i] = value; out[n + i] = value; out[2 * n + i] = value;
        return;
    }
    double inv = 1.0 / scale;
    m00 *= inv; m01 *= inv; m02 *= inv; m11 *= inv; m12 *= inv; m22 *= inv;
    double q = (m00 + m11 + m22) / 3.0;
    double d0 = m00 - q, d1 = m11 - q, d2 = m22 - q;
    double p = sqrt((d0 * d0 + d1 * d1 + d2 * d2 + 2.0 * (m01 * m01 + m02 * m02 + m12 * m12)) / 6.0);
    if (p < 1e-30) {  // A = qI
        float value = (float)(q * scale);
        out[i] = value; out[n + i] = value; out[2 * n + i] = value;
        return;
    }
    double inv_p = 1.0 / p;
    d0 *= inv_p; d1 *= inv_p; d2 *= inv_p;
    double b01 = m01 * inv_p, b02 = m02 * inv_p, b12 = m12 * inv_p;
    double half_det = 0.5 * (d0 * (d1 * d2 - b12 * b12) - b01 * (b01 * d2 - b12 * b02)
                             + b02 * (b01 * b12 - d1 * b02));
    double cos_phi = cos(acos(fmin(fmax(half_det, -1.0), 1.0)) / 3.0);
    double sin_phi = sqrt(fmax(1.0 - cos_phi * cos_phi, 0.0));  /* phi in [0, pi/3]: sin >= 0 */
    double largest = q + 2.0 * p * cos_phi;
    double smallest = q - p * (cos_phi + 1.7320508075688772 * sin_phi);
    double middle = fmin(fmax(3.0 * q - largest - smallest, smallest), largest);
    out[i] = (float)(largest * scale);
    out[n + i] = (float)(middle * scale);
    out[2 * n + i] = (float)(smallest * scale);
}
"""


@functools.cache
def _kernel() -> Any:
    import cupy

    return cupy.RawKernel(KERNEL_SOURCE, "symmetric_eigenvalues_3x3")


def eigenvalues_3x3(a00: Any, a01: Any, a02: Any, a11: Any, a12: Any, a22: Any, *, out: Any = None) -> Any:
    """Eigenvalues, descending, of the symmetric 3×3 matrices given by six cupy float32 arrays (any strides).

    Returns ``(3, *a00.shape)`` float32 (into ``out`` when given and C-contiguous; else copied there).
    """
    import cupy

    components = [cupy.ascontiguousarray(a, dtype=cupy.float32) for a in (a00, a01, a02, a11, a12, a22)]
    target = out if out is not None and out.flags.c_contiguous else cupy.empty((3, *a00.shape), cupy.float32)
    n = a00.size
    if n:
        _kernel()(((n + THREADS - 1) // THREADS,), (THREADS,), (*components, target, np.int64(n)))
    if out is not None and target is not out:
        out[...] = target
        return out
    return target
