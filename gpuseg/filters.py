"""Gaussian filtering of volumes, blockwise, with scipy.ndimage semantics on CPU and GPU;
Gaussian derivatives, gradient magnitude, LoG, DoG, Hessian and structure tensor of arrays.

``truncate`` is the reference study's "kernel size factor": the kernel reaches
``int(truncate * sigma + 0.5)`` voxels to each side, as in ``scipy.ndimage``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from typing_extensions import Unpack

from . import backend, validate
from .engine import Operation, Result, RunOptions, process
from .errors import ParameterError

Sigma = float | Sequence[float]
MAX_RADIUS = 128
"""Voxels a kernel may reach to each side (a block's halo): sigma 32 at the default truncate."""
MAX_TRUNCATE = 10.0
"""Kernel size factor beyond which the weights added are below float32's resolution."""
# Device memory per padded voxel of a Gaussian block: the input (up to 4 bytes), its float32 copy, the
# float64 copy the GPU sums from (backend.scipy_precision), one pass's temporary and the float32 result.
GAUSSIAN_BYTES_PER_VOXEL = 24


def normalize_sigma(sigma: Sigma) -> tuple[float, float, float]:
    """One sigma or one per axis (z, y, x) → three positive floats.

    Raises
    ------
    ParameterError
        If any sigma is not positive.
    """
    values = list(sigma) if isinstance(sigma, Iterable) else [sigma] * 3
    if len(values) != 3:
        raise ParameterError(f"--sigma takes one number or three (z y x), not {len(values)}")
    z, y, x = (validate.number("--sigma", s, above=0) for s in values)
    return z, y, x


def kernel_radius(sigma: Sigma, truncate: float = 4.0) -> tuple[int, int, int]:
    """Voxels a Gaussian of ``sigma`` reaches on each side: the halo it needs (scipy's rule).

    Examples
    --------
    >>> kernel_radius(2.0, truncate=4.0)
    (8, 8, 8)
    """
    truncate = validate.number("--truncate", truncate, above=0, at_most=MAX_TRUNCATE)
    return tuple(int(truncate * s + 0.5) for s in normalize_sigma(sigma))  # type: ignore[return-value]


def check_kernel(sigma: Sigma, truncate: float, shape: Sequence[int]) -> None:
    """Refuse a Gaussian wider than the volume or reaching further than :data:`MAX_RADIUS` voxels.

    Wider than the volume, it only averages the volume; reaching further, each block would
    carry a halo of more voxels than the block itself, and the run would not end in any useful time.

    Examples
    --------
    >>> check_kernel(1.0, 4.0, (32, 32, 32))
    >>> check_kernel(1e6, 4.0, (32, 32, 32))
    Traceback (most recent call last):
    ...
    gpuseg.errors.ParameterError: --sigma 1e+06 is wider than the volume along z (32 voxels): use sigma <= 32
    """
    for axis, s, r, n in zip("zyx", normalize_sigma(sigma), kernel_radius(sigma, truncate), shape[-3:]):
        if s > n:
            raise ParameterError(f"--sigma {s:g} is wider than the volume along {axis} ({n} voxels): use sigma <= {n}")
        if r > MAX_RADIUS:
            raise ParameterError(f"--sigma {s:g} with --truncate {truncate:g} reaches {r} voxels, more than "
                                 f"{MAX_RADIUS}: use sigma <= {MAX_RADIUS / truncate:g} (or downsample the volume)")


def gaussian_block(block: Any, *, sigma: Sigma, truncate: float = 4.0) -> Any:
    """Gaussian filter of one block as float32, mode ``reflect`` (numpy or cupy in, same out)."""
    be = backend.for_array(block)
    data = backend.scipy_precision(block.astype(be.xp.float32, copy=False))
    return be.ndi.gaussian_filter(data, sigma, truncate=truncate, mode="reflect", output=be.xp.float32)


def gaussian(
    image: Any,
    sigma: Sigma,
    *,
    truncate: float = 4.0,
    output: str | os.PathLike | None = None,
    **options: Unpack[RunOptions],
):
    """3-D Gaussian filter, float32 out, equal to ``scipy.ndimage.gaussian_filter(image, sigma, mode="reflect")``.

    Parameters
    ----------
    image : numpy, cupy or dask array, or path
        The volume; a path (any supported format) is filtered out of core into ``output``.
    sigma : float or (z, y, x)
        Standard deviation in voxels, > 0.
    truncate : float
        Kernel size factor: radius = ``int(truncate * sigma + 0.5)``.
    output : path, optional
        Required for a path input: ``out.zarr[/array]``, ``out.tif`` or a folder of slices.
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    array or str
        An array of the input's kind (dask input: lazy dask array), or the output path.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((16, 16, 16), dtype=np.float32)
    >>> y = gaussian(x, 1.5, chunks=5, device="cpu")
    >>> bool(np.allclose(y, ndi.gaussian_filter(x, 1.5), rtol=1e-5, atol=1e-6))
    True
    """
    sigmas = normalize_sigma(sigma)
    truncate = validate.number("--truncate", truncate, above=0, at_most=MAX_TRUNCATE)
    return process(GAUSSIAN, {"sigma": sigmas, "truncate": truncate}, image, output,
                   attrs={"sigma": list(sigmas), "truncate": truncate},
                   check=lambda src: check_kernel(sigmas, truncate, src.shape), **options)


GAUSSIAN = Operation(
    "gaussian", gaussian_block, halo=lambda p: kernel_radius(p["sigma"], p["truncate"]),
    results={"output": Result(np.float32)}, device_bytes_per_voxel=GAUSSIAN_BYTES_PER_VOXEL,
)


# --------------------------------------------------------------------------- derivatives and tensors
#
# The functions below take one numpy or cupy array (a volume or a padded block) and return
# float32 arrays on the same device. They share these keyword options:
#
# truncate : radius of every 1-D kernel, int(truncate * sigma + 0.5) voxels (scipy's rule,
#     which is also vigra's / fastfilters' ``window_size`` rule).
# mode : border handling at the array's faces, as in scipy.ndimage ("reflect", "mirror", ...).
# kernel : "scipy" — scipy.ndimage.gaussian_filter1d's sampled Gaussian derivatives;
#     "vigra" — the kernels of vigra / fastfilters (ilastik): derivative kernels rescaled so
#     that they return exactly 1 on the polynomial x^n / n!, second derivatives with their
#     mean removed (they ignore a constant even when truncated short).
# axes : the spatial axes filtered ((0, 1, 2) for 3-D; (1, 2) for slice-by-slice 2-D).

KERNELS = ("scipy", "vigra")
AXES_3D = (0, 1, 2)


def kernel_radius_1d(sigma: float, truncate: float) -> int:
    """Radius of one 1-D Gaussian kernel: ``int(truncate * sigma + 0.5)``."""
    return int(truncate * float(sigma) + 0.5)


def vigra_kernel1d(sigma: float, order: int, truncate: float) -> np.ndarray:
    """vigra's / fastfilters' sampled Gaussian derivative of ``order`` (0–2) as a convolution kernel.

    Examples
    --------
    >>> k = vigra_kernel1d(1.0, 2, truncate=2.0)
    >>> len(k), round(float(k.sum()), 12)
    (5, 0.0)
    >>> x = np.arange(-2, 3)
    >>> round(float((k * x[::-1] ** 2 / 2).sum()), 12)  # exact on x²/2
    1.0
    """
    if order not in (0, 1, 2):
        raise ParameterError(f"derivative order {order} must be 0, 1 or 2")
    radius = kernel_radius_1d(sigma, truncate)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    if order == 0:
        return g / g.sum()
    kernel = -x * g if order == 1 else (x * x / sigma**2 - 1.0) * g
    if order == 2:
        kernel -= kernel.mean()
    # Convolution with the kernel must give d^n/dx^n (x^n / n!) = 1 exactly.
    moment = np.sum((-x) ** order / math.factorial(order) * kernel)
    return kernel / moment


def _filter_1d(data: Any, sigma: float, order: int, axis: int, truncate: float = 4.0, mode: str = "reflect",
               kernel: str = "scipy"):
    be = backend.for_array(data)
    data = backend.scipy_precision(data)
    if kernel == "scipy":
        return be.ndi.gaussian_filter1d(data, sigma, axis=axis, order=order, mode=mode, truncate=truncate,
                                        output=be.xp.float32)
    if kernel == "vigra":
        weights = be.xp.asarray(vigra_kernel1d(sigma, order, truncate))
        return be.ndi.convolve1d(data, weights, axis=axis, mode=mode, output=be.xp.float32)
    raise ParameterError(f"unknown kernel {kernel!r}: use one of {', '.join(KERNELS)}")


def _cropped(result: Any, axis: int, core: Sequence[slice] | None) -> Any:
    """``result`` cut to ``core`` along ``axis`` (a view; no cut without a core)."""
    if core is None:
        return result
    index = [slice(None)] * result.ndim
    index[axis] = core[axis]
    return result[tuple(index)]


def _outside_axes(image: Any, axes: Sequence[int], core: Sequence[slice] | None) -> Any:
    """``image`` cut to ``core`` along the axes that are not filtered."""
    for axis in range(image.ndim):
        if axis not in axes:
            image = _cropped(image, axis, core)
    return image


def gaussian_derivative(
    image: Any, sigma: float, order: Sequence[int], *, truncate: float = 4.0, mode: str = "reflect",
    kernel: str = "scipy", axes: Sequence[int] = AXES_3D, core: Sequence[slice] | None = None,
) -> Any:
    """Gaussian-smoothed partial derivative of ``image``: separable 1-D filters along ``axes``.

    Parameters
    ----------
    image : numpy or cupy array (z, y, x)
    sigma : float
        Scale in voxels, > 0.
    order : sequence of int
        Derivative order (0, 1 or 2) along each of ``axes``.
    core : tuple of slices, optional
        Only this part of the result is wanted. Each pass along an axis runs on the whole
        extent of that axis (its boundary mode applies there) but only on the core of the axes
        already filtered, which gives the core's values exactly with fewer voxels filtered.

    Returns
    -------
    array, float32 (the core's shape when ``core`` is given)

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
    >>> d = gaussian_derivative(x, 1.5, (0, 1, 2))
    >>> bool(np.allclose(d, ndi.gaussian_filter(x, 1.5, order=(0, 1, 2)), atol=1e-6))
    True
    """
    xp = backend.for_array(image).xp
    if len(order) != len(axes):
        raise ParameterError(f"order {tuple(order)} needs one entry per axis {tuple(axes)}")
    result = _outside_axes(image if image.dtype == xp.float32 else image.astype(xp.float32), axes, core)
    for axis, n in zip(axes, order):
        result = _cropped(_filter_1d(result, sigma, int(n), axis, truncate, mode, kernel), axis, core)
    return result if result is not image else result.copy()


def gaussian_derivatives(
    image: Any, sigma: float, orders: Any, **options: Any
) -> Iterator[tuple[tuple[int, ...], Any]]:
    """Yield ``(order, derivative)`` for several derivative orders, sharing their 1-D passes.

    Each derivative is exactly :func:`gaussian_derivative` of that order, but orders with a
    common prefix (along ``axes``, first axis first) reuse its partial results: smoothing,
    gradient and Hessian (10 derivatives in 3-D) take 19 one-dimensional passes instead of
    30. Orders are visited sorted; at most one partial result per axis is alive at a time.
    ``core`` (in ``options``) is as for :func:`gaussian_derivative`.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((10, 10, 10), dtype=np.float32)
    >>> got = dict(gaussian_derivatives(x, 1.0, [(0, 0, 1), (1, 1, 0)]))
    >>> bool(np.array_equal(got[(1, 1, 0)], gaussian_derivative(x, 1.0, (1, 1, 0))))
    True
    """
    axes = tuple(options.pop("axes", AXES_3D))
    core = options.pop("core", None)
    xp = backend.for_array(image).xp
    base = _outside_axes(image if image.dtype == xp.float32 else image.astype(xp.float32), axes, core)
    partial: list[tuple[tuple[int, ...], Any]] = []  # (prefix of orders, result after those passes)
    for order in sorted({tuple(int(o) for o in order) for order in orders}):
        if len(order) != len(axes):
            raise ParameterError(f"order {order} needs one entry per axis {axes}")
        result = base
        for depth, axis in enumerate(axes):
            prefix = order[: depth + 1]
            if depth < len(partial) and partial[depth][0] == prefix:
                result = partial[depth][1]
                continue
            del partial[depth:]
            result = _cropped(_filter_1d(result, sigma, order[depth], axis, **options), axis, core)
            if depth < len(axes) - 1:
                partial.append((prefix, result))
        yield order, result


def _unit_orders(axes: Sequence[int], counts: dict[int, int]) -> tuple[int, ...]:
    return tuple(counts.get(a, 0) for a in axes)


def gradient_magnitude(image: Any, sigma: float, **options: Any) -> Any:
    """Gaussian gradient magnitude ``sqrt(sum_i (∂_i G_σ * image)²)`` over ``axes``, float32.

    Examples
    --------
    >>> ramp = np.broadcast_to(np.arange(16, dtype=np.float32) * 2, (16, 16, 16))
    >>> float(gradient_magnitude(ramp, 1.0, kernel="vigra", mode="mirror")[8, 8, 8])
    2.0
    """
    axes = tuple(options.get("axes", AXES_3D))
    total = None
    for axis in axes:
        d = gaussian_derivative(image, sigma, _unit_orders(axes, {axis: 1}), **options)
        d *= d
        if total is None:
            total = d
        else:
            total += d
    xp = backend.for_array(total).xp
    return xp.sqrt(total, out=total)


def laplacian_of_gaussian(image: Any, sigma: float, **options: Any) -> Any:
    """Laplacian of Gaussian ``sum_i ∂_i² G_σ * image`` over ``axes``, float32 (unnormalised, as vigra).

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
    >>> bool(np.allclose(laplacian_of_gaussian(x, 1.0), ndi.gaussian_laplace(x, 1.0), atol=1e-5))
    True
    """
    axes = tuple(options.get("axes", AXES_3D))
    total = None
    for axis in axes:
        d = gaussian_derivative(image, sigma, _unit_orders(axes, {axis: 2}), **options)
        if total is None:
            total = d
        else:
            total += d
    return total


def difference_of_gaussians(image: Any, sigma: float, sigma2: float, **options: Any) -> Any:
    """``G_sigma * image - G_sigma2 * image``, float32.

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
    >>> ref = ndi.gaussian_filter(x, 1.6) - ndi.gaussian_filter(x, 1.0)
    >>> bool(np.allclose(difference_of_gaussians(x, 1.6, 1.0), ref, atol=1e-6))
    True
    """
    axes = tuple(options.get("axes", AXES_3D))
    smooth = gaussian_derivative(image, sigma, (0,) * len(axes), **options)
    smooth -= gaussian_derivative(image, sigma2, (0,) * len(axes), **options)
    return smooth


def hessian_of_gaussian(image: Any, sigma: float, **options: Any) -> list:
    """Second derivatives ``∂_i ∂_j G_σ * image`` for i ≤ j over ``axes`` (upper triangle, row by row).

    Returns
    -------
    list of float32 arrays
        3-D: ``[zz, zy, zx, yy, yx, xx]``; 2-D (``axes=(1, 2)``): ``[yy, yx, xx]``.

    Examples
    --------
    >>> zz, yy, xx = np.indices((9, 9, 9), dtype=np.float32) - 4
    >>> h = hessian_of_gaussian(zz * yy + xx**2, 1.0, kernel="vigra", truncate=2.0)
    >>> [round(float(c[4, 4, 4]), 4) + 0.0 for c in h]  # + 0.0: no -0.0
    [0.0, 1.0, 0.0, 0.0, 0.0, 2.0]
    """
    axes = tuple(options.get("axes", AXES_3D))
    components = []
    for i, a in enumerate(axes):
        for b in axes[i:]:
            counts = {a: 2} if a == b else {a: 1, b: 1}
            components.append(gaussian_derivative(image, sigma, _unit_orders(axes, counts), **options))
    return components


def structure_tensor(image: Any, inner: float, outer: float, **options: Any) -> list:
    """Structure tensor: products of Gaussian gradients at scale ``inner``, smoothed at scale ``outer``.

    ``options`` as :func:`gaussian_derivative` (``core`` included).

    Returns
    -------
    list of float32 arrays
        Upper triangle, row by row, as :func:`hessian_of_gaussian`.

    Examples
    --------
    >>> ramp = np.broadcast_to(np.arange(12, dtype=np.float32), (12, 12, 12))  # gradient (0, 0, 1)
    >>> st = structure_tensor(ramp, 1.0, 1.0, kernel="vigra", truncate=2.0, mode="mirror")
    >>> [round(float(c[6, 6, 6]), 4) + 0.0 for c in st]
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    """
    axes = tuple(options.get("axes", AXES_3D))
    core = options.pop("core", None)  # only for the smoothing: the gradient is wanted wherever it reaches the core
    gradient = [gaussian_derivative(image, inner, _unit_orders(axes, {a: 1}), **options) for a in axes]
    components = []
    for i in range(len(axes)):
        for j in range(i, len(axes)):
            product = gradient[i] * gradient[j]
            components.append(gaussian_derivative(product, outer, (0,) * len(axes), core=core, **options))
            del product
    return components


def hessian_eigenvalues(image: Any, sigma: float, *, out: Any = None, **options: Any) -> Any:
    """Eigenvalues of the Hessian of Gaussian, descending, ``(n_axes, *image.shape)`` float32.

    Examples
    --------
    >>> zz, yy, xx = np.indices((9, 9, 9), dtype=np.float32) - 4
    >>> bowl = 3 * zz**2 + 2 * yy**2 + xx**2  # Hessian diag(6, 4, 2)
    >>> hessian_eigenvalues(bowl, 1.0, kernel="vigra", truncate=2.0)[:, 4, 4, 4].round(4).tolist()
    [6.0, 4.0, 2.0]
    """
    from .eigen import symmetric_eigenvalues

    return symmetric_eigenvalues(hessian_of_gaussian(image, sigma, **options), out=out)


def structure_tensor_eigenvalues(image: Any, inner: float, outer: float, *, out: Any = None, **options: Any) -> Any:
    """Eigenvalues of the structure tensor, descending, ``(n_axes, *image.shape)`` float32.

    Examples
    --------
    >>> ramp = np.broadcast_to(np.arange(12, dtype=np.float32) * 3, (12, 12, 12))
    >>> ev = structure_tensor_eigenvalues(ramp, 0.5, 1.0, kernel="vigra", truncate=2.0, mode="mirror")
    >>> [round(float(v), 4) + 0.0 for v in ev[:, 6, 6, 6]]  # one direction of change, squared slope 9; + 0.0: no -0.0
    [9.0, 0.0, 0.0]
    """
    from .eigen import symmetric_eigenvalues

    return symmetric_eigenvalues(structure_tensor(image, inner, outer, **options), out=out)
