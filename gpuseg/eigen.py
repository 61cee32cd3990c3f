"""Closed-form eigenvalues of symmetric 2×2 and 3×3 matrices, voxel by voxel, on CPU or GPU.

Tensor features (Hessian, structure tensor) give one small symmetric matrix per voxel.
A batched ``eigvalsh`` would need the matrices gathered into an ``(..., 3, 3)`` array and
an iterative solver per voxel; the closed forms below use only elementwise array
arithmetic, so they run unchanged on numpy and cupy, and are the reference for the 3×3 form fused
into one loop in float64: numba on the CPU for 3-D blocks (:mod:`gpuseg.eigen_cpu`, 3.7× faster
than the array form there) and a CUDA kernel for float32 on the GPU (:mod:`gpuseg.eigen_gpu`).

* 2×2: ``(a + c) / 2 ± hypot((a - c) / 2, b)``.
* 3×3: the trigonometric method (O. K. Smith, "Eigenvalues of a symmetric 3 × 3 matrix",
  Comm. ACM 4(4), 1961): with ``q = tr(A) / 3`` and ``p = sqrt(tr((A - qI)²) / 6)``, the
  matrix ``B = (A - qI) / p`` has eigenvalues ``2 cos(φ + 2πk/3)`` where
  ``φ = arccos(det(B) / 2) / 3``. Shifting by ``q`` and scaling by ``p`` first keeps it
  accurate in float32; a matrix with ``p = 0`` is ``qI`` and returns ``q`` three times
  (zero matrices included).

Eigenvalues come out sorted in descending order (largest first), as vigra and
fastfilters, and therefore ilastik, return them.

Components are given in the order of the upper triangle, row by row:
``(a00, a01, a02, a11, a12, a22)`` for 3×3 and ``(a00, a01, a11)`` for 2×2.

Examples
--------
>>> import numpy as np
>>> a = [np.array([2.0]), np.array([0.0]), np.array([0.0]),
...      np.array([-1.0]), np.array([0.0]), np.array([5.0])]
>>> symmetric_eigenvalues(a).ravel().round(6).tolist()
[5.0, 2.0, -1.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend
from .errors import ParameterError


def n_components(ndim: int) -> int:
    """Number of distinct entries of a symmetric ``ndim × ndim`` matrix (3 for 2-D, 6 for 3-D)."""
    return ndim * (ndim + 1) // 2


def symmetric_eigenvalues(components: Sequence[Any], out: Any = None) -> Any:
    """Eigenvalues of symmetric 2×2 or 3×3 matrices given by their upper-triangle arrays.

    Parameters
    ----------
    components : sequence of 3 or 6 arrays
        ``(a00, a01, a11)`` or ``(a00, a01, a02, a11, a12, a22)``, all of one shape and
        on one device (numpy or cupy), floating point.
    out : array, optional
        ``(n, *shape)`` array to write into (n = 2 or 3); it may not share memory with
        ``components``.

    Returns
    -------
    array
        ``(n, *shape)``, eigenvalues in descending order along the first axis, in the
        components' dtype.

    Examples
    --------
    >>> import numpy as np
    >>> symmetric_eigenvalues([np.array([1.0]), np.array([2.0]), np.array([1.0])]).ravel().tolist()
    [3.0, -1.0]
    """
    if len(components) == 3:
        return _eigenvalues_2x2(*components, out=out)
    if len(components) == 6:
        first = components[0]
        if isinstance(first, np.ndarray) and first.ndim == 3:
            from .eigen_cpu import eigenvalues_3x3  # numba: compiled on first use, not at import
        elif backend.for_array(first).name == "gpu" and first.dtype == np.float32:
            from .eigen_gpu import eigenvalues_3x3
        else:
            return _eigenvalues_3x3(*components, out=out)
        _output(first, 3, out)  # the shape check
        return eigenvalues_3x3(*components, out=out)
    raise ParameterError(f"{len(components)} components given; a symmetric 2x2 matrix has 3, a 3x3 has 6")


def _output(first: Any, n: int, out: Any) -> Any:
    xp = backend.for_array(first).xp
    if out is None:
        return xp.empty((n, *first.shape), dtype=first.dtype)
    if tuple(out.shape) != (n, *first.shape):
        raise ParameterError(f"out has shape {tuple(out.shape)}; expected {(n, *first.shape)}")
    return out


def _eigenvalues_2x2(a, b, c, *, out=None):
    xp = backend.for_array(a).xp
    out = _output(a, 2, out)
    mean = (a + c) * 0.5
    radius = xp.hypot((a - c) * 0.5, b)
    xp.add(mean, radius, out=out[0])
    xp.subtract(mean, radius, out=out[1])
    return out


def _eigenvalues_3x3(a00, a01, a02, a11, a12, a22, *, out=None):
    xp = backend.for_array(a00).xp
    out = _output(a00, 3, out)
    dtype = a00.dtype
    # Scale every matrix by its largest entry (as vigra does) so squares and cubes neither
    # overflow nor underflow; the eigenvalues are scaled back at the end.
    scale = xp.abs(a00)
    for a in (a01, a02, a11, a12, a22):
        xp.maximum(scale, xp.abs(a), out=scale)
    inv_scale = 1.0 / xp.where(scale > 0, scale, xp.asarray(1.0, dtype=dtype))
    a01, a02, a12 = a01 * inv_scale, a02 * inv_scale, a12 * inv_scale
    q = (a00 + a11 + a22) * inv_scale * (1.0 / 3.0)
    # B = (A - qI): diagonal entries d0, d1, d2; off-diagonal entries as given.
    d0, d1, d2 = a00 * inv_scale - q, a11 * inv_scale - q, a22 * inv_scale - q
    del inv_scale
    off = a01 * a01 + a02 * a02 + a12 * a12
    p = xp.sqrt((d0 * d0 + d1 * d1 + d2 * d2 + 2.0 * off) * (1.0 / 6.0))
    del off
    # p = 0: A is qI (zero matrices too); after scaling, p is either 0 or well above underflow.
    degenerate = p < xp.finfo(dtype).tiny
    inv_p = 1.0 / xp.where(degenerate, xp.asarray(1.0, dtype=dtype), p)
    # B = (A - qI) / p, scaled entry by entry before any product so nothing overflows.
    d0 *= inv_p
    d1 *= inv_p
    d2 *= inv_p
    b01, b02, b12 = a01 * inv_p, a02 * inv_p, a12 * inv_p
    del inv_p
    # det(B) / 2, expanded along the first row.
    half_det = (d0 * (d1 * d2 - b12 * b12) - b01 * (b01 * d2 - b12 * b02) + b02 * (b01 * b12 - d1 * b02)) * 0.5
    del d0, d1, d2, b01, b02, b12
    xp.clip(half_det, -1.0, 1.0, out=half_det)
    phi = xp.arccos(half_det, out=half_det)
    phi *= 1.0 / 3.0
    p = xp.where(degenerate, xp.asarray(0.0, dtype=dtype), p)
    two_p = p * 2.0
    # φ ∈ [0, π/3], so 2p·cos φ is the largest root and 2p·cos(φ + 2π/3) the smallest.
    xp.multiply(xp.cos(phi), two_p, out=out[0])
    out[0] += q
    xp.multiply(xp.cos(phi + (2.0 * math.pi / 3.0)), two_p, out=out[2])
    out[2] += q
    # The middle one from the trace; clipped into [smallest, largest] against rounding.
    xp.subtract(q * 3.0, out[0], out=out[1])
    out[1] -= out[2]
    xp.maximum(out[1], out[2], out=out[1])
    xp.minimum(out[1], out[0], out=out[1])
    out *= scale
    return out
