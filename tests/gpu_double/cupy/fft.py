"""``cupy.fft``: numpy's FFTs on device arrays.

numpy >= 2 computes float32/complex64 input in single precision, as cuFFT does, so dtypes
match cupy's; the rounding of individual values differs (pocketfft is not cuFFT). cuFFT plan
caches and their workspace memory are not modelled.
"""

from __future__ import annotations

import numpy as np

from ._functions import _generic, _not_modelled

_NAMES = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn", "hfft",
          "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift")
for _name in _NAMES:
    globals()[_name] = _generic(_name, getattr(np.fft, _name))
config = _not_modelled("fft.config")
del _name
