"""Phantom presets modelled on the reference study's six tomograms, and the noise sweep.

Every number of a preset is a parameter of :func:`gpuseg.phantom.make`; a keyword
override replaces it. Lengths are in µm (converted with ``voxel_size_nm``) or in voxels
where the name says so. Grey values are attenuations relative to the active material
(active = 1, zero attenuation = 0); the quantizer maps them to uint8/uint16 and records
the grey value of zero attenuation as ``zero_grey`` so SNR can be measured on ``raw``.

Definitions used throughout (measured on ``raw`` against ``truth``):

* ``SNR = (mean grey of active material - zero_grey) / noise std``
* ``CNR = |mean grey of active material - mean grey of pore| / noise std``

where the means and the noise std are taken over phase interiors (voxels farther than the
PSF radius from any other phase). The pore's attenuation follows from both:
``1 - CNR / SNR``, so ``CNR <= SNR``. Asking for another SNR (``snr=``, the noise sweep)
keeps the preset's ratio CNR/SNR: the phases keep their attenuations, only noise changes.

Why these numbers. The study's NMC-1 (NREL's calendered NMC532, 397 nm voxels) has
about 50 % active material, 10 % carbon-binder and 40 % pore by volume (the segmented
geometry in ``../shared/data``) and particles of about 10 µm diameter. Its tomogram is
noisy with a grey histogram that shows no two clear peaks: two equal Gaussian modes are
resolved only when their distance exceeds two standard deviations, so ``nmc-1`` has
CNR 1.6 and ``nmc-2`` (same sample, better scan) CNR 4. The graphite anodes (126 nm,
nano-CT) are flakes of low contrast against the carbon-binder; NMC622 ``nex-v`` (371 nm)
is a cleaner micro-CT scan than NMC-1 and ``nex-u`` is its nano-CT (126 nm) with a wider
PSF in voxels and stronger rings. The SNR/CNR values are this project's estimates, chosen
to reproduce those qualitative descriptions, not values read off the study's data.

Examples
--------
>>> sorted(PRESETS)
['gra-1', 'gra-2', 'nex-u', 'nex-v', 'nmc-1', 'nmc-2']
>>> p = resolve("nmc-1", snr=5)
>>> p["snr"], round(p["cnr"], 3)
(5.0, 2.667)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParameterError

#: The noise sweep of the study's robustness test: SNR 1, 2, ..., 10 on any preset.
NOISE_SWEEP = tuple(range(1, 11))

_NMC: dict[str, Any] = {
    "material": "nmc",            # near-spherical secondary particles
    "voxel_size_nm": 397.0,
    "radius_um": 5.0,             # median particle radius (lognormal)
    "radius_sigma": 0.25,         # lognormal shape of the radius
    "aspect": 0.12,               # semi-axes jitter ±12 % (near-spherical)
    "squash": 0.9,                # calendering flattens along z
    "tilt_deg": 90.0,             # orientation spread (90: isotropic)
    "crack_fraction": 0.25,       # particles with an internal crack
    "crack_width": 1.0,           # crack width in voxels
    "am_fraction": 0.50,
    "cbd_fraction": 0.10,
    "snr": 3.0,
    "cnr": 1.6,
    "cbd_contrast": 0.35,         # CBD attenuation between pore (0) and active (1)
    "psf_sigma": 1.0,             # Gaussian PSF sigma in voxels
    "ring_share": 0.10,           # share of the noise variance in ring artefacts
    "ring_density": 0.3,          # share of radii that carry a ring
    "cupping": 0.04,              # relative grey dip at the centre vs the corners
    "drift": 0.03,                # relative grey change from first to last slice
    "speckle_density": 2e-4,      # bright speckles per pore voxel
    "speckle_peak": 1.4,          # their peak attenuation (active material = 1)
    "dtype": "uint8",
    "texture": "ramp",            # "ramp" (FBP-equivalent, fast) or "fbp" (Radon + FBP per slice)
}

_GRAPHITE: dict[str, Any] = {
    **_NMC,
    "material": "graphite",       # oblate flakes lying in the (y, x) plane
    "voxel_size_nm": 126.0,
    "radius_um": 3.0,             # median in-plane semi-axis
    "radius_sigma": 0.3,
    "aspect": 0.35,               # thickness / in-plane size
    "squash": 1.0,
    "tilt_deg": 15.0,             # flake normals within ~15° of z (calendering)
    "crack_fraction": 0.0,
    "am_fraction": 0.60,
    "cbd_fraction": 0.06,
    "cbd_contrast": 0.45,
    "psf_sigma": 1.5,
    "dtype": "uint16",
}

PRESETS: dict[str, dict[str, Any]] = {
    "nmc-1": {**_NMC, "description": "NMC532, 397 nm, low SNR: no two clear histogram peaks"},
    "nmc-2": {**_NMC, "snr": 6.0, "cnr": 4.0, "description": "NMC532, 397 nm, higher SNR: two peaks"},
    "gra-1": {**_GRAPHITE, "snr": 3.0, "cnr": 1.8, "description": "graphite, 126 nm, noisy"},
    "gra-2": {**_GRAPHITE, "snr": 6.0, "cnr": 3.5, "description": "graphite, 126 nm, less noisy"},
    "nex-v": {**_NMC, "voxel_size_nm": 371.0, "radius_um": 4.0, "am_fraction": 0.55, "cbd_fraction": 0.08,
              "snr": 5.0, "cnr": 3.0, "description": "NMC622, 371 nm micro-CT, cleaner than nmc-1"},
    "nex-u": {**_NMC, "voxel_size_nm": 126.0, "radius_um": 2.5, "am_fraction": 0.55, "cbd_fraction": 0.08,
              "snr": 5.0, "cnr": 3.5, "psf_sigma": 1.5, "ring_share": 0.2, "crack_fraction": 0.4,
              "crack_width": 2.0, "dtype": "uint16", "description": "NMC622, 126 nm nano-CT"},
}

_NUMBERS = {k for k, v in _NMC.items() if isinstance(v, (int, float))}
_CHOICES = {"material": ("nmc", "graphite"), "dtype": ("uint8", "uint16"), "texture": ("ramp", "fbp")}


def resolve(preset: str | Mapping[str, Any], snr: float | None = None, **overrides: Any) -> dict[str, Any]:
    """The full parameter set of ``preset`` with ``snr`` and ``overrides`` applied, validated.

    Raises
    ------
    ParameterError
        Unknown preset or parameter, or a value out of range.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ParameterError(f"unknown phantom preset {preset!r}: use one of {', '.join(PRESETS)}")
        params = {"preset": preset, **PRESETS[preset]}
    else:
        params = {"preset": "custom", **_NMC, **dict(preset)}
    for key, value in overrides.items():
        if key not in params:
            raise ParameterError(f"unknown phantom parameter {key!r}: use one of {', '.join(sorted(_NMC))}")
        params[key] = value
    if snr is not None:
        snr = float(snr)
        if snr <= 0:
            raise ParameterError(f"snr {snr} must be > 0")
        if "cnr" not in overrides:  # keep the phases' attenuations: CNR scales with SNR
            params["cnr"] = float(params["cnr"]) * snr / float(params["snr"])
        params["snr"] = snr
    for key in _NUMBERS:
        params[key] = float(params[key])
    for key, allowed in _CHOICES.items():
        if params[key] not in allowed:
            raise ParameterError(f"phantom parameter {key}={params[key]!r}: use one of {', '.join(allowed)}")
    _check(params)
    return params


