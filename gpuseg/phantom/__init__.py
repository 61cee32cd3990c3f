"""Synthetic electrodes with ground truth, and the tomograms a lab X-ray CT would record of them.

* :func:`make` — a small phantom in memory: ``raw, truth = make("nmc-1", (64, 64, 64), seed=0)``.
* :func:`generate` — any size, out of core, into a zarr group with ``raw`` and ``truth``.
* :data:`PRESETS` — ``nmc-1, nmc-2, gra-1, gra-2, nex-v, nex-u``; any of them at another
  noise level with ``snr=`` (the noise sweep :data:`NOISE_SWEEP`, SNR 1..10).

Truth labels: 1 active material, 2 carbon-binder domain, 3 pore (0: outside the sample).
Modules: :mod:`.microstructure` (labels), :mod:`.ct` (forward model), :mod:`.texture`
(noise, rings, speckle), :mod:`.presets`, :mod:`.measure` (SNR, CNR, separability).
"""

from .build import generate, make
from .presets import NOISE_SWEEP, PRESETS

__all__ = ["NOISE_SWEEP", "PRESETS", "generate", "make"]
