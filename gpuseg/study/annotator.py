"""Annotators: a person painting brush strokes on one 2-D slice at a time, as the study's MLX protocols.

An :class:`Annotator` reads a *judgement* slice (what the person judges right there: the truth slice
where the study has one, else :func:`own_judgement` of the grey slice) and, for corrections, where the
current prediction is wrong; never a volume. Their habits (brush radius, margin kept from boundaries,
stroke length and wiggle, mislabel rate) are drawn once from the study seed; defaults are this project's
assumptions (see ``docs/study.md``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError
from .streams import user_rng

ACTIVE, REST = 1, 2
#: The thinnest brush a person paints with: radius 1, no margin (never on a pixel touching the other phase).
MIN_REACH = 2


def own_judgement(grey: np.ndarray, threshold: float) -> np.ndarray:
    """What a person without a truth judges right on a grey slice: their threshold of it, seen slightly blurred.

    Returns 1 (active) above ``threshold`` after a 2-D Gaussian of σ 1 px, else 2. Used for
    annotations only where the study has no truth (an assumption: the eye averages noise).

    Examples
    --------
    >>> own_judgement(np.array([[0.0, 0, 200, 200]]), 100).tolist()
    [[2, 2, 1, 1]]
    """
    return np.where(ndi.gaussian_filter(np.asarray(grey, np.float32), 1.0) > threshold, ACTIVE, REST).astype(np.uint8)


def two_phase(labels: np.ndarray) -> np.ndarray:
    """1 stays active material, every other phase becomes 2, 0 stays unassigned (uint8)."""
    labels = np.asarray(labels)
    return np.where(labels > ACTIVE, REST, labels).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Stroke:
    """What :meth:`Annotator.paint` did on one slice: the scribble slice and how it got there."""

    labels: np.ndarray
    strokes: int
    mislabelled: int
    coverage: float


@dataclasses.dataclass(frozen=True)
class Annotator:
    """A person painting brush strokes on 2-D slices.

    Attributes
    ----------
    seed, index : the study seed and the user's index.
    radius : int
        Brush radius in pixels (uniform 2–4; an assumption). Where a phase (for corrections: a wrong
        region of it) has no region wide enough for brush and margin, the person takes a thinner brush
        and a smaller margin for that slice, down to radius 1 and no margin.
    margin : int
        Unpainted pixels a stroke leaves between itself and the other phase (uniform 1–2; an assumption).
    length : int
        Typical stroke length in pixels; each stroke is 0.5–1.5 times it (uniform 15–40).
    wiggle : float
        Standard deviation of the stroke's change of direction per pixel, radians (0.05–0.2).
    mislabel : float
        Probability that a stroke is painted with the wrong class (uniform 0.01–0.03).
    """

    seed: int
    index: int
    radius: int
    margin: int
    length: int
    wiggle: float
    mislabel: float

    @classmethod
    def draw(cls, seed: int, index: int) -> Annotator:
        """This user's painting habits, from the study seed."""
        rng = user_rng(seed, index, "annotator habits")
        return cls(int(seed), int(index), int(rng.integers(2, 5)), int(rng.integers(1, 3)), int(rng.integers(15, 41)),
                   float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.01, 0.03)))

    def paint(self, judgement: np.ndarray, coverage: float, *, wrong: np.ndarray | None = None,
              stream: str = "") -> Stroke:
        """Paint strokes on one slice until ``coverage`` of its pixels are labelled (or nowhere is left).

        Parameters
        ----------
        judgement : (y, x) uint8
            What the person judges right: 1 active, 2 rest, 0 no opinion (never painted).
        coverage : float
            Share of the slice's pixels to label, in (0, 1].
        wrong : (y, x) bool, optional
            For corrections: where the current prediction differs from the judgement; strokes
            start and run only there.
        stream : str
            Names this slice's decisions (the random stream), e.g. ``"MLX10 raw z=16"``.

        Returns
        -------
        Stroke
            ``labels`` (y, x) uint8: 0 unlabelled, 1 active, 2 rest.

        Examples
        --------
        >>> truth = np.ones((40, 40), np.uint8); truth[:, 20:] = 2
        >>> s = Annotator(0, 0, radius=2, margin=1, length=20, wiggle=0.1, mislabel=0.0).paint(truth, 0.2)
        >>> s.coverage >= 0.2, bool(np.all((s.labels == 0) | (s.labels == truth)))
        (True, True)
        """
        if not 0 < coverage <= 1:
            raise ParameterError(f"coverage {coverage:g} must lie in (0, 1]")
        judgement = np.asarray(judgement)
        rng = user_rng(self.seed, self.index, "paint", stream)
        labels = np.zeros(judgement.shape, np.uint8)
        target = math.ceil(coverage * judgement.size)
        radius, margin = self.radius, self.margin
        where = np.ones(judgement.shape, bool) if wrong is None else np.asarray(wrong, bool)
        present = [c for c in (ACTIVE, REST) if np.any((judgement == c) & where)]
        while True:  # a brush too wide for a phase's regions (or the wrong ones): the person takes a thinner one
            need = radius + margin + 1  # the path's distance to the other phase: ``margin`` pixels left between
            interior = {c: (ndi.distance_transform_edt(judgement == c) >= need) & where for c in (ACTIVE, REST)}
            if all(interior[c].any() for c in present) or need <= MIN_REACH:
                break
            radius, margin = max(radius - 1, 1), max(margin - 1, 0)
        disc = np.argwhere(np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius) - radius
        free = {c: m.copy() for c, m in interior.items()}  # where a new stroke may start
        nfree = {c: int(np.count_nonzero(m)) for c, m in free.items()}
        picker = {c: _Picker(free[c], rng) for c in free}
        painted = strokes = mislabelled = 0
        while painted < target:
            classes = [c for c in (ACTIVE, REST) if nfree[c]]
            if not classes:
                break
            c = classes[strokes % len(classes)]  # people paint both phases, one stroke after the other
            path = _walk(picker[c].pick(), interior[c], self.length, self.wiggle, rng)
            label = c if rng.random() >= self.mislabel else (REST if c == ACTIVE else ACTIVE)
            pixels = _disc_pixels(path, disc, labels.shape)
            room = target - painted
            if any(nfree[k] and not np.any(labels == k) for k in classes if k != c):
                room = max(1, room // 2)  # leave room for the phase not painted yet: people paint both
            new = pixels[labels[pixels[:, 0], pixels[:, 1]] == 0][:room]  # stop mid-stroke when done
            labels[new[:, 0], new[:, 1]] = label
            painted += len(new)
            strokes += 1
            mislabelled += int(label != c)
            for k in free:  # painted pixels, and the path itself, are no stroke's start any more
                free[k][new[:, 0], new[:, 1]] = False
                free[k][path[:, 0], path[:, 1]] = False
                nfree[k] = int(np.count_nonzero(free[k]))
        return Stroke(labels, strokes, mislabelled, float(np.count_nonzero(labels)) / labels.size)


class _Picker:
    """Uniformly random pixels of a shrinking mask: a few guesses first (cheap on large slices), then a
    list of the mask's pixels, recomputed only when it has gone stale."""

    def __init__(self, mask: np.ndarray, rng: np.random.Generator):
        self.mask, self.rng, self.listed = mask, rng, np.zeros(0, np.int64)

    def pick(self) -> np.ndarray:
        shape = self.mask.shape
        for _ in range(16):
            p = np.array([self.rng.integers(0, shape[0]), self.rng.integers(0, shape[1])])
            if self.mask[p[0], p[1]]:
                return p
        for _ in range(2):
            for _ in range(16 if len(self.listed) else 0):
                p = np.array(np.unravel_index(self.listed[self.rng.integers(0, len(self.listed))], shape))
                if self.mask[p[0], p[1]]:
                    return p
            self.listed = np.flatnonzero(self.mask)
        return np.array(np.unravel_index(self.listed[self.rng.integers(0, len(self.listed))], shape))


def _walk(start: np.ndarray, allowed: np.ndarray, length: int, wiggle: float, rng: np.random.Generator) -> np.ndarray:
    """A stroke's path from ``start``: a smooth random walk of 0.5–1.5 × ``length`` px, ending where ``allowed`` ends."""
    n = int(rng.integers(max(1, length // 2), max(2, 3 * length // 2 + 1)))
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, wiggle, n))
    steps = np.stack([np.sin(theta), np.cos(theta)], axis=1)
    points = np.rint(start + np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])).astype(np.int64)
    inside = np.all((points >= 0) & (points < allowed.shape), axis=1)
    ok = inside.copy()
    ok[inside] = allowed[points[inside, 0], points[inside, 1]]
    stop = int(np.argmin(ok)) if not ok.all() else len(ok)
    return points[: max(stop, 1)]


def _disc_pixels(path: np.ndarray, disc: np.ndarray, shape: Any) -> np.ndarray:
    """Pixels the brush covers along ``path``, in the order it reaches them, each once, inside ``shape``."""
    pixels = (path[:, None, :] + disc[None, :, :]).reshape(-1, 2)
    pixels = pixels[np.all((pixels >= 0) & (pixels < shape), axis=1)]
    _, first = np.unique(pixels[:, 0] * shape[1] + pixels[:, 1], return_index=True)
    return pixels[np.sort(first)]
