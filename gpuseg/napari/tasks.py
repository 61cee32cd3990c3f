"""Long runs for a GUI: :func:`gpuseg.classify.predict` reporting its progress to a callback and stopping on request.

The engine reports progress as a bar on standard error (:mod:`gpuseg.progress`) and has no hook for a callback
or a stop request, so this module watches the run's dask graph instead (a dask scheduler callback, which the
local schedulers call in the thread that computes): each finished task advances ``report(done, total)``, and
once ``cancel`` is set no further task starts. The blocks already running finish, the engine discards or keeps
its hidden partial output as after any failure (:mod:`gpuseg.engine.outputs`: a target is only ever replaced by
a complete output, and a rerun resumes the partial), and :class:`Cancelled` is raised. It needs a local
scheduler (``threads``, the default, or ``synchronous``). The widget's three jobs, run in worker threads
(:func:`preview_job`, :func:`train_job`, :func:`predict_job`), are here too, away from Qt.

Examples
--------
>>> import os, tempfile, threading
>>> import numpy as np
>>> from gpuseg import classify, volumes
>>> rng = np.random.default_rng(0)
>>> truth = (np.indices((16, 16, 16)).sum(axis=0) > 22).astype(np.uint8) + 1
>>> folder = tempfile.mkdtemp()
>>> image = volumes.save((truth * 60 + rng.normal(0, 9, truth.shape)).astype(np.float32), f"{folder}/v.zarr/raw", chunks=8)
>>> scribbles = np.zeros_like(truth); scribbles[8, ::2, ::2] = truth[8, ::2, ::2]
>>> forest = classify.train(image[:], scribbles, features="gaussian:1.0", trees=3, device="cpu").forest
>>> seen = []
>>> _ = predict(f"{folder}/v.zarr/raw", forest, f"{folder}/p.zarr/labels", report=lambda d, t: seen.append((d, t)),
...             device="cpu", chunks=8)
>>> seen[-1][0] == seen[-1][1] > 0
True
>>> stop = threading.Event()                          # set once the first of its 8 blocks is done
>>> predict(f"{folder}/v.zarr/raw", forest, f"{folder}/q.zarr/labels", report=lambda d, t: d and stop.set(),
...         cancel=stop, device="cpu", chunks=8, block_shape=(8, 8, 8), workers=1)
Traceback (most recent call last):
...
gpuseg.napari.tasks.Cancelled: .../q.zarr/labels: stopped before its end, not written (a rerun resumes it)
>>> os.path.exists(f"{folder}/q.zarr/labels")
False
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from dask.callbacks import Callback

from .. import classify
from ..classify import preview as pv

Report = Callable[[int, int], None]


class Cancelled(Exception):
    """A run stopped on request (not a :class:`~gpuseg.errors.GpusegError`: nobody did anything wrong)."""


class _Watch(Callback):
    """Count a local dask computation's tasks into ``report``; refuse to start one once ``cancel`` is set.

    dask's callbacks are global while registered: only computations started from the registering thread are
    watched (a local scheduler calls them in the thread that computes), so a training in another thread is
    neither counted nor stopped.
    """

    def __init__(self, report: Report | None, cancel: threading.Event | None):
        super().__init__()
        self.report, self.cancel = report, cancel
        self.thread = threading.get_ident()
        self.done = self.total = 0

    def _start_state(self, dsk: Any, state: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        self.total += len(state["ready"]) + len(state["waiting"])
        if self.report is not None:
            self.report(self.done, self.total)

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        if threading.get_ident() == self.thread and self.cancel is not None and self.cancel.is_set():
            raise Cancelled("stopped on request")

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


@contextlib.contextmanager
def watched(report: Report | None = None, cancel: threading.Event | None = None) -> Iterator[None]:
    """Within: every local dask computation reports its tasks to ``report`` and stops once ``cancel`` is set."""
    with _Watch(report, cancel):
        yield


def predict(image: str | os.PathLike[str], model: Any, output: str | os.PathLike[str], *,
            report: Report | None = None, cancel: threading.Event | None = None, **options: Any) -> str:
    """:func:`gpuseg.classify.predict` of ``image`` into ``output`` (and its other outputs: ``options``), watched.

    Parameters
    ----------
    image, model, output, **options
        As :func:`gpuseg.classify.predict` takes them (``scheduler`` must be a local one).
    report : callable, optional
        ``report(done, total)``: tasks finished, of those known so far.
    cancel : threading.Event, optional
        Set it (from any thread) to stop the run.

    Returns
    -------
    str
        The labels' path.

    Raises
    ------
    Cancelled
        ``cancel`` was set before the last task started.
    """
    stopped = Cancelled(f"{os.fspath(output)}: stopped before its end, not written (a rerun resumes it)")
    if cancel is not None and cancel.is_set():
        raise stopped
    try:
        with watched(report, cancel):
            return classify.predict(image, model, output, **options)
    except Cancelled:
        raise stopped from None


# --------------------------------------------------------------------------- the widget's jobs (worker threads)


def preview_job(session: pv.SlicePreview, z: int, labels: Any, painted: list[int], trees: int,
                forest: classify.Forest | None) -> tuple[Any, pv.SlicePrediction | None, dict[str, float]]:
    """Features of slice ``z`` (cached), a live forest on ``labels`` (when given), the slice predicted; timings."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if not session.cached(z):
        session.features(z)
        timings["features"] = time.perf_counter() - start
    if labels is not None:
        t = time.perf_counter()
        X, y = session.samples(labels, painted)
        if len(np.unique(y)) < 2:  # while the first class is painted: no preview yet, and nothing to say
            return None, None, timings
        forest = session.fit(X, y, trees=trees)
        timings["train"] = time.perf_counter() - t
    if forest is None:
        return None, None, timings
    t = time.perf_counter()
    shown = session.predict(z, forest)
    timings["predict"] = time.perf_counter() - t
    return forest, shown, timings


def train_job(source: Any, labels: np.ndarray, features: str, twod: bool, trees: int | None) -> classify.TrainResult:
    return classify.train(source, labels, features=features, twod=twod, trees=trees)


def predict_job(source: str, forest: classify.Forest, labels: str, targets: dict[str, str | None], overwrite: bool,
                cancel: threading.Event, report: Any, done: threading.Event, options: dict[str, Any]) -> str:
    try:
        return predict(source, forest, labels, uncertainty=targets["uncertainty"],
                       probabilities=targets["probabilities"], overwrite=overwrite, report=report, cancel=cancel,
                       **options)
    finally:
        done.set()
