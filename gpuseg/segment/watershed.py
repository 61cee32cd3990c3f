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
from typing_extensions import Unpack

from .. import backend
from ..engine import Operation, Result, RunOptions, process
from ..engine.blocks import normalize_halo
from ..errors import ParameterError
from .defaults import WATERSHED_HALO
from .threshold import PHASE_NAMES

DEFAULT_HALO = WATERSHED_HALO
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


def landscape(block: Any, *, low: float, high: float, **_: Any) -> tuple[Any, Any]:
    """The device part of a block's watershed: its gradient magnitude and seeds."""
    return gradient_magnitude(block), seeds(block, low, high)


def flood(landscape: tuple[Any, Any], **_: Any) -> np.ndarray:
    """The host part: scikit-image's watershed of ``(gradient, markers)`` (cuCIM has none): uint8 labels."""
    from skimage.segmentation import watershed as sk_watershed

    gradient, markers = (backend.to_host(a) for a in landscape)
    return sk_watershed(gradient, markers).astype(np.uint8, copy=False)


def watershed_block(block: Any, *, low: float, high: float) -> Any:
    """Seeded watershed of one (halo'd) block: uint8 labels 1 = active, 2 = non-active."""
    return backend.for_array(block).asarray(flood(landscape(block, low=low, high=high)))


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
    **options: Unpack[RunOptions],
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
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

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
    halo = normalize_halo(halo)
    if min(halo) < 1:
        raise ParameterError(f"halo {halo} must be at least 1 (the gradient's radius)")
    return process(WATERSHED, {"low": low, "high": high, "halo": list(halo)}, image, output,
                   attrs={"method": "watershed", "window": [low, high], "halo": list(halo), "phases": 2,
                          "phase_names": PHASE_NAMES[2]},
                   **options)


#: The gradient and seeds on the device, the flooding on the host outside the device slot. The result
#: depends on the blocking (flood paths beyond the halo), so blocks are the same on every device.
WATERSHED = Operation(
    "watershed", landscape, halo=lambda p: p["halo"], results={"output": Result(np.uint8)}, finish=flood,
    device_bytes_per_voxel=16, host_bytes_per_voxel=60, max_block_voxels=BLOCK_VOXELS, blocking_invariant=False,
)


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