def _check(p: Mapping[str, Any]) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ParameterError(f"phantom parameter {what}")

    need(0 < p["am_fraction"] < 1, f"am_fraction={p['am_fraction']} must lie in (0, 1)")
    need(0 <= p["cbd_fraction"] < 1 - p["am_fraction"], f"cbd_fraction={p['cbd_fraction']} must lie in [0, 1 - am_fraction)")
    need(p["voxel_size_nm"] > 0 and p["radius_um"] > 0, "voxel_size_nm and radius_um must be > 0")
    need(p["radius_um"] * 1000 / p["voxel_size_nm"] >= 1.0, "radius_um must be at least one voxel")
    need(0 < p["cnr"] <= p["snr"], f"cnr={p['cnr']:g} must lie in (0, snr={p['snr']:g}] (pore attenuation >= 0)")
    need(0 <= p["ring_share"] < 1, "ring_share must lie in [0, 1)")
    need(p["psf_sigma"] >= 0, "psf_sigma must be >= 0")
    need(0 <= p["crack_fraction"] <= 1, "crack_fraction must lie in [0, 1]")
    need(0 < p["aspect"] < 1 and 0 < p["squash"] <= 1, "aspect must lie in (0, 1) and squash in (0, 1]")
    need(p["speckle_density"] >= 0 and 0 <= p["cbd_contrast"] <= 1, "speckle_density >= 0, cbd_contrast in [0, 1]")
