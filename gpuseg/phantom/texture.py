"""Random fields of the CT model, each a function of the global voxel position and the seed.

* Reconstruction noise. Filtered back-projection of a sinogram with white noise gives
  noise whose power spectrum grows linearly with spatial frequency (the ramp filter),
  rolled off at high frequency by interpolation. :func:`ramp_noise` draws white noise on fixed tiles of
  ``TILE`` voxels (each seeded by ``(seed, tile index)``) and shapes each slice of a tile
  with that spectrum: cheap, any volume size, and independent of the chunking.
  :func:`fbp_noise_slice` is the reference: Radon projection geometry, noise on the
  sinogram and ``skimage.transform.iradon``; the tests show both have the same spectrum,
  and the model can use it directly (``texture="fbp"``) for slices up to 512².
* Rings: a sparse random profile of the distance to the rotation axis (the slice centre),
  each ring with the dark flanks the ramp filter gives it.
* Speckle: Poisson points on fixed tiles; the model lights those that fall in pore.

Examples
--------
>>> import numpy as np
>>> n = ramp_noise(np, seed=0, lo=(0, 0, 0), hi=(4, 40, 40))
>>> n.shape, n.dtype
((4, 40, 40), dtype('float32'))
>>> bool(np.array_equal(n[:, 10:20], ramp_noise(np, 0, (0, 10, 0), (4, 20, 40))))
True
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np

TILE = (8, 64, 64)  # noise tile (z, y, x)
SPECKLE_TILE = 32
_NOISE, _RINGS, _SPECKLE, _FBP = 2, 3, 4, 5  # random streams


@functools.cache
def ramp_filter(ny: int, nx: int) -> np.ndarray:
    """rfft2 amplitude filter of FBP noise, scaled to unit output variance.

    The noise power spectrum of a ramp-filtered back-projection is the ramp ``|k|`` rolled
    off by the interpolations of back-projection; ``(|k| + 0.007) sinc(|k|)^3.3`` fits the
    spectrum of ``skimage.transform.iradon`` reconstructions (see :func:`fbp_noise_slice`).
    """
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.rfftfreq(nx), indexing="ij"))
    power = (k + 0.007) * np.sinc(k) ** 3.3
    power[0, 0] = 0.0  # zero-mean noise
    # Parseval over the full (two-sided) spectrum: the rfft half counts columns 1..nx/2-1 twice.
    weights = np.full(power.shape[1], 2.0)
    weights[0] = 1.0
    if nx % 2 == 0:
        weights[-1] = 1.0
    mean_power = float((power * weights).sum() / (ny * nx))
    return np.sqrt(power / mean_power).astype(np.float32)


def _tiles(lo: Sequence[int], hi: Sequence[int], tile: Sequence[int]):
    ranges = [range(a // t, (b - 1) // t + 1) for a, b, t in zip(lo, hi, tile)]
    return itertools.product(*ranges)


def _paste(out, tile_data, index, tile, lo, hi) -> None:
    t_lo = [i * t for i, t in zip(index, tile)]
    src = tuple(slice(max(a, s) - s, min(b, s + t) - s) for a, b, s, t in zip(lo, hi, t_lo, tile))
    dst = tuple(slice(max(a, s) - a, min(b, s + t) - a) for a, b, s, t in zip(lo, hi, t_lo, tile))
    out[dst] = tile_data[src]


def ramp_noise(xp, seed: int, lo: Sequence[int], hi: Sequence[int]):
    """Unit-variance FBP-like noise (float32) over ``[lo, hi)``: slice-wise ramp spectrum."""
    out = xp.empty(tuple(b - a for a, b in zip(lo, hi)), xp.float32)
    filt = xp.asarray(ramp_filter(TILE[1], TILE[2]))
    for index in _tiles(lo, hi, TILE):
        rng = np.random.default_rng([int(seed), _NOISE, *index])
        white = xp.asarray(rng.standard_normal(TILE, dtype=np.float32))
        shaped = xp.fft.irfft2(xp.fft.rfft2(white) * filt, s=TILE[1:]).astype(xp.float32)
        _paste(out, shaped, index, TILE, lo, hi)
    return out


def fbp_noise_slice(size: int, rng: np.random.Generator, n_angles: int | None = None) -> np.ndarray:
    """Reconstruction noise of one ``size`` × ``size`` slice by filtered back-projection (reference).

    White noise on a parallel-beam sinogram covering the slice's circumscribed circle,
    reconstructed with ``skimage.transform.iradon`` (ramp filter), cropped, scaled to unit std.
    """
    from skimage.transform import iradon

    full = math.ceil(size * math.sqrt(2)) + 2
    n_angles = n_angles or math.ceil(full * math.pi / 2)
    sinogram = rng.standard_normal((full, n_angles))
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    image = iradon(sinogram, theta=theta, output_size=full, filter_name="ramp", circle=True)
    start = (full - size) // 2
    crop = image[start:start + size, start:start + size]
    return ((crop - crop.mean()) / crop.std()).astype(np.float32)


def fbp_noise(xp, seed: int, lo: Sequence[int], hi: Sequence[int], shape: Sequence[int]):
    """Unit-variance noise over ``[lo, hi)`` from a true FBP of each whole slice (slow; slices ≤ 512²)."""
    size = max(shape[1], shape[2])
    out = xp.empty(tuple(b - a for a, b in zip(lo, hi)), xp.float32)
    for z in range(lo[0], hi[0]):
        slice_ = fbp_noise_slice(size, np.random.default_rng([int(seed), _FBP, z]))
        out[z - lo[0]] = xp.asarray(slice_[lo[1]:hi[1], lo[2]:hi[2]])
    return out


def ring_profile(seed: int, n_radii: int, density: float) -> np.ndarray:
    """Ring amplitude per integer radius: sparse, zero mean and unit RMS over a slice's voxels.

    A miscalibrated detector pixel draws a stripe on the sinogram; the ramp filter turns it
    into a ring flanked by dark (or bright) neighbours, so each ring has zero sum across radii
    and does not shift the mean grey of a region it crosses.
    """
    rng = np.random.default_rng([int(seed), _RINGS])
    spikes = rng.standard_normal(n_radii) * (rng.random(n_radii) < density)
    spikes[:2] = 0.0  # no ring on the axis itself
    profile = spikes - 0.5 * (np.roll(spikes, 1) + np.roll(spikes, -1))
    weight = np.arange(n_radii) + 0.5  # voxels at radius r grow like r
    rms = math.sqrt(float(np.sum(profile**2 * weight) / weight.sum()))
    return (profile / rms if rms > 0 else profile).astype(np.float32)


def radius_from_axis(xp, lo: Sequence[int], hi: Sequence[int], shape: Sequence[int]):
    """Distance (float32, y-x plane) of each voxel column from the slice centre, the rotation axis."""
    cy, cx = (shape[1] - 1) / 2, (shape[2] - 1) / 2
    y = xp.asarray((np.arange(lo[1], hi[1]) - cy).astype(np.float32))[:, None]
    x = xp.asarray((np.arange(lo[2], hi[2]) - cx).astype(np.float32))[None, :]
    return xp.sqrt(y * y + x * x)


def speckle_points(seed: int, density: float, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
    """Integer positions (n, 3) of the speckle points inside ``[lo, hi)``."""
    tile = (SPECKLE_TILE,) * 3
    mean = density * SPECKLE_TILE**3
    found = []
    for index in _tiles(lo, hi, tile):
        rng = np.random.default_rng([int(seed), _SPECKLE, *index])
        n = int(rng.poisson(mean))
        pts = rng.integers(0, SPECKLE_TILE, (n, 3)) + np.array(index) * SPECKLE_TILE
        found.append(pts[np.all((pts >= lo) & (pts < hi), axis=1)])
    return np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 3), np.int64)
