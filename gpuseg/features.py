"""ilastik-compatible pixel feature stacks, computed block by block on CPU or GPU.

Six kinds of feature, each at any scale σ (voxels), chosen as in ilastik's feature selection
matrix; rows in ilastik's order:

============================  ==============================  =====================
name                          ilastik id                      channels (3-D / 2-D)
============================  ==============================  =====================
gaussian_smoothing            GaussianSmoothing               1 / 1
laplacian_of_gaussian         LaplacianOfGaussian             1 / 1
gradient_magnitude            GaussianGradientMagnitude       1 / 1
difference_of_gaussians       DifferenceOfGaussians           1 / 1
structure_tensor_eigenvalues  StructureTensorEigenvalues      3 / 2, descending
hessian_eigenvalues           HessianOfGaussianEigenvalues    3 / 2, descending
============================  ==============================  =====================

Two modes (``docs/features.md`` gives the sources and every difference):

* ``ilastik`` — what ilastik computes: a scale σ > 1 is pre-smoothed with
  ``sqrt(σ² - 1)`` (kernel window 3.5σ) and the feature then taken at 1.0; a scale σ ≤ 1
  is pre-smoothed with σ and the feature taken at σ again. Feature kernels reach
  ``int(2σ + 0.5)`` voxels (ilastik's window 2), use vigra/fastfilters kernel
  normalisation and mirror borders. DoG is ``G(σ') - G(0.66σ')``; the structure tensor
  takes gradients at ``0.5σ'`` and smooths their products at ``σ'`` (fastfilters' order).
* ``plain`` — the same six features at exactly σ, with scipy.ndimage semantics
  (``gaussian_filter(..., order=...)``, ``truncate=4``, ``mode="reflect"``): DoG
  ``G(σ) - G(0.66σ)``, structure tensor gradients at ``0.5σ`` and smoothing at ``σ``.

``twod`` computes every feature slice by slice in (y, x), as ilastik's "compute in 2D":
tensors are 2×2 and give two eigenvalues; the halo along z is 0.

Examples
--------
>>> spec = parse_features("gaussian:1.0,hessian:1.6", mode="plain")
>>> spec.channels, spec.names
(4, ['gaussian_smoothing_1', 'hessian_eigenvalues_1.6_0', 'hessian_eigenvalues_1.6_1', 'hessian_eigenvalues_1.6_2'])
>>> spec.halo
(6, 6, 6)
>>> parse_features("ilastik-full").channels
61
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from typing_extensions import Unpack

from . import backend, filters
from .eigen import symmetric_eigenvalues
from .engine import Operation, Result, RunOptions, process
from .engine.blocks import Block
from .featurespec import (  # noqa: F401  (re-exported: the feature API lives here)
    ALIASES,
    DEFAULT_SET,
    FEATURE_NAMES,
    ILASTIK_IDS,
    ILASTIK_SCALES,
    MODES,
    PRESMOOTH_WINDOW,
    TENSOR_FEATURES,
    FeaturePlan,
    FeatureSpec,
    feature_plan,
    from_selection_matrix,
    parse_features,
)

FEATURE_CHUNKS = 64  # (C, 64³) float32 chunks: 61 channels make 64 MiB


def device_bytes_per_voxel(channels: int) -> int:
    """Device memory per padded voxel while a block's features are computed: the float32 stack plus
    the temporaries of one scale (smoothed image, six Hessian or structure-tensor components and
    the eigenvalue solver's work arrays, float32; plus the float64 copy each filter pass sums from on
    the GPU, :func:`gpuseg.backend.scipy_precision`)."""
    return 4 * channels + 72


def _scale_features(source: Any, plans: dict[str, FeaturePlan], axes: tuple[int, ...],
                    core: tuple[slice, ...]) -> dict[str, Any]:
    """The features named in ``plans`` (all at one scale) of ``source`` on its ``core``: name → (channels, *core).

    Smoothing, gradient magnitude, LoG, Hessian and the larger Gaussian of the DoG share one
    sigma, so their derivatives come from one pass-sharing :func:`filters.gaussian_derivatives`.
    Only the core is computed: each filter pass on the core of the axes already filtered
    (:func:`filters.gaussian_derivative`), everything after the filters, voxel by voxel, on the
    core alone (the eigenvalues of a 128³ core with a 14-voxel reach: 1.8× fewer voxels).
    """
    xp = backend.for_array(source).xp
    results: dict[str, Any] = {}
    plan = next(iter(plans.values()))
    opts: dict[str, Any] = dict(truncate=plan.truncate, kernel=plan.kernel, mode=plan.mode, axes=axes)
    if "structure_tensor_eigenvalues" in plans:
        inner, outer = plans["structure_tensor_eigenvalues"].sigmas
        results["structure_tensor_eigenvalues"] = filters.structure_tensor_eigenvalues(source, inner, outer, core=core,
                                                                                      **opts)
    n = len(axes)
    unit = [tuple(int(k == a) for k in range(n)) for a in range(n)]
    pairs = [(a, b) for a in range(n) for b in range(a, n)]  # the upper triangle, row by row
    second = {tuple(map(sum, zip(unit[a], unit[b]))): (a, b) for a, b in pairs}
    orders = set()
    if "gaussian_smoothing" in plans or "difference_of_gaussians" in plans:
        orders.add((0,) * n)
    if "gradient_magnitude" in plans:
        orders.update(unit)
    want_hessian = "hessian_eigenvalues" in plans
    want_laplacian = "laplacian_of_gaussian" in plans
    if want_hessian or want_laplacian:
        orders.update(second)
    smooth = squares = laplacian = None
    hessian: dict[tuple[int, int], Any] = {}
    for order, d in filters.gaussian_derivatives(source, plan.sigmas[0], orders, core=core, **opts):
        degree = sum(order)
        if degree == 0:
            smooth = d
        elif degree == 1:
            d *= d
            squares = d if squares is None else xp.add(squares, d, out=squares)
        else:
            a, b = second[order]
            if want_laplacian and a == b and laplacian is None:
                laplacian = d.copy() if want_hessian else d
            elif want_laplacian and a == b:
                xp.add(laplacian, d, out=laplacian)
            if want_hessian:
                hessian[a, b] = d
    if squares is not None:
        results["gradient_magnitude"] = xp.sqrt(squares, out=squares)[None]
    if laplacian is not None:
        results["laplacian_of_gaussian"] = laplacian[None]
    if hessian:
        results["hessian_eigenvalues"] = symmetric_eigenvalues([hessian[p] for p in pairs])
        del hessian
    if "difference_of_gaussians" in plans:
        _, sigma1 = plans["difference_of_gaussians"].sigmas
        dog = filters.gaussian_derivative(source, sigma1, (0,) * n, core=core, **opts)
        results["difference_of_gaussians"] = xp.subtract(smooth, dog, out=dog)[None]
    if "gaussian_smoothing" in plans:
        assert smooth is not None  # order (0, ..., 0) was asked for above
        results["gaussian_smoothing"] = smooth[None]
    return results


def compute_block(block: Any, spec: FeatureSpec, *, inner: tuple[slice, ...] | None = None) -> Any:
    """The feature stack of one (padded) block: ``(spec.channels, z, y, x)`` float32, on its device.

    Parameters
    ----------
    block : numpy or cupy array (z, y, x)
        The block, read with (at least) ``spec.halo`` around the part whose features are
        wanted; near the block's faces values are wrong unless those are the volume's faces.
    spec : FeatureSpec
    inner : tuple of 3 slices, optional
        Where the core lies inside ``block`` (``Block.inner``). Given, only the core's
        features are returned, and each scale is computed on the core plus that scale's own
        reach rather than on the whole block (much less work for small scales). Default:
        the whole block's shape; the caller crops.

    Returns
    -------
    array
        ``(spec.channels, *shape)``: the block's shape, or the core's with ``inner``.

    Features are computed scale by scale, so besides the output only one pre-smoothed copy
    and one feature's temporaries exist at a time.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((8, 9, 10), dtype=np.float32)
    >>> spec = parse_features("gaussian:1,hessian:1")
    >>> compute_block(x, spec).shape, compute_block(x, spec, inner=(slice(2, 6),) * 3).shape
    ((4, 8, 9, 10), (4, 4, 4, 4))
    """
    xp = backend.for_array(block).xp
    image = block.astype(xp.float32, copy=False)
    if inner is None:
        inner = tuple(slice(0, n) for n in block.shape)
    out = xp.empty((spec.channels, *(s.stop - s.start for s in inner)), dtype=xp.float32)
    axes = (1, 2) if spec.twod else filters.AXES_3D
    offsets, at = [], 0
    for name, _ in spec.items:
        offsets.append(at)
        at += spec.channels_of(name)
    for scale in dict.fromkeys(s for _, s in spec.items):
        group = {name: start for (name, s), start in zip(spec.items, offsets) if s == scale}
        plans = {name: feature_plan(name, scale, spec.mode) for name in group}
        # Only the core plus this scale's own reach is needed (clipped: past the block is past the volume).
        reach = max(plan.radius(name) for name, plan in plans.items())
        pad = [reach if a in axes else 0 for a in range(3)]
        window = tuple(slice(max(i.start - r, 0), min(i.stop + r, n)) for i, r, n in zip(inner, pad, block.shape))
        core = tuple(slice(i.start - w.start, i.stop - w.start) for i, w in zip(inner, window))
        source = image[window]
        presmooth = next(iter(plans.values())).presmooth
        if presmooth is not None:
            source = filters.gaussian_derivative(source, presmooth, (0,) * len(axes), truncate=PRESMOOTH_WINDOW,
                                                 kernel="vigra", mode="mirror", axes=axes)
        for name, value in _scale_features(source, plans, axes, core).items():
            out[group[name] : group[name] + spec.channels_of(name)] = value
        del source
    return out


def _feature_block(image: Any, spec: FeatureSpec, block: Block) -> Any:
    """:func:`compute_block` of the core only: the block engine's operation (it passes ``block``)."""
    return compute_block(image, spec, inner=block.inner)


