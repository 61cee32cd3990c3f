"""Synthetic electrodes with ground truth, and the tomograms a lab X-ray CT would record of them.

* :func:`make` — a small phantom in memory: ``raw, truth = make("nmc-1", (64, 64, 64), seed=0)``.
* :func:`generate` — any size, out of core, into a zarr group with ``raw`` and ``truth``.
* :data:`PRESETS` — ``nmc-1, nmc-2, gra-1, gra-2, nex-v, nex-u``; any of them at another
  noise level with ``snr=`` (the noise sweep :data:`NOISE_SWEEP`, SNR 1..10).

Truth labels: 1 active material, 2 carbon-binder domain, 3 pore (0: outside the sample).
Modules: :mod:`.microstructure` (labels), :mod:`.ct` (forward model), :mod:`.texture`
(noise, rings, speckle), :mod:`.presets`, :mod:`.measure` (SNR, CNR, separability).
"""

import lazy_loader

# Lazily, as scikit-image: a submodule is imported when one of its names is first used, so the
# command line builds its help without this package's dependencies. The names: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
