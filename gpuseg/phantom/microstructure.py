"""Electrode microstructures as three-phase label volumes, generated block by block.

Particles are defined once for the whole (unbounded) volume: space is cut into cubic
cells of fixed size, and cell ``(i, j, k)`` holds a Poisson number of particles drawn
from ``numpy.random.default_rng([seed, 1, i, j, k])``. A block evaluates only the
particles of the cells that can reach it, so a voxel's value depends on its global
position and the seed alone, never on the chunking or the number of workers.

Each particle is an ellipsoid (near-spherical NMC secondary particles, or oblate graphite
flakes whose normals lean on z as after calendering), optionally with an internal crack.
Every voxel gets two numbers: ``s1``, the (approximate, signed) distance in voxels to the
nearest particle surface, and ``s2``, the distance to the second nearest. Then

* active material (1): ``s1 <= t_am`` — overlapping particles, as in a calendered electrode;
* carbon-binder (2): ``s1 > t_am`` and ``s1 + s2 <= t_cbd`` — the lens-shaped regions
  between two close particles: necks where particles touch, bridges across narrow gaps;
* pore (3): the rest.

The particle density comes from the Boolean-model relation ``phi = 1 - exp(-lambda V)``
for the target active fraction; the levels ``t_am`` and ``t_cbd`` are then set from an
exact integer histogram of the quantized ``(s1, s1 + s2)`` over the whole volume (one pass,
block by block), so the realized fractions hit the targets to within one histogram bin
whatever the volume's size.

Examples
--------
>>> from gpuseg.phantom import presets
>>> geom = geometry(presets.resolve("nmc-2"))
>>> labels, counts = labels_in_memory(geom, seed=0, shape=(24, 24, 24))
>>> labels.dtype, sorted(set(labels.ravel().tolist()))
(dtype('uint8'), [1, 2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from .region import Region, bounds

Q_S1 = 16  # s1 steps per voxel in the histogram
Q_B = 8  # (s1 + s2) steps per voxel
_OFFSET = 1 << 24  # keeps cell indices non-negative for the seed sequence
_PILOT = 20000


def geometry(params: Mapping[str, Any]) -> dict[str, Any]:
    """The particle model of a parameter set (plain numbers, in voxels).

    Returns
    -------
    dict
        ``material, radius, sigma, aspect, squash, tilt, crack_fraction, crack_width,
        density`` (particles per voxel), ``cell`` (cell edge), ``smax`` (distance clamp)
        and ``reach`` (how far a particle's fields extend from its centre).
    """
    radius = params["radius_um"] * 1000.0 / params["voxel_size_nm"]
    geom = {
        "material": params["material"], "radius": radius, "sigma": params["radius_sigma"],
        "aspect": params["aspect"], "squash": params["squash"], "tilt": params["tilt_deg"],
        "crack_fraction": params["crack_fraction"], "crack_width": params["crack_width"],
        "am_fraction": params["am_fraction"], "cbd_fraction": params["cbd_fraction"],
    }
    rmax = radius * math.exp(2.5 * geom["sigma"])
    amax = rmax * (1 + geom["aspect"]) if geom["material"] == "nmc" else rmax
    geom["smax"] = float(max(4, math.ceil(0.6 * radius)))
    geom["reach"] = float(amax + geom["smax"] + 2)
    geom["cell"] = int(max(8, math.ceil(2 * amax)))
    _, semi, _, _, _, _ = _draw(np.random.default_rng(0x5EED), _PILOT, np.zeros(3), geom, density_only=True)
    mean_volume = 4 / 3 * math.pi * float(np.mean(np.prod(semi, axis=1))) * (geom["squash"] if geom["material"] == "nmc" else 1)
    geom["density"] = -math.log(1 - geom["am_fraction"]) / mean_volume
    return geom


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _draw(rng: np.random.Generator, n: int, origin: np.ndarray, geom: Mapping[str, Any], density_only: bool = False):
    """``n`` particles of one cell: centres, semi-axes, linear maps, crack normals and flags."""
    centres = origin + rng.random((n, 3)) * geom["cell"]
    radius = geom["radius"] * np.exp(np.minimum(geom["sigma"] * rng.standard_normal(n), 2.5 * geom["sigma"]))
    if geom["material"] == "nmc":
        normal = _unit(rng.standard_normal((n, 3)))
        semi = radius[:, None] * (1 + geom["aspect"] * rng.uniform(-1, 1, (n, 3)))
    else:
        theta = np.deg2rad(geom["tilt"]) * np.abs(rng.standard_normal(n))
        psi = rng.uniform(0, 2 * np.pi, n)
        normal = np.stack([np.cos(theta), np.sin(theta) * np.cos(psi), np.sin(theta) * np.sin(psi)], axis=1)
        semi = radius[:, None] * np.stack([np.full(n, geom["aspect"]), rng.uniform(0.8, 1.0, n), np.ones(n)], axis=1)
    if density_only:
        return centres, semi, None, None, None, None
    # Two in-plane axes at a random angle about the normal.
    helper = np.where(np.abs(normal[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    e1 = _unit(np.cross(normal, helper))
    e2 = np.cross(normal, e1)
    phi = rng.uniform(0, 2 * np.pi, n)[:, None]
    e1, e2 = np.cos(phi) * e1 + np.sin(phi) * e2, -np.sin(phi) * e1 + np.cos(phi) * e2
    rotation = np.stack([normal, e1, e2], axis=1)  # rows: principal axes in (z, y, x)
    squash = np.diag([1 / geom["squash"], 1.0, 1.0]) if geom["material"] == "nmc" else np.eye(3)
    maps = rotation / semi[:, :, None] @ squash  # p = B d: |p| = 1 on the surface
    crack_normal = _unit(rng.standard_normal((n, 3)))
    cracked = rng.random(n) < geom["crack_fraction"]
    # Half extent along each volume axis of {d : |B d| <= 1}, grown by the distance clamp.
    extent = np.linalg.norm(np.linalg.inv(maps), axis=2) + geom["smax"] + 1
    return centres, semi, maps, crack_normal, cracked, extent


def particles(geom: Mapping[str, Any], seed: int, lo: Sequence[int], hi: Sequence[int]):
    """All particles whose fields can reach the region ``[lo, hi)``, as numpy arrays."""
    cell, reach = geom["cell"], geom["reach"]
    ranges = [range(math.floor((a - reach) / cell), math.floor((b - 1 + reach) / cell) + 1) for a, b in zip(lo, hi)]
    mean = geom["density"] * cell**3
    parts = []
    for i in ranges[0]:
        for j in ranges[1]:
            for k in ranges[2]:
                rng = np.random.default_rng([int(seed), 1, i + _OFFSET, j + _OFFSET, k + _OFFSET])
                n = int(rng.poisson(mean))
                if n:
                    parts.append(_draw(rng, n, np.array([i, j, k], float) * cell, geom))
    if not parts:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0, bool), np.zeros((0, 3))
    cat = [np.concatenate(x) for x in zip(*parts)]
    lo_a, hi_a = np.asarray(lo, float), np.asarray(hi, float)
    near = np.all((cat[0] + cat[5] >= lo_a) & (cat[0] - cat[5] < hi_a), axis=1)
    return tuple(x[near] for x in cat)


def distance_fields(xp, geom: Mapping[str, Any], seed: int, lo: Sequence[int], hi: Sequence[int]):
    """``(s1, s2)``: float32 distances (voxels) to the nearest and second-nearest particle surfaces.

    Negative inside a particle; clamped to ``geom["smax"]``. ``xp`` is numpy or cupy.
    """
    shape = tuple(b - a for a, b in zip(lo, hi))
    smax = np.float32(geom["smax"])
    s1 = xp.full(shape, smax, xp.float32)
    s2 = xp.full(shape, smax, xp.float32)
    half_crack = np.float32(geom["crack_width"] / 2)
    for c, semi, b, m, cracked, ext in zip(*particles(geom, seed, lo, hi)):
        box_lo = [max(a, math.ceil(ci - e)) for a, ci, e in zip(lo, c, ext)]
        box_hi = [min(z, math.floor(ci + e) + 1) for z, ci, e in zip(hi, c, ext)]
        if any(x >= y for x, y in zip(box_lo, box_hi)):
            continue
        d = [xp.asarray((np.arange(x, y) - ci).astype(np.float32)) for x, y, ci in zip(box_lo, box_hi, c)]
        d = [d[0][:, None, None], d[1][None, :, None], d[2][None, None, :]]
        b = b.astype(np.float32)
        p = [b[r, 0] * d[0] + b[r, 1] * d[1] + b[r, 2] * d[2] for r in range(3)]
        k0 = xp.sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])
        g = [b[0, col] * p[0] + b[1, col] * p[1] + b[2, col] * p[2] for col in range(3)]
        k1 = xp.maximum(xp.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]), np.float32(1e-12))
        amin = np.float32(semi.min())
        s = xp.where(k0 >= 1, k0 * (k0 - 1) / k1, (k0 - 1) * amin)
        if cracked:
            m = m.astype(np.float32)
            slab = xp.abs(m[0] * d[0] + m[1] * d[1] + m[2] * d[2]) - half_crack
            crack = xp.maximum(slab, (k0 - np.float32(0.8)) * amin)
            s = xp.maximum(s, -crack)
        s = xp.minimum(s, smax)
        view = tuple(slice(x - a, y - a) for x, y, a in zip(box_lo, box_hi, lo))
        near, second = s1[view], s2[view]
        second[...] = xp.minimum(second, xp.maximum(near, s))
        near[...] = xp.minimum(near, s)
    return s1, s2


def quantized_fields(xp, geom, seed, lo, hi):
    """Integer levels ``(q1, qb)`` of ``s1`` and ``s1 + s2`` (the histogram's bins)."""
    s1, s2 = distance_fields(xp, geom, seed, lo, hi)
    top1, topb = int(Q_S1 * geom["smax"]), int(2 * Q_B * geom["smax"])
    q1 = xp.clip(xp.rint(s1 * np.float32(Q_S1)), -top1, top1).astype(xp.int32) + top1
    qb = xp.clip(xp.rint((s1 + s2) * np.float32(Q_B)), 0, topb).astype(xp.int32)
    return q1, qb, (2 * top1 + 1, topb + 1)


def histogram_block(region_block: Any, *, geom: Mapping[str, Any], seed: int) -> np.ndarray:
    """The 2-D histogram (int64, host) of the quantized fields over one region."""
    xp = backend.for_array(region_block).xp
    lo, hi = bounds(region_block)
    q1, qb, bins = quantized_fields(xp, geom, seed, lo, hi)
    flat = (q1 * bins[1] + qb).ravel()
    return backend.to_host(backend.count(flat, bins[0] * bins[1])).reshape(bins)


def thresholds(hist: np.ndarray, am_fraction: float, cbd_fraction: float) -> dict[str, Any]:
    """The levels that best hit the target fractions, and the voxel counts they give.

    Returns
    -------
    dict
        ``t_am``, ``t_cbd`` (histogram bin indices) and ``counts`` (voxels of phases 1, 2, 3).
    """
    total = int(hist.sum())
    rows = np.cumsum(hist.sum(axis=1))
    t_am = int(np.argmin(np.abs(rows - am_fraction * total)))
    am = int(rows[t_am])
    cols = np.cumsum(hist[t_am + 1:].sum(axis=0))
    if cbd_fraction <= 0 or cols.size == 0:
        t_cbd, cbd = -1, 0
    else:
        t_cbd = int(np.argmin(np.abs(cols - cbd_fraction * total)))
        cbd = int(cols[t_cbd])
        if abs(cbd - cbd_fraction * total) > cbd_fraction * total:  # no CBD at all is closer
            t_cbd, cbd = -1, 0
    return {"t_am": t_am, "t_cbd": t_cbd, "counts": [am, cbd, total - am - cbd]}


def label_block(region_block: Any, *, geom: Mapping[str, Any], seed: int, t_am: int, t_cbd: int) -> Any:
    """uint8 labels (1 active, 2 carbon-binder, 3 pore) of one region, given the levels."""
    xp = backend.for_array(region_block).xp
    lo, hi = bounds(region_block)
    q1, qb, _ = quantized_fields(xp, geom, seed, lo, hi)
    labels = xp.full(q1.shape, 3, xp.uint8)
    labels[qb <= t_cbd] = 2
    labels[q1 <= t_am] = 1
    return labels


def labels_in_memory(geom: Mapping[str, Any], seed: int, shape: Sequence[int], device: str = "cpu"):
    """Labels of a whole volume at once (small volumes): ``(labels, counts)``."""
    be = backend.resolve(device)
    region = be.asarray(Region(shape)[...])
    level = thresholds(histogram_block(region, geom=geom, seed=seed), geom["am_fraction"], geom["cbd_fraction"])
    labels = label_block(region, geom=geom, seed=seed, t_am=level["t_am"], t_cbd=level["t_cbd"])
    return backend.to_host(labels), level["counts"]