FEATURES = Operation(
    "features", _feature_block, halo=lambda p: p["spec"].halo,
    results={"output": Result(np.float32, lambda p: (p["spec"].channels,))},
    device_bytes_per_voxel=lambda p: device_bytes_per_voxel(p["spec"].channels),
    host_bytes_per_voxel=lambda p: 4 * p["spec"].channels, takes_block=True,
)


def compute(
    image: Any,
    spec: FeatureSpec | str = "default",
    output: str | os.PathLike | None = None,
    **options: Unpack[RunOptions],
):
    """The feature stack of a volume: arrays in, arrays out; a path in, a zarr ``(C, z, y, x)`` out.

    Parameters
    ----------
    image : numpy, cupy or dask array (z, y, x), or path
        A path (any supported format) is computed out of core, block by block, into ``output``.
    spec : FeatureSpec or str
        A specification or text for :func:`parse_features` (mode ``ilastik``, 3-D).
    output : path, optional
        Required for a path input: ``out.zarr`` or ``out.zarr/array``. Its attributes carry
        the specification (``features``) and the channel names (``channel_names``).
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    array or str
        ``(C, z, y, x)`` float32 of the input's kind (dask input: lazy), or the output path.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((20, 20, 20), dtype=np.float32)
    >>> spec = parse_features("gaussian:1,gradient:1.6", mode="plain")
    >>> whole = compute(x, spec, device="cpu")
    >>> bool(np.array_equal(compute(x, spec, device="cpu", chunks=7), whole))
    True
    """
    if isinstance(spec, str):
        spec = parse_features(spec)
    return process(FEATURES, {"spec": spec}, image, output,
                   attrs={"features": spec.to_dict(), "channel_names": spec.names},
                   default_chunks=FEATURE_CHUNKS, **options)
