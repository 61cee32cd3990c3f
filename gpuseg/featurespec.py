"""Feature specifications: which ilastik features at which scales, how, and in 2-D or 3-D.

A :class:`FeatureSpec` names its output channels and knows the exact halo its largest
kernel needs. It is written as plain JSON (:meth:`FeatureSpec.to_dict`) into feature
stacks and model files. Specifications come from text (:func:`parse_features`) or from an
ilastik project's selection matrix (:func:`from_selection_matrix`). The computing is in
:mod:`gpuseg.features`, which re-exports everything here.

Examples
--------
>>> spec = parse_features("gaussian:1.0,hessian:1.6", mode="plain")
>>> spec.channels, spec.halo
(4, (6, 6, 6))
>>> FeatureSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputError, ParameterError

MODES = ("ilastik", "plain")
ILASTIK_SCALES = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)

# Canonical names in ilastik's row order, with ilastik's feature ids.
ILASTIK_IDS = {
    "gaussian_smoothing": "GaussianSmoothing",
    "laplacian_of_gaussian": "LaplacianOfGaussian",
    "gradient_magnitude": "GaussianGradientMagnitude",
    "difference_of_gaussians": "DifferenceOfGaussians",
    "structure_tensor_eigenvalues": "StructureTensorEigenvalues",
    "hessian_eigenvalues": "HessianOfGaussianEigenvalues",
}
FEATURE_NAMES = tuple(ILASTIK_IDS)
TENSOR_FEATURES = ("structure_tensor_eigenvalues", "hessian_eigenvalues")
ALIASES = {
    **{name: name for name in FEATURE_NAMES},
    **{ilastik_id.lower(): name for name, ilastik_id in ILASTIK_IDS.items()},
    "gaussian": "gaussian_smoothing", "smoothing": "gaussian_smoothing",
    "laplacian": "laplacian_of_gaussian", "log": "laplacian_of_gaussian",
    "gradient": "gradient_magnitude", "ggm": "gradient_magnitude",
    "dog": "difference_of_gaussians",
    "structure": "structure_tensor_eigenvalues", "structure_tensor": "structure_tensor_eigenvalues",
    "st": "structure_tensor_eigenvalues",
    "hessian": "hessian_eigenvalues", "hog": "hessian_eigenvalues",
}

# ilastik's constants (lazyflow/operators/opPixelFeaturesPresmoothed.py, filterOperators.py).
PRESMOOTH_ABOVE = 1.0  # scales above this are pre-smoothed to it, the feature taken at it
PRESMOOTH_WINDOW = 3.5  # OpPixelFeaturesPresmoothed.WINDOW_SIZE
FEATURE_WINDOW = 2.0  # OpBaseFilter.window_size_feature
DOG_RATIO = 0.66  # OpDifferenceOfGaussians: sigma1 = 0.66 * sigma0
STRUCTURE_RATIO = 0.5  # OpStructureTensorEigenvalues: the second scale is 0.5 * the first
MIN_3D_SIGMA = 0.3  # below it ilastik silently filters in 2-D (filterOperators.OpBaseFilter.execute)
PLAIN_TRUNCATE = 4.0

DEFAULT_SET = (
    ("gaussian_smoothing", (0.7, 1.0, 1.6, 3.5, 5.0)),
    ("laplacian_of_gaussian", (1.0, 3.5)),
    ("gradient_magnitude", (1.0, 3.5)),
    ("difference_of_gaussians", (1.6, 3.5)),
    ("structure_tensor_eigenvalues", (1.6,)),
    ("hessian_eigenvalues", (1.0, 3.5)),
)


@dataclasses.dataclass(frozen=True)
class FeaturePlan:
    """How one feature at one scale is computed: optional pre-smoothing, then the filter."""

    presmooth: float | None  # sigma of the pre-smoothing, or None
    sigmas: tuple[float, ...]  # the feature's own sigma(s): (σ,), DoG (σ0, σ1), tensor (inner, outer)
    truncate: float
    kernel: str
    mode: str

    def radius(self, name: str) -> int:
        """Voxels of input this feature needs on each side of a voxel."""
        from . import filters  # not at the top: the command line reads MODES without the engine

        r = 0 if self.presmooth is None else filters.kernel_radius_1d(self.presmooth, PRESMOOTH_WINDOW)
        own = [filters.kernel_radius_1d(s, self.truncate) for s in self.sigmas]
        if name == "structure_tensor_eigenvalues":  # gradient, then smoothing of products
            return r + own[0] + own[1]
        return r + max(own)


def feature_plan(name: str, scale: float, mode: str) -> FeaturePlan:
    if mode == "plain":
        sigma, presmooth = scale, None
        truncate, kernel, boundary = PLAIN_TRUNCATE, "scipy", "reflect"
    else:
        sigma = min(scale, PRESMOOTH_ABOVE)
        presmooth = math.sqrt(scale**2 - PRESMOOTH_ABOVE**2) if scale > PRESMOOTH_ABOVE else scale
        truncate, kernel, boundary = FEATURE_WINDOW, "vigra", "mirror"
    if name == "difference_of_gaussians":
        sigmas: tuple[float, ...] = (sigma, DOG_RATIO * sigma)
    elif name == "structure_tensor_eigenvalues":
        sigmas = (STRUCTURE_RATIO * sigma, sigma)
    else:
        sigmas = (sigma,)
    return FeaturePlan(presmooth, sigmas, truncate=truncate, kernel=kernel, mode=boundary)


def _format_scale(scale: float) -> str:
    return f"{scale:g}"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Which features at which scales, how (``mode``), in 3-D or slice by slice (``twod``).

    Attributes
    ----------
    items : tuple of (name, scale)
        Canonical feature names (see :data:`FEATURE_NAMES`) and scales in voxels, in
        channel order.
    mode : {"ilastik", "plain"}
    twod : bool
    """

    items: tuple[tuple[str, float], ...]
    mode: str = "ilastik"
    twod: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"feature mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        items = tuple((str(n), float(s)) for n, s in self.items)
        if not items:
            raise ParameterError("the feature specification selects no feature; name at least one")
        for name, scale in items:
            if name not in FEATURE_NAMES:
                raise ParameterError(f"feature {name!r} is unknown; use one of {', '.join(FEATURE_NAMES)}")
            if not (scale > 0 and math.isfinite(scale)):
                raise ParameterError(f"scale {scale!r} of {name} must be a number > 0")
            if self.mode == "ilastik" and not self.twod:
                smallest = min(feature_plan(name, scale, self.mode).sigmas)
                if smallest < MIN_3D_SIGMA:
                    raise ParameterError(
                        f"{name} at scale {scale:g} needs a sigma of {smallest:.3g} < {MIN_3D_SIGMA}, which ilastik "
                        "computes in 2-D only; choose a larger scale, --2d, or --mode plain"
                    )
        if len(set(items)) != len(items):
            raise ParameterError("the feature specification names a feature at the same scale twice; list each once")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "twod", bool(self.twod))

    @property
    def ndim(self) -> int:
        """Spatial dimensions the filters act on: 2 (slice by slice) or 3."""
        return 2 if self.twod else 3

    def channels_of(self, name: str) -> int:
        """Output channels of one feature: the dimension for tensor eigenvalues, else 1."""
        return self.ndim if name in TENSOR_FEATURES else 1

    @property
    def channels(self) -> int:
        """Number of output channels."""
        return sum(self.channels_of(name) for name, _ in self.items)

    @property
    def names(self) -> list[str]:
        """One name per output channel, e.g. ``hessian_eigenvalues_1.6_0`` (0 = largest)."""
        out = []
        for name, scale in self.items:
            base = f"{name}_{_format_scale(scale)}"
            n = self.channels_of(name)
            out.extend([base] if n == 1 else [f"{base}_{k}" for k in range(n)])
        return out

    @property
    def halo(self) -> tuple[int, int, int]:
        """The exact halo (z, y, x) the largest kernel needs; z is 0 when ``twod``."""
        r = max(feature_plan(name, scale, self.mode).radius(name) for name, scale in self.items)
        return (0 if self.twod else r, r, r)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, read back by :meth:`from_dict`."""
        return {"items": [[name, scale] for name, scale in self.items], "mode": self.mode, "twod": self.twod}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """The specification described by :meth:`to_dict`'s output.

        Raises
        ------
        InputError
            ``data`` is not such a description.
        """
        try:
            items = tuple((str(n), float(s)) for n, s in data["items"])
            return cls(items, str(data["mode"]), bool(data["twod"]))
        except (KeyError, TypeError, ValueError, ParameterError) as exc:
            raise InputError(f"invalid feature specification {dict(data)!r}: {exc}") from None


def _canonical(word: str) -> str:
    name = ALIASES.get(word.strip().lower())
    if name is None:
        known = ", ".join(FEATURE_NAMES)
        raise ParameterError(f"feature {word.strip()!r} is unknown; use one of {known}")
    return name


def parse_features(text: str, *, mode: str = "ilastik", twod: bool = False) -> FeatureSpec:
    """A feature specification from text: ``default``, ``ilastik-full`` or ``name:scale,...``.

    Parameters
    ----------
    text : str
        ``default`` — a compact set (20 channels in 3-D: smoothing at 0.7, 1, 1.6, 3.5, 5;
        LoG, gradient magnitude and Hessian eigenvalues at 1 and 3.5; DoG at 1.6 and 3.5;
        structure-tensor eigenvalues at 1.6). ``ilastik-full`` — ilastik's full selection
        matrix: the six features at 0.7, 1, 1.6, 3.5, 5, 10 and smoothing also at 0.3
        (61 channels in 3-D). Or a list like ``gaussian:1.0,laplacian:1.6,hessian:3.5``.
    mode : {"ilastik", "plain"}
    twod : bool
        Compute slice by slice in (y, x).

    Returns
    -------
    FeatureSpec

    Examples
    --------
    >>> parse_features("default").channels, parse_features("default", twod=True).channels
    (20, 17)
    >>> parse_features("dog:1.6, st:3.5").items
    (('difference_of_gaussians', 1.6), ('structure_tensor_eigenvalues', 3.5))
    """
    word = text.strip().lower()
    if word == "default":
        items = [(name, s) for name, scales in DEFAULT_SET for s in scales]
    elif word == "ilastik-full":
        items = [(name, s) for name in FEATURE_NAMES for s in ILASTIK_SCALES if s > 0.3 or name == "gaussian_smoothing"]
    else:
        items = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, scale = part.partition(":")
            if not sep:
                raise ParameterError(f"feature {part!r} has no scale; write NAME:SCALE, e.g. hessian:1.6")
            try:
                value = float(scale)
            except ValueError:
                raise ParameterError(f"scale {scale.strip()!r} in {part!r} is not a number") from None
            items.append((_canonical(name), value))
    return FeatureSpec(tuple(items), mode, twod)


def from_selection_matrix(
    matrix: Any, scales: Sequence[float], *, feature_ids: Sequence[str] | None = None,
    compute_in_2d: Sequence[bool] | None = None, mode: str = "ilastik",
) -> FeatureSpec:
    """The specification of an ilastik project's ``FeatureSelections`` (``SelectionMatrix``, ``Scales``).

    Parameters
    ----------
    matrix : (features, scales) array of bool
        ilastik's selection matrix; rows follow ``feature_ids``.
    scales : sequence of float
        One per matrix column.
    feature_ids : sequence of str, optional
        ilastik ids of the rows (``FeatureSelections/FeatureIds``); default ilastik's order.
    compute_in_2d : sequence of bool, optional
        ``FeatureSelections/ComputeIn2d``, one per scale; all true gives ``twod``.

    Examples
    --------
    >>> m = np.zeros((6, 7), bool); m[0, 0] = m[5, 3] = True
    >>> from_selection_matrix(m, ILASTIK_SCALES).items
    (('gaussian_smoothing', 0.3), ('hessian_eigenvalues', 1.6))
    """
    matrix = np.asarray(matrix)
    ids = list(feature_ids) if feature_ids is not None else list(ILASTIK_IDS.values())
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
    if matrix.ndim != 2 or matrix.shape != (len(ids), len(scales)):
        raise InputError(
            f"selection matrix of shape {matrix.shape} does not match {len(ids)} features x {len(scales)} scales"
        )
    by_id = {v: k for k, v in ILASTIK_IDS.items()}
    unknown = [i for i, row in zip(ids, matrix) if i not in by_id and row.any()]
    if unknown:
        raise InputError(
            f"selected ilastik feature(s) {', '.join(unknown)} are not supported; gpuseg has {', '.join(by_id)}"
        )
    twod = False
    if compute_in_2d is not None and len(compute_in_2d) and len(compute_in_2d) != len(scales):
        raise InputError(f"ComputeIn2d has {len(compute_in_2d)} entries for {len(scales)} scales")
    if compute_in_2d is not None and len(compute_in_2d):
        flags = {bool(f) for f, used in zip(compute_in_2d, matrix.any(axis=0)) if used}
        if len(flags) > 1:
            raise InputError(
                "the project computes some scales in 2-D and others in 3-D; gpuseg needs one for all scales"
            )
        twod = flags == {True}
    order = [name for name in FEATURE_NAMES if name in {by_id.get(i) for i in ids}]
    rows = {by_id[i]: row for i, row in zip(ids, matrix) if i in by_id}
    items = tuple((name, float(s)) for name in order for s, on in zip(scales, rows[name]) if on)
    try:
        return FeatureSpec(items, mode, twod)
    except ParameterError as exc:
        raise InputError(f"the project's feature selection cannot be computed: {exc}") from None
