"""Seeded watershed segmentation from two grey thresholds (the study's gWS and cWS), blockwise.

Voxels darker than ``low`` seed the non-active phase (2), voxels brighter than ``high``
seed active material (1); the grey window ``[low, high]`` between them is left to a
watershed flooding the gradient magnitude (Sobel, mode ``reflect``). The study's gWS uses
a narrow window, its cWS a wide one.

Flooding is global in principle: a window voxel takes the label of whichever seed reaches
it first over the gradient landscape. Blockwise, each block is flooded with a halo of
context and cropped, which reproduces ``skimage.segmentation.watershed`` on the whole
volume wherever the deciding flood paths stay inside the halo'd block. The agreement
grows with the halo; it was measured on synthetic electrodes (``docs/segmentation.md``,
``benchmarks/watershed_halo.py``) and :data:`DEFAULT_HALO` is the smallest halo that
agreed on at least 99.9 % of voxels for every window and chunk size tried.

The gradient is computed with the device's ``ndimage`` (GPU with cupyx); the flooding
itself runs on the CPU (scikit-image), since cuCIM has no watershed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, blockwise, chunked
from ..errors import ParameterError
from ..io import metadata, staging
from .threshold import PHASE_NAMES

DEFAULT_HALO = 16
#: Voxels per work unit out of core: scikit-image's watershed needs about 60 bytes per voxel,
#: so blocks stay at one 128³ chunk (about 0.3 GB each with the halo) rather than the engine's default.
BLOCK_VOXELS = 128**3


def gradient_magnitude(image: Any) -> Any:
    """Sobel gradient magnitude (float32, mode reflect) of a 3-D block on its own device.

    Examples
    --------
    >>> import numpy as np
    >>> g = gradient_magnitude(np.zeros((3, 3, 3)))
    >>> g.dtype, float(g.max())
    (dtype('float32'), 0.0)
    """
    be = backend.for_array(image)
    data = image.astype(be.xp.float32)
    total = be.xp.zeros(data.shape, be.xp.float32)
    for axis in range(data.ndim):
        d = be.ndi.sobel(data, axis=axis, mode="reflect")
        total += d * d
    return be.xp.sqrt(total)


def seeds(image: Any, low: float, high: float) -> Any:
    """Markers: 2 below ``low``, 1 above ``high``, 0 in the window between (uint8)."""
    xp = backend.for_array(image).xp
    markers = xp.zeros(image.shape, xp.uint8)
    markers[image < low] = 2
    markers[image > high] = 1
    return markers


def watershed_block(block: Any, *, low: float, high: float) -> Any:
    """Seeded watershed of one (halo'd) block: uint8 labels 1 = active, 2 = non-active."""
    from skimage.segmentation import watershed as sk_watershed

    be = backend.for_array(block)
    gradient = backend.to_host(gradient_magnitude(block))
    markers = backend.to_host(seeds(block, low, high))
    labels = sk_watershed(gradient, markers)
    return be.asarray(labels.astype(np.uint8, copy=False))


def check_window(low: float, high: float) -> tuple[float, float]:
    """Raise :class:`ParameterError` unless ``low < high``."""
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ParameterError(f"--low {low:g} and --high {high:g} must be finite numbers")
    if low >= high:
        raise ParameterError(f"--low {low:g} must be below --high {high:g}: the window between them is what the watershed floods")
    return low, high


def watershed(
    image: Any,
    low: float,
    high: float,
    *,
    halo: int | Sequence[int] = DEFAULT_HALO,
    output: str | os.PathLike | None = None,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Two-phase seeded watershed: seeds from ``low``/``high``, the window flooded over the gradient.

    Parameters
    ----------
    image : path, numpy, cupy or dask array
        Grey values (usually filtered).
    low, high : float
        Grey values below ``low`` seed non-active (2), above ``high`` seed active (1).
    halo : int or (z, y, x)
        Context voxels per block side (≥ 1, the Sobel radius); see :data:`DEFAULT_HALO`.
    output : path, optional
        Required for a path input.
    device, chunks, scheduler, workers, overwrite, progress : as :func:`gpuseg.filters.gaussian`.

    Returns
    -------
    array or str
        uint8 labels, or the output path.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[10, 40, 45, 90, 200, 210]]], dtype=np.uint8)
    >>> watershed(x, 20, 150, device="cpu").tolist()
    [[[2, 2, 2, 2, 1, 1]]]
    """
    low, high = check_window(low, high)
    halo = blockwise.normalize_halo(halo)
    if min(halo) < 1:
        raise ParameterError(f"halo {halo} must be at least 1 (the gradient's radius)")
    kwargs = {"low": low, "high": high}
    if not chunked.is_path(image):
        return blockwise.apply(watershed_block, image, halo=halo, chunks=chunks, device=device, dtype=np.uint8, **kwargs)
    if output is None:
        raise ParameterError("watershed on a path needs an output path")
    with staging.zarr_output(output, overwrite, progress) as target, staging.zarr_input(image, output, chunks, progress) as src:
        attrs = metadata.provenance(
            source=image, method="watershed", window=[low, high], halo=list(halo), phases=2,
            phase_names=PHASE_NAMES[2], **metadata.inherit(src.attrs.asdict()),
        )
        blockwise.run(
            watershed_block, [src], target, shape=src.shape, dtype=np.uint8, halo=halo, chunks=chunks or src.chunks,
            kwargs=kwargs, identity={"input": os.fspath(image)}, attrs=attrs, device=device, max_block_voxels=BLOCK_VOXELS,
            scheduler=scheduler, workers=workers, overwrite=overwrite, progress=progress, desc="watershed",
        )
    return os.fspath(output)


def agreement(image: np.ndarray, low: float, high: float, *, halo: int, chunks: int | Sequence[int]) -> float:
    """Fraction of voxels on which the blockwise watershed equals the whole-volume one.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).integers(0, 255, (12, 12, 12)).astype(np.uint8)
    >>> agreement(x, 100, 150, halo=12, chunks=6)
    1.0
    """
    whole = watershed_block(np.asarray(image), low=low, high=high)
    blocks = watershed(image, low, high, halo=halo, chunks=chunks, device="cpu")
    return float(np.mean(whole == blocks))
