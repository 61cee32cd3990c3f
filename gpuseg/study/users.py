"""Simulated users of the reference study: seeded, documented models of a person's habits.

A study user is one person with three sets of habits, each drawn once from the study's seed
and the user's index (:func:`gpuseg.study.streams.user_rng`: a ``numpy`` ``SeedSequence`` keyed by both), so the
same seed gives the same people on every machine, scheduler and worker count:

* :class:`ThresholdUser` — chooses a grey value by eye from the histogram plot: the valley
  between the phases' peaks (:func:`valley`), moved by a personal bias and a per-decision
  scatter. The study's S1/S2/S3 are that value −10 / 0 / +10 grey levels
  (:func:`gpuseg.segment.threshold.study_thresholds`).
* :class:`WatershedUser` — omits a grey window around their threshold and lets the
  watershed flood it: small (gWS) or large (cWS), its width a habit.
* :class:`~gpuseg.study.annotator.Annotator` — paints brush strokes on one 2-D slice at a time (a personal brush
  radius, a distance kept from boundaries, strokes of a personal length and wiggle, a small
  rate of strokes painted with the wrong class) until a share of the slice is covered.

What each may read, as the study's people could: threshold and watershed users read only the
grey-value histogram (computed out of core by :func:`gpuseg.segment.threshold.histogram`),
never the truth. An annotator reads one 2-D slice at a time: the grey slice, for corrections
the slice of the current prediction, and a *judgement* slice that says what is right there —
the truth slice where the study has one (their own error is the mislabel rate), else
:func:`gpuseg.study.annotator.own_judgement` of the grey slice. Nothing here reads a volume.

Defaults and where they come from. The study fixes S1/S3 = S2 ∓ 10 grey levels, and the
annotated slices and coverages of its protocols (:mod:`gpuseg.study.protocols`). Everything
else is this project's assumption, chosen to look like a careful person at a desk: a bias of
the chosen threshold with a standard deviation of 3 % of the grey spread (the range holding
the central 98 % of voxels) and a scatter of 1 %; gWS windows 4–8 % and cWS windows 15–25 %
of the spread, split 30/70 to 70/30 around the threshold; brush radius 2–4 px, 1–2 px kept
from boundaries, strokes 15–40 px long, 1–3 % of strokes mislabelled.

Examples
--------
>>> user = User.draw(seed=7, index=0)
>>> user == User.draw(seed=7, index=0), user == User.draw(seed=7, index=1)
(True, False)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy import signal

from ..errors import ParameterError
from .annotator import Annotator
from .streams import user_rng

#: Share of voxels outside the grey spread on each side (the spread holds the central 98 %).
SPREAD_TAIL = 0.01
#: Plot smoothing: a person reads a histogram at about 1/50 of its width.
PLOT_SMOOTHING = 1 / 50
#: A peak is a peak to the eye when it rises 5 % of the highest peak above its surroundings.
PEAK_PROMINENCE = 0.05


# --------------------------------------------------------------------------- what a histogram shows


def spread(counts: np.ndarray, centers: np.ndarray) -> tuple[float, float]:
    """The grey range holding the central 98 % of voxels (the part of a histogram a person looks at).

    Examples
    --------
    >>> spread(np.array([1, 98, 1]), np.array([0.0, 1.0, 2.0]))
    (1.0, 1.0)
    """
    cum = np.cumsum(counts) / max(int(np.sum(counts)), 1)
    lo = centers[min(int(np.searchsorted(cum, SPREAD_TAIL, side="right")), len(centers) - 1)]
    hi = centers[min(int(np.searchsorted(cum, 1 - SPREAD_TAIL, side="left")), len(centers) - 1)]
    return float(lo), float(hi)


def valley(counts: np.ndarray, centers: np.ndarray) -> float:
    """The grey value a person reads as the valley between the two phases' peaks of a histogram plot.

    The histogram is smoothed as a plot shows it (a Gaussian of :data:`PLOT_SMOOTHING` of its
    width); the two most prominent peaks are taken and the lowest point between them is the
    valley. A histogram with no two clear peaks (a noisy tomogram) has no valley to see; the
    user then takes Otsu's threshold, our stand-in for where a person puts the cut on a shoulder
    (an assumption: the study does not say).

    Examples
    --------
    >>> x = np.arange(256.0)
    >>> counts = np.exp(-(x - 60) ** 2 / 200) + np.exp(-(x - 180) ** 2 / 200)
    >>> abs(valley(counts, x) - 120) <= 1
    True
    """
    from skimage.filters import threshold_otsu

    counts = np.asarray(counts, dtype=np.float64)
    smooth = ndi.gaussian_filter1d(counts, max(1.0, len(counts) * PLOT_SMOOTHING), mode="constant")
    peaks, props = signal.find_peaks(smooth, prominence=PEAK_PROMINENCE * float(smooth.max(initial=0)))
    if len(peaks) >= 2:
        a, b = sorted(peaks[np.argsort(props["prominences"])[-2:]])
        return float(centers[a + int(np.argmin(smooth[a : b + 1]))])
    return float(threshold_otsu(hist=(np.asarray(counts), np.asarray(centers))))


def _nearest(value: float, centers: np.ndarray) -> float:
    """The grey value on the plot's axis nearest ``value``: an integer grey level, or a bin centre."""
    centers = np.asarray(centers)
    if centers.dtype.kind in "iu":
        return float(np.clip(round(value), centers[0], centers[-1]))
    return float(centers[int(np.argmin(np.abs(centers - value)))])


