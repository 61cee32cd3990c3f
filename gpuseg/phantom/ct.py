"""A lab X-ray CT forward model: from a label volume to the tomogram an instrument records.

For each block (with a halo of the PSF's radius), in this order:

1. attenuation per phase: active material 1, pore ``1 - CNR/SNR``, carbon-binder between
   them (``cbd_contrast``), label 0 (outside the sample) 0; bright speckles (single voxels
   of attenuation ``speckle_peak`` after blurring) at Poisson points that fall in pore;
2. partial-volume blur: a Gaussian point-spread function of ``psf_sigma`` voxels;
3. shading: cupping (darker centre, ``cupping``) and a linear drift along z (``drift``),
   both averaging to 1 over the volume;
4. reconstruction noise of std ``1 / SNR``: FBP-textured noise (see
   :mod:`gpuseg.phantom.texture`), of which ``ring_share`` of the variance is rings;
5. quantization: ``raw = round(zero_grey + gain * attenuation)`` to uint8 or uint16, with
   ``gain`` and ``zero_grey`` chosen so that 5 noise std on either side of the phases fit.

Measured on ``raw`` (phase interiors, see :mod:`gpuseg.phantom.presets`):
``SNR = (mean_active - zero_grey) / std_active`` and
``CNR = |mean_active - mean_pore| / std_active``.

Examples
--------
>>> import numpy as np
>>> from gpuseg.phantom import presets
>>> from gpuseg.phantom.region import Region
>>> model = forward_params(presets.resolve("nmc-2", speckle_density=0))
>>> truth = np.full((16, 16, 16), 3, np.uint8); truth[:8] = 1
>>> raw = ct_block(truth, Region(truth.shape)[...], model=model, seed=0, shape=truth.shape)
>>> raw.dtype, bool(raw[:6].mean() > raw[10:].mean())
(dtype('uint8'), True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from . import texture
from .region import bounds

TRUNCATE = 4.0


def forward_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers the CT model needs, derived from a preset's parameters (plain, JSON-able)."""
    snr, cnr = params["snr"], params["cnr"]
    sigma = 1.0 / snr
    pore = 1.0 - cnr / snr
    cbd = pore + params["cbd_contrast"] * (1.0 - pore)
    psf = params["psf_sigma"]
    radius = int(TRUNCATE * psf + 0.5) if psf > 0 else 0
    # Centre weight of scipy's normalised 1-D Gaussian kernel: a single voxel peaks at amp * w0**3.
    w0 = 1.0 / float(np.exp(-0.5 * (np.arange(-radius, radius + 1) / psf) ** 2).sum()) if psf > 0 else 1.0
    speckle = (params["speckle_peak"] - pore) / w0**3
    top = float(np.iinfo(params["dtype"]).max)
    lo = min(0.0, pore) - 5 * sigma
    hi = max(1.0, params["speckle_peak"]) * (1 + abs(params["cupping"]) * 2 / 3 + abs(params["drift"]) / 2) + 5 * sigma
    gain = 0.94 * top / (hi - lo)
    return {
        "attenuation": [0.0, 1.0, cbd, pore], "noise_std": sigma, "psf_sigma": psf, "halo": radius,
        "speckle_density": params["speckle_density"], "speckle_amplitude": speckle,
        "cupping": params["cupping"], "drift": params["drift"], "ring_share": params["ring_share"],
        "ring_density": params["ring_density"], "texture": params["texture"], "dtype": params["dtype"],
        "gain": gain, "zero_grey": 0.03 * top - lo * gain, "top": top,
    }


def _shading(xp, lo: Sequence[int], hi: Sequence[int], shape: Sequence[int], model: Mapping[str, Any], radius):
    """Cupping × drift factor, mean 1 over the volume (float32, broadcastable)."""
    r2max = ((shape[1] - 1) / 2) ** 2 + ((shape[2] - 1) / 2) ** 2
    cup = np.float32(1.0) + np.float32(model["cupping"]) * (radius * radius / np.float32(max(r2max, 1.0)) - np.float32(1 / 3))
    z = (np.arange(lo[0], hi[0]) / max(shape[0] - 1, 1) - 0.5).astype(np.float32)
    drift = xp.asarray(np.float32(1.0) + np.float32(model["drift"]) * z)[:, None, None]
    return cup[None] * drift


def ct_block(truth: Any, region: Any, *, model: Mapping[str, Any], seed: int, shape: Sequence[int]) -> Any:
    """The tomogram of one halo'd block of labels (numpy or cupy in, same out, ``model["dtype"]``).

    Parameters
    ----------
    truth : array
        uint8 labels 0..3 of the padded block.
    region : array
        The padded block's bounds, from :class:`gpuseg.phantom.region.Region`.
    model : dict
        From :func:`forward_params`.
    seed : int
    shape : (z, y, x)
        The whole volume's shape (rings and cupping centre on its axis).
    """
    be = backend.for_array(truth)
    xp = be.xp
    lo, hi = bounds(region)
    att = xp.asarray(np.asarray(model["attenuation"], np.float32))[truth.astype(xp.intp)]
    if model["speckle_density"] > 0:
        pts = texture.speckle_points(seed, model["speckle_density"], lo, hi) - np.asarray(lo)
        if len(pts):
            idx = tuple(xp.asarray(pts[:, i]) for i in range(3))
            att[idx] += xp.where(truth[idx] == 3, np.float32(model["speckle_amplitude"]), np.float32(0))
    if model["psf_sigma"] > 0:
        att = be.ndi.gaussian_filter(att, model["psf_sigma"], truncate=TRUNCATE, mode="reflect", output=xp.float32)
    radius = texture.radius_from_axis(xp, lo, hi, shape)
    att *= _shading(xp, lo, hi, shape, model, radius)
    if model["texture"] == "fbp":
        noise = texture.fbp_noise(xp, seed, lo, hi, shape)
    else:
        noise = texture.ramp_noise(xp, seed, lo, hi)
    share = model["ring_share"]
    noise *= np.float32(math.sqrt(1 - share) * model["noise_std"])
    if share > 0:
        n_radii = math.ceil(math.hypot(shape[1], shape[2]) / 2) + 2
        profile = xp.asarray(texture.ring_profile(seed, n_radii, model["ring_density"]))
        rings = profile[xp.rint(radius).astype(xp.int32)] * np.float32(math.sqrt(share) * model["noise_std"])
        noise += rings[None]
    att += noise
    grey = xp.rint(np.float32(model["zero_grey"]) + np.float32(model["gain"]) * att)
    return xp.clip(grey, 0, model["top"]).astype(model["dtype"])


def map_labels_block(labels: Any, *, pairs: Sequence[Sequence[int]] = ()) -> Any:
    """Relabel a block of 8/16-bit labels to phases 0..3 (uint8): ``(value, phase)`` pairs, others kept."""
    xp = backend.for_array(labels).xp
    table = np.zeros(65536, np.uint8)
    table[:4] = np.arange(4)
    for value, phase in pairs:
        table[int(value)] = int(phase)
    return xp.asarray(table)[labels.astype(xp.intp)]
