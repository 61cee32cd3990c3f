"""The 3×3 closed form of :mod:`gpuseg.eigen` fused into one numba loop, for numpy arrays.

:func:`gpuseg.eigen.symmetric_eigenvalues` written with array arithmetic makes about twenty
temporaries of the block's size and passes over memory as often; on the CPU it took 40 % of
a block's ``default`` features (0.44 s of a 146³ Hessian, 2-core EPYC). This loop computes
each voxel's three eigenvalues in registers, in float64, and writes them once. It is the same
algorithm (scale by the largest entry, shift by the mean of the diagonal, Smith's
trigonometric roots, the middle root from the trace), so the array form stays its reference
(``tests/test_filters_derivatives.py`` compares them) and the GPU keeps the array form.

The kernel is compiled on first use and cached on disk (numba's ``cache=True``); it releases
the GIL, so the engine's worker threads run it side by side.

Examples
--------
>>> import numpy as np
>>> a = [np.full((1, 1, 1), v, np.float32) for v in (2.0, 0.0, 0.0, -1.0, 0.0, 5.0)]
>>> eigenvalues_3x3(*a).ravel().round(6).tolist()
[5.0, 2.0, -1.0]
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

_SQRT3 = math.sqrt(3.0)


@numba.njit(nogil=True, cache=True)
def _smith(a00, a01, a02, a11, a12, a22, out):  # pragma: no cover - compiled by numba
    nz, ny, nx = a00.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                m00 = np.float64(a00[z, y, x])
                m01 = np.float64(a01[z, y, x])
                m02 = np.float64(a02[z, y, x])
                m11 = np.float64(a11[z, y, x])
                m12 = np.float64(a12[z, y, x])
                m22 = np.float64(a22[z, y, x])
                scale = max(abs(m00), abs(m01), abs(m02), abs(m11), abs(m12), abs(m22))
                if scale == 0.0 or not math.isfinite(m00 + m01 + m02 + m11 + m12 + m22):
                    # the zero matrix: zeros; an inf or NaN entry: NaN, as the array form gives
                    value = 0.0 if scale == 0.0 else math.nan
                    out[0, z, y, x] = value
                    out[1, z, y, x] = value
                    out[2, z, y, x] = value
                    continue
                inv = 1.0 / scale
                m00 *= inv
                m01 *= inv
                m02 *= inv
                m11 *= inv
                m12 *= inv
                m22 *= inv
                q = (m00 + m11 + m22) / 3.0
                d0 = m00 - q
                d1 = m11 - q
                d2 = m22 - q
                p = math.sqrt((d0 * d0 + d1 * d1 + d2 * d2 + 2.0 * (m01 * m01 + m02 * m02 + m12 * m12)) / 6.0)
                if p < 1e-30:  # A = qI
                    out[0, z, y, x] = q * scale
                    out[1, z, y, x] = q * scale
                    out[2, z, y, x] = q * scale
                    continue
                inv_p = 1.0 / p
                d0 *= inv_p
                d1 *= inv_p
                d2 *= inv_p
                b01 = m01 * inv_p
                b02 = m02 * inv_p
                b12 = m12 * inv_p
                half_det = 0.5 * (d0 * (d1 * d2 - b12 * b12) - b01 * (b01 * d2 - b12 * b02)
                                  + b02 * (b01 * b12 - d1 * b02))
                cos_phi = math.cos(math.acos(min(max(half_det, -1.0), 1.0)) / 3.0)
                # cos(φ + 2π/3) without a second cosine: φ ∈ [0, π/3], so sin φ ≥ 0
                sin_phi = math.sqrt(max(1.0 - cos_phi * cos_phi, 0.0))
                largest = q + 2.0 * p * cos_phi
                smallest = q - p * (cos_phi + _SQRT3 * sin_phi)
                middle = min(max(3.0 * q - largest - smallest, smallest), largest)
                out[0, z, y, x] = largest * scale
                out[1, z, y, x] = middle * scale
                out[2, z, y, x] = smallest * scale


def eigenvalues_3x3(a00: Any, a01: Any, a02: Any, a11: Any, a12: Any, a22: Any, *, out: Any = None) -> np.ndarray:
    """Eigenvalues, descending, of the symmetric 3×3 matrices given by six 3-D numpy arrays (any strides).

    Returns ``(3, *a00.shape)`` in the components' float dtype (into ``out`` when given).
    """
    if out is None:
        out = np.empty((3, *a00.shape), dtype=a00.dtype)
    _smith(a00, a01, a02, a11, a12, a22, out)
    return out
