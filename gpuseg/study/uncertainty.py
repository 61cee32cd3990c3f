"""The uncertainty one user can report: an interval for the active-material fraction from one forest's probabilities.

One user trains one forest and gets one segmentation; the study shows that another person, painting
other scribbles, would have found another fraction. What a single user has besides their labels is
the forest's per-voxel probabilities. Where the forest is sure (p(active) near 0 or 1) another
person's forest would very likely agree; where it hesitates, a slightly different training set moves
the boundary. So the interval starts from the fractions the same forest gives when its decision
threshold moves by ± ``delta``:

* the margin of a voxel is ``m = p(active) − max p(other class)`` (two classes: ``m = 2 p − 1``); the
  forest labels it active where ``m > 0`` (a tie, ``m = 0``, goes to the first class, as ``argmax``);
* voxels with ``|m| ≤ 2 delta`` are *undecided* (two classes: ``p(active)`` within ``0.5 ± delta``;
  at the default 0.25, at least a quarter of the trees vote against the majority);
* with none of them active the fraction is ``f₋`` (the share of voxels with ``m > 2 delta``), with all
  of them ``f₊`` (``m ≥ −2 delta``); the labels' fraction ``f`` lies in between;
* the interval is ``[f − widen (f − f₋), f + widen (f₊ − f)]`` (within [0, 1]).

``widen`` is not a property of one forest: it is calibrated on simulated users (``benchmarks/uncertainty.py``:
the value for which the other users' fractions fall inside a user's interval as often as :data:`COVERAGE`
says, reported on phantoms and seeds other than those it was calibrated on; ``docs/study.md``,
"Uncertainty one user can report", has the measurement, the other methods tried, and how well it holds).
``widen=1`` is the plain threshold interval.

Out of core: one pass of :func:`gpuseg.engine.reduce.sum_over_chunks` counts the voxels at every value of
``p(active)`` and of the margin on the grid of stored uint8 probabilities (1/255), a
:class:`ProbabilitySummary`; every fraction and interval follows from those 767 counts. Float
probabilities are read on the same grid, rounded as ``gpuseg predict`` rounds them to uint8.

Examples
--------
>>> import numpy as np
>>> p = np.array([0.0, 0.2, 0.45, 0.55, 0.9, 1.0], np.float32).reshape(1, 1, 6)
>>> interval = active_fraction_interval(np.stack([p, 1 - p]), classes=[1, 2], delta=0.1, widen=1,
...                                     scheduler="synchronous")
>>> round(interval.fraction, 4), round(interval.low, 4), round(interval.high, 4)
(0.5, 0.3333, 0.6667)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, validate
from ..engine import is_path, reduce
from ..errors import InputError, ParameterError
from ..io import open_array, parse
from ..io.zarrio import normalize_chunks
from .defaults import ACTIVE, DELTA, WIDEN

LEVELS = 255
"""Steps of the probability grid: ``gpuseg predict`` stores probabilities as uint8, p = k / 255."""
COVERAGE = 0.9
"""How often another user's fraction should fall inside one user's interval: what :data:`WIDEN` is calibrated to."""


# --------------------------------------------------------------------------- the one pass


def _on_grid(xp: Any, block: Any) -> Any:
    """Probabilities as integers 0..255: uint8 as stored, floats rounded as ``gpuseg predict`` stores them."""
    if block.dtype == xp.uint8:
        return block.astype(xp.int32)
    return xp.rint(xp.clip(block.astype(xp.float32), 0, 1) * LEVELS).astype(xp.int32)


def summary_block(block: Any, *, channel: int) -> Any:
    """Voxel counts of one chunk ``(K, z, y, x)``: per p(active) step, then per margin step.

    Layout: ``LEVELS + 1`` counts of ``p(active) = k / LEVELS``, then ``2 LEVELS + 1`` counts of the
    margin ``p(active) − max p(other)`` ``= (k − LEVELS) / LEVELS``.

    Examples
    --------
    >>> counts = summary_block(np.array([[[[255, 128]]], [[[0, 127]]]], np.uint8), channel=0)
    >>> int(counts[255]), int(counts[128]), int(counts[LEVELS + 1 + 2 * LEVELS]), int(counts[LEVELS + 1 + LEVELS + 1])
    (1, 1, 1, 1)
    """
    xp = backend.for_array(block).xp
    grid = _on_grid(xp, block)
    active = grid[channel].ravel()
    others = [k for k in range(grid.shape[0]) if k != channel]
    best_other = grid[others].max(axis=0).ravel() if others else xp.zeros_like(active)
    margin = active - best_other + LEVELS
    return xp.concatenate([backend.count(active, LEVELS + 1), backend.count(margin, 2 * LEVELS + 1)])


# --------------------------------------------------------------------------- what follows from the counts


@dataclasses.dataclass(frozen=True)
class FractionInterval:
    """One forest's active-material fraction and the interval a user reports with it.

    Attributes
    ----------
    fraction : float
        The labels' fraction (argmax of the probabilities).
    low, high : float
        The interval: the fraction minus / plus ``widen`` times its distance to the fraction with none / all
        of the undecided voxels active.
    delta : float
        The threshold shift in p(active) that made them undecided.
    widen : float
    soft_fraction : float
        The mean of p(active) (for comparison; not the point estimate).
    voxels : int
    """

    fraction: float
    low: float
    high: float
    delta: float
    widen: float
    soft_fraction: float
    voxels: int

    @property
    def width(self) -> float:
        return self.high - self.low

    def __contains__(self, fraction: float) -> bool:
        return self.low <= fraction <= self.high

    def __str__(self) -> str:
        return f"{self.fraction:.4f} [{self.low:.4f}, {self.high:.4f}]"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "width": self.width}


@dataclasses.dataclass(frozen=True)
class ProbabilitySummary:
    """Voxel counts of a probability volume on the uint8 grid: all an interval needs.

    Attributes
    ----------
    probability_counts : ndarray of int64, (LEVELS + 1,)
        Voxels with ``p(active) = k / LEVELS``.
    margin_counts : ndarray of int64, (2 LEVELS + 1,)
        Voxels with margin ``p(active) − max p(other) = (k − LEVELS) / LEVELS``.
    ties_active : bool
        Whether a voxel whose margin is 0 is labelled active (``argmax`` gives ties to the first channel).

    Examples
    --------
    >>> p = np.array([0, 100, 128, 200], np.uint8).reshape(1, 1, 4)
    >>> s = summarize(np.stack([p, 255 - p]), classes=[1, 2], scheduler="synchronous")
    >>> s.voxels, s.fraction(), s.undecided(0.25)
    (4, 0.5, 0.5)
    """

    probability_counts: np.ndarray
    margin_counts: np.ndarray
    ties_active: bool

    @property
    def voxels(self) -> int:
        return int(self.probability_counts.sum())

    def _share(self, counts: np.ndarray) -> float:
        return float(counts.sum()) / self.voxels if self.voxels else float("nan")

    def _steps(self, delta: float) -> int:
        """The margin ``2 delta`` in grid steps (rounded: the grid is all there is)."""
        return int(round(2 * validate.number("delta", delta, at_least=0, at_most=0.5) * LEVELS))

    def fraction(self) -> float:
        """The labels' active fraction: margin above 0, and a tie where ties go to the active class."""
        return self._share(self.margin_counts[LEVELS + (0 if self.ties_active else 1):])

    def soft_fraction(self) -> float:
        """The mean of p(active)."""
        return float(self.probability_counts @ np.arange(LEVELS + 1)) / LEVELS / self.voxels if self.voxels else float("nan")

    def undecided(self, delta: float) -> float:
        """Share of voxels whose margin lies within ± 2 ``delta`` (two classes: p(active) within 0.5 ± delta)."""
        k = self._steps(delta)
        return self._share(self.margin_counts[LEVELS - k: LEVELS + k + 1])

    def interval(self, delta: float = DELTA, widen: float = WIDEN) -> FractionInterval:
        """The labels' fraction, and around it ``widen`` times its distance to the fraction with none (``low``) and
        with all (``high``) of the undecided voxels active, within [0, 1]."""
        k = self._steps(delta)
        widen = validate.number("widen", widen, at_least=0)
        fraction = self.fraction()
        none, every = self._share(self.margin_counts[LEVELS + k + 1:]), self._share(self.margin_counts[LEVELS - k:])
        return FractionInterval(fraction, max(0.0, fraction - widen * (fraction - none)),
                                min(1.0, fraction + widen * (every - fraction)), float(delta), float(widen),
                                self.soft_fraction(), self.voxels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the counts as lists): what the benchmark stores to calibrate on."""
        return {"probability_counts": self.probability_counts.tolist(), "margin_counts": self.margin_counts.tolist(),
                "ties_active": self.ties_active}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbabilitySummary:
        return cls(np.asarray(d["probability_counts"], np.int64), np.asarray(d["margin_counts"], np.int64),
                   bool(d["ties_active"]))


# --------------------------------------------------------------------------- public API


def _channel(classes: Sequence[int] | None, active: int, channels: int, name: str) -> int:
    if classes is None:
        raise ParameterError(f"{name}: which channel is active material is not recorded; give classes= (the model's "
                             "classes, e.g. forest.classes, one per channel)")
    values = [int(c) for c in classes]
    if len(values) != channels:
        raise InputError(f"{name}: {channels} probability channels but {len(values)} classes {values}; give the "
                         "classes of the model that wrote them")
    if len(set(values)) < len(values):
        raise InputError(f"{name}: classes {values} name a class twice; give the classes of the model that wrote them")
    if active not in values:
        raise InputError(f"{name}: no channel is class {active} (active material) among classes {values}; "
                         "train with active material labelled 1")
    return values.index(active)


def _check_dtype(dtype: Any, name: str) -> None:
    if np.dtype(dtype) != np.uint8 and np.dtype(dtype).kind != "f":
        raise InputError(f"{name}: dtype {np.dtype(dtype)} is not a probability volume; give the uint8 (0-255) or "
                         "float probabilities gpuseg predict writes")


def _opened(probabilities: Any, classes: Sequence[int] | None, active: int,
            chunks: int | Sequence[int] | None) -> tuple[Any, int]:
    """``probabilities`` as a lazy dask array (K, z, y, x) read chunk by chunk, each chunk holding every class of
    its voxels; and the active channel."""
    import dask.array as da
    import zarr

    name = os.fspath(probabilities) if is_path(probabilities) else "probabilities"
    if hasattr(probabilities, "probabilities") and hasattr(probabilities, "labels"):  # a classify.Prediction
        probabilities = probabilities.probabilities
    arr: Any = probabilities
    if is_path(probabilities):
        kind = parse(probabilities).kind
        if kind == "zarr":
            arr = open_array(probabilities)
            classes = classes if classes is not None else arr.attrs.get("classes")
        elif kind == "npy":
            arr = np.load(os.fspath(probabilities), mmap_mode="r")  # read chunk by chunk, never whole
        else:
            raise InputError(f"{name}: probabilities are 4-D (class, z, y, x) in zarr or .npy; give the path "
                             "gpuseg predict --probabilities wrote")
    if len(arr.shape) != 4:
        raise InputError(f"{name}: expected probabilities (class, z, y, x), found shape {tuple(arr.shape)}")
    _check_dtype(arr.dtype, name)
    channel = _channel(classes, int(active), int(arr.shape[0]), name)
    if isinstance(arr, zarr.Array):
        lazy = reduce.from_zarr(arr, arr.chunks)
    elif isinstance(arr, da.Array):
        lazy = arr
    else:
        lazy = da.from_array(arr, chunks=(arr.shape[0], *normalize_chunks(chunks, arr.shape[1:])), asarray=False)
    spatial = normalize_chunks(chunks, arr.shape[1:]) if chunks is not None else tuple(c[0] for c in lazy.chunks[1:])
    whole = (arr.shape[0], *spatial)
    return (lazy if tuple(c[0] for c in lazy.chunks) == whole else lazy.rechunk(whole)), channel


def summarize(
    probabilities: Any,
    *,
    classes: Sequence[int] | None = None,
    active: int = ACTIVE,
    chunks: int | Sequence[int] | None = None,
    device: str = "cpu",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> ProbabilitySummary:
    """Count the voxels of a probability volume per p(active) and per margin, one chunk at a time.

    Parameters
    ----------
    probabilities : path, array or Prediction
        ``(K, z, y, x)`` uint8 (0–255) or float: a zarr (or ``.npy``) written by
        ``gpuseg.classify.predict(..., probabilities=PATH)``, an array, or a
        :class:`gpuseg.classify.Prediction` in memory.
    classes : sequence of int, optional
        The class value of each channel (the model's ``forest.classes``). Default: the ``classes``
        attribute ``gpuseg predict`` stores with the probabilities; arrays need it.
    active : int
        The class value of active material.
    chunks : int or (z, y, x), optional
        Read chunk shape (default: the stored chunks; an array in memory: whole).
    device, scheduler, workers, progress : see :func:`gpuseg.engine.reduce.sum_over_chunks`.

    Returns
    -------
    ProbabilitySummary

    Raises
    ------
    InputError
        Not 4-D, not uint8 or float, no channel of class ``active``, or channels and classes differ in number.
    ParameterError
        An array without ``classes``.
    """
    lazy, channel = _opened(probabilities, classes, active, chunks)
    counts = reduce.sum_over_chunks(summary_block, [lazy], kwargs={"channel": channel}, device=device,
                                    scheduler=scheduler, workers=workers, progress=progress, desc="interval")
    return ProbabilitySummary(counts[: LEVELS + 1], counts[LEVELS + 1:], channel == 0)


def active_fraction_interval(probabilities: Any, *, delta: float = DELTA, widen: float = WIDEN,
                             **options: Any) -> FractionInterval:
    """The active-material fraction of one forest's prediction and the interval its user can report.

    Parameters
    ----------
    probabilities : path, array or Prediction
        See :func:`summarize`.
    delta : float
        Threshold shift in p(active) that makes a voxel undecided, in [0, 0.5].
    widen : float
        How many times the threshold interval is widened (1: not at all); default :data:`WIDEN`, calibrated on
        simulated users for :data:`COVERAGE`.
    **options
        classes, active, chunks, device, scheduler, workers, progress (:func:`summarize`).

    Returns
    -------
    FractionInterval
    """
    validate.number("delta", delta, at_least=0, at_most=0.5)
    validate.number("widen", widen, at_least=0)
    return summarize(probabilities, **options).interval(delta, widen)