# --------------------------------------------------------------------------- threshold and watershed users


@dataclasses.dataclass(frozen=True)
class ThresholdUser:
    """A person choosing a threshold by eye from the histogram.

    Attributes
    ----------
    seed, index : the study seed and the user's index (their decisions' random stream).
    bias : float
        Personal, constant offset from the valley, as a share of the grey spread (default
        draw: normal, sd 0.03; an assumption).
    scatter : float
        Standard deviation of each decision around ``valley + bias``, as a share of the spread
        (default 0.01; an assumption).
    """

    seed: int
    index: int
    bias: float
    scatter: float

    @classmethod
    def draw(cls, seed: int, index: int, *, bias_sd: float = 0.03, scatter: float = 0.01) -> ThresholdUser:
        """This user's habits, from the study seed."""
        rng = user_rng(seed, index, "threshold habits")
        return cls(int(seed), int(index), float(rng.normal(0.0, bias_sd)), float(scatter))

    def choose(self, counts: np.ndarray, centers: np.ndarray, view: str = "") -> float:
        """The grey value this user reads off the histogram ``(counts, centers)`` (their S2).

        ``view`` names what is looked at (``"raw"``, ``"filtered"``): each view is a new
        decision with its own scatter; the bias stays.

        Examples
        --------
        >>> x = np.arange(256); counts = np.exp(-(x - 60.0) ** 2 / 200) + np.exp(-(x - 180.0) ** 2 / 200)
        >>> ThresholdUser(0, 0, bias=0.0, scatter=0.0).choose(counts, x)
        120.0
        """
        lo, hi = spread(counts, centers)
        noise = float(user_rng(self.seed, self.index, "threshold", view).normal(0.0, 1.0)) * self.scatter
        return _nearest(valley(counts, centers) + (self.bias + noise) * (hi - lo), centers)


@dataclasses.dataclass(frozen=True)
class WatershedUser:
    """A person omitting a grey window around their threshold for a seeded watershed to flood.

    Attributes
    ----------
    seed, index : the study seed and the user's index.
    small, large : float
        Width of the gWS and cWS windows as shares of the grey spread (default draws: uniform
        0.04–0.08 and 0.15–0.25; assumptions: the study says only "small" and "large").
    below : float
        Share of the window below the threshold (uniform 0.3–0.7: how a person centres it).
    """

    seed: int
    index: int
    small: float
    large: float
    below: float

    @classmethod
    def draw(cls, seed: int, index: int) -> WatershedUser:
        """This user's habits, from the study seed."""
        rng = user_rng(seed, index, "watershed habits")
        return cls(int(seed), int(index), float(rng.uniform(0.04, 0.08)), float(rng.uniform(0.15, 0.25)),
                   float(rng.uniform(0.3, 0.7)))

    def window(self, threshold: float, counts: np.ndarray, centers: np.ndarray, size: str = "small") -> tuple[float, float]:
        """``(low, high)`` omitted around ``threshold``: ``size`` ``"small"`` (gWS) or ``"large"`` (cWS).

        Examples
        --------
        >>> x = np.arange(256); counts = np.ones(256)
        >>> WatershedUser(0, 0, small=0.1, large=0.3, below=0.5).window(128, counts, x, "large")
        (90.0, 166.0)
        """
        if size not in ("small", "large"):
            raise ParameterError(f"window size {size!r}: use small (gWS) or large (cWS)")
        lo, hi = spread(counts, centers)
        width = (self.small if size == "small" else self.large) * (hi - lo)
        low = _nearest(threshold - self.below * width, centers)
        high = _nearest(threshold + (1 - self.below) * width, centers)
        if high <= low:  # a window narrower than one grey level: the person opens it by one
            high = low + (1.0 if np.asarray(centers).dtype.kind in "iu" else float(np.diff(centers[:2])[0]))
        return low, high


@dataclasses.dataclass(frozen=True)
class User:
    """One simulated person of the study: their threshold, watershed and painting habits.

    Examples
    --------
    >>> u = User.draw(seed=0, index=2)
    >>> u.name, 2 <= u.annotator.radius <= 4
    ('u3', True)
    """

    index: int
    threshold: ThresholdUser
    watershed: WatershedUser
    annotator: Annotator

    @property
    def name(self) -> str:
        return f"u{self.index + 1}"

    @classmethod
    def draw(cls, seed: int, index: int) -> User:
        """User ``index`` (0-based) of the study with ``seed``."""
        return cls(int(index), ThresholdUser.draw(seed, index), WatershedUser.draw(seed, index), Annotator.draw(seed, index))

    def habits(self) -> dict[str, Any]:
        """Every habit, JSON-ready (for the report)."""
        skip = ("seed", "index")
        return {part: {k: v for k, v in dataclasses.asdict(getattr(self, part)).items() if k not in skip}
                for part in ("threshold", "watershed", "annotator")}
