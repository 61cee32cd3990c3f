from .build import generate, make
from .presets import NOISE_SWEEP, PRESETS

__all__ = ["NOISE_SWEEP", "PRESETS", "generate", "make"]
