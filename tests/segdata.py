"""Small synthetic electrodes for the segmentation tests: blurred random spheres plus noise."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi


def spheres(shape=(40, 40, 40), seed: int = 0, noise: float = 28.0, radius: float = 4.5):
    """``(raw uint8, truth uint8)``: truth 1 = active (bright spheres), 2 = pore; raw blurred, noisy."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    truth = np.full(shape, 2, np.uint8)
    for _ in range(max(4, int(np.prod(shape) / 1500))):
        c = rng.uniform(0, shape)
        r = rng.lognormal(np.log(radius), 0.25)
        truth[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r] = 1
    grey = np.where(truth == 1, 170.0, 80.0).astype(np.float32)
    grey = ndi.gaussian_filter(grey, 1.0) + rng.normal(0, noise, shape).astype(np.float32)
    return np.clip(grey, 0, 255).astype(np.uint8), truth


def three_phase(shape=(32, 32, 32), seed: int = 0):
    """Three-phase labels (1 active, 2 CBD, 3 pore) and a uint16 grey volume with three modes."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random(shape), 2.0)
    q1, q2 = np.quantile(field, [0.4, 0.5])
    truth = np.where(field > q2, 1, np.where(field > q1, 2, 3)).astype(np.uint8)
    grey = np.choose(truth - 1, [1300.0, 900.0, 500.0]) + rng.normal(0, 110, shape)
    return np.clip(grey, 0, 65535).astype(np.uint16), truth
