"""Global thresholds: manual (S1/S2/S3), Otsu and multi-Otsu from a one-pass chunked histogram.

The histogram is a dask reduction over chunks (:func:`gpuseg.engine.reduce.sum_over_chunks`):
exact int64 counts, equal to ``skimage.exposure.histogram(image, nbins)`` of the whole
array, so :func:`threshold_otsu` and :func:`threshold_multiotsu` return exactly what
scikit-image returns on the whole array.

Binning
-------
* Integer volumes: one bin per grey value from the volume's minimum to its maximum
  (``nbins`` is ignored, as in scikit-image). 8- and 16-bit volumes need one pass; 32-bit
  volumes a first pass for the minimum and maximum.
* Float volumes: ``nbins`` equal-width bins from the global minimum to the global maximum,
  found in a first pass; bin edges and bin membership follow ``numpy.histogram`` exactly
  (edges in the volume's float type, the last bin closed on the right), bin centres are
  the edge midpoints, and thresholds are bin centres. The result therefore depends on
  ``nbins`` (default 256): a threshold is never finer than ``(max - min) / nbins``.

Labels
------
A volume cut by thresholds ``t1 < t2 < ...`` gets one class per interval, with
``value > t`` meaning above a threshold. Two phases: above → 1 (active material),
otherwise 2 (non-active). Three phases: above ``t2`` → 1 (active), above ``t1`` → 2
(carbon-binder), otherwise 3 (pore).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from typing_extensions import Unpack

from .. import backend, validate
from ..engine import Operation, Result, RunOptions, is_path, outputs, process, reduce
from ..errors import InputError, ParameterError
from ..io import metadata

STUDY_OFFSET = 10  # the study's S1/S3: 10 grey values below/above the user's threshold S2
PHASE_NAMES = metadata.PHASE_NAMES


# --------------------------------------------------------------------------- histogram


def _int_counts(block: Any, *, offset: int, nbins: int) -> Any:
    """Counts of ``block - offset`` in ``nbins`` integer bins (values must lie inside)."""
    xp = backend.for_array(block).xp
    flat = block.ravel()
    if offset or flat.dtype.kind != "u":  # unsigned values are their own bin index: no int64 copy
        flat = flat.astype(xp.int64) - offset
    return backend.count(flat, nbins)


def _float_counts(block: Any, *, first: Any, last: Any, nbins: int) -> Any:
    """``numpy.histogram(block, nbins, range=(first, last))[0]``, step for step, on numpy or cupy.

    The arithmetic mirrors numpy's equal-width fast path (same dtypes, same rounding
    corrections against the edges), so the GPU assigns every value to the same bin.
    """
    xp = backend.for_array(block).xp
    edges_host = _float_edges(block.dtype, first, last, nbins)
    edges = xp.asarray(edges_host)
    a = block.ravel().astype(edges_host.dtype, copy=False)
    denom = np.subtract(last, first, dtype=np.result_type(first, last))
    index = (((a - first) / denom) * nbins).astype(xp.int64)
    index[index == nbins] -= 1
    index[a < edges[index]] -= 1
    index[(a >= edges[index + 1]) & (index != nbins - 1)] += 1
    return backend.count(index, nbins)


def _float_edges(dtype: Any, first: Any, last: Any, nbins: int) -> np.ndarray:
    return np.histogram_bin_edges(np.empty(0, dtype=dtype), bins=nbins, range=(first, last))


def histogram(
    image: Any,
    nbins: int = 256,
    *,
    chunks: int | Sequence[int] | None = None,
    device: str = "cpu",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Grey-value histogram of a whole volume, one chunk at a time.

    Equal to ``skimage.exposure.histogram(image, nbins)`` on the whole array (see the
    module notes on binning).

    Parameters
    ----------
    image : path, numpy, cupy or dask array
    nbins : int
        Bins for float volumes; ignored for integer volumes.
    chunks : int or (z, y, x), optional
        Read chunk shape (default: the stored chunks, or 128³).
    device, scheduler, workers, progress : see :func:`gpuseg.engine.reduce.sum_over_chunks`.

    Returns
    -------
    counts : ndarray of int64
    centers : ndarray
        Bin centres (grey values for integer volumes).

    Raises
    ------
    InputError
        The volume is empty, or holds NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> counts, centers = histogram(np.array([[[3, 3, 5]]], dtype=np.uint8))
    >>> counts.tolist(), centers.tolist()
    ([2, 0, 1], [3, 4, 5])
    """
    validate.integer("--nbins", nbins, at_least=2, at_most=1 << 16)
    compute: dict[str, Any] = {"device": device, "scheduler": scheduler, "workers": workers, "progress": progress}
    name = os.fspath(image) if is_path(image) else "the volume"
    with reduce.open_dask(image, chunks, progress=progress) as x:
        if x.size == 0:
            raise InputError(f"{name}: the volume is empty; a histogram needs at least one voxel")
        dtype = np.dtype(x.dtype)
        if dtype.kind in "ui":
            if dtype.itemsize <= 2:
                lo, nb = int(np.iinfo(dtype).min), 1 << (8 * dtype.itemsize)
            else:
                vmin, vmax = reduce.compute_scalars([x.min(), x.max()], scheduler=scheduler, workers=workers)
                lo, nb = int(vmin), int(vmax) - int(vmin) + 1
            counts = reduce.sum_over_chunks(_int_counts, [x], kwargs={"offset": lo, "nbins": nb}, desc="histogram", **compute)
            present = np.flatnonzero(counts)
            start, stop = present[0], present[-1] + 1
            return counts[start:stop], np.arange(lo + start, lo + stop)
        if dtype.kind != "f":
            raise InputError(f"{name}: dtype {dtype} has no grey-value histogram; use an integer or float volume")
        vmin, vmax = reduce.compute_scalars([x.min(), x.max()], scheduler=scheduler, workers=workers)
        if not (np.isfinite(vmin) and np.isfinite(vmax)):
            raise InputError(f"{name}: holds NaN or infinite values; replace them before thresholding")
        first, last = dtype.type(vmin), dtype.type(vmax)
        if first == last:  # as numpy: widen an empty range to avoid dividing by zero
            first, last = first - dtype.type(0.5), last + dtype.type(0.5)
        counts = reduce.sum_over_chunks(
            _float_counts, [x], kwargs={"first": first, "last": last, "nbins": int(nbins)}, desc="histogram", **compute
        )
        edges = _float_edges(dtype, first, last, int(nbins))
        return counts, (edges[:-1] + edges[1:]) / 2.0


# --------------------------------------------------------------------------- thresholds


def _distinct(counts: np.ndarray) -> int:
    return int(np.count_nonzero(counts))


def threshold_otsu(image: Any = None, nbins: int = 256, *, hist: tuple | None = None, **compute: Any) -> float:
    """Otsu's threshold of the whole volume, from its chunked histogram.

    Equal to ``skimage.filters.threshold_otsu(image, nbins)`` on the whole array.

    Parameters
    ----------
    image : path, numpy, cupy or dask array
    nbins : int
        Histogram bins for float volumes.
    hist : (counts, centers), optional
        A histogram from :func:`histogram` (skips reading the volume).
    **compute
        ``chunks, device, scheduler, workers, progress`` for :func:`histogram`.

    Returns
    -------
    float
        Voxels above it are foreground (active material).

    Raises
    ------
    InputError
        The volume has a single grey value (Otsu is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> threshold_otsu(np.array([[[10, 11, 12, 200, 201, 202]]], dtype=np.uint8))
    12.0
    """
    from skimage.filters import threshold_otsu as sk_otsu

    counts, centers = hist if hist is not None else histogram(image, nbins, **compute)
    if _distinct(counts) < 2:
        raise InputError(f"{_name(image)}: has a single grey value; Otsu's threshold is undefined (nothing to separate)")
    return float(sk_otsu(hist=(counts, centers)))


def threshold_multiotsu(image: Any = None, classes: int = 3, nbins: int = 256, *, hist: tuple | None = None, **compute: Any) -> np.ndarray:
    """Multi-Otsu thresholds of the whole volume, from its chunked histogram.

    Equal to ``skimage.filters.threshold_multiotsu(image, classes, nbins)`` on the whole array.

    Parameters
    ----------
    image : path, numpy, cupy or dask array
    classes : int
        Number of classes (3 for active / CBD / pore).
    nbins : int
        Histogram bins for float volumes.
    hist : (counts, centers), optional
        A histogram from :func:`histogram`.
    **compute
        ``chunks, device, scheduler, workers, progress`` for :func:`histogram`.

    Returns
    -------
    ndarray
        ``classes - 1`` increasing thresholds.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.repeat(np.array([10, 12, 100, 102, 200, 202], dtype=np.uint8), 5).reshape(1, 5, 6)
    >>> threshold_multiotsu(x).tolist()
    [12, 102]
    """
    from skimage.filters import threshold_multiotsu as sk_multiotsu

    if classes < 2:
        raise ParameterError(f"classes {classes} must be at least 2")
    counts, centers = hist if hist is not None else histogram(image, nbins, **compute)
    if _distinct(counts) < classes:
        raise InputError(
            f"{_name(image)}: has only {_distinct(counts)} distinct grey values (after binning); "
            f"it cannot be split into {classes} classes"
        )
    # scikit-image normalises a histogram it computes itself; do the same, in float64 first.
    return sk_multiotsu(hist=(counts / counts.sum(), centers), classes=classes)


def _name(image: Any) -> str:
    return os.fspath(image) if is_path(image) else "the volume"


def study_thresholds(value: float, offset: float = STUDY_OFFSET) -> dict[str, float]:
    """The study's manual thresholds: S2 = ``value``, S1/S3 = ``offset`` grey values below/above.

    Examples
    --------
    >>> study_thresholds(120)
    {'S1': 110.0, 'S2': 120.0, 'S3': 130.0}
    """
    return {"S1": float(value) - offset, "S2": float(value), "S3": float(value) + offset}


# --------------------------------------------------------------------------- labelling


def threshold_block(block: Any, *, thresholds: Sequence[float]) -> Any:
    """Label one block by sorted ``thresholds``: 1 above the highest, ..., ``n + 1`` at or below the lowest."""
    xp = backend.for_array(block).xp
    above = xp.zeros(block.shape, dtype=xp.uint8)
    for t in thresholds:
        above += block > t
    return (len(thresholds) + 1 - above).astype(xp.uint8)


THRESHOLD = Operation("threshold", threshold_block, results={"output": Result(np.uint8)},
                      device_bytes_per_voxel=12, host_bytes_per_voxel=8, same_on_every_device=True)


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = [float(t) for t in np.atleast_1d(thresholds)]
    if not 1 <= len(values) <= 2:
        raise ParameterError(f"give one threshold (two phases) or two (three phases), not {len(values)}")
    if not all(np.isfinite(values)):
        raise ParameterError(f"thresholds {values} must be finite numbers")
    if len(values) == 2 and values[0] >= values[1]:
        raise ParameterError(f"thresholds {values[0]:g} and {values[1]:g} must increase (low first)")
    return values


def apply_thresholds(
    image: Any,
    thresholds: float | Sequence[float],
    *,
    output: str | os.PathLike | None = None,
    method: str = "manual",
    **options: Unpack[RunOptions],
) -> Any:
    """Segment a volume by one threshold (two phases) or two (three phases); uint8 labels out.

    Parameters
    ----------
    image : path, numpy, cupy or dask array
    thresholds : float or (low, high)
    output : path, optional
        Required for a path input; ``out.zarr[/array]``, ``out.tif`` or a folder.
    method : str
        Recorded in the output's attributes.
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    array or str
        uint8 labels (see the module notes), or the output path.

    Examples
    --------
    >>> import numpy as np
    >>> apply_thresholds(np.array([[[5, 50, 150]]]), 100, device="cpu").tolist()
    [[[2, 2, 1]]]
    >>> apply_thresholds(np.array([[[5, 50, 150]]]), (20, 100), device="cpu").tolist()
    [[[3, 2, 1]]]
    """
    values = _check_thresholds(np.atleast_1d(thresholds).tolist())
    phases = len(values) + 1
    if is_path(image) and output is None:
        raise ParameterError("thresholding a path needs an output path")
    return process(THRESHOLD, {"thresholds": values}, image, output,
                   attrs={"method": method, "thresholds": values, "phases": phases, "phase_names": PHASE_NAMES[phases]},
                   **options)


def otsu(
    image: Any,
    classes: int = 2,
    *,
    nbins: int = 256,
    hist: tuple | None = None,
    output: str | os.PathLike | None = None,
    **options: Unpack[RunOptions],
) -> tuple[Any, list[float]]:
    """Otsu (``classes=2``) or multi-Otsu (``classes=3``) segmentation of a whole volume.

    Parameters
    ----------
    image : path, numpy, cupy or dask array
    classes : {2, 3}
    nbins : int
        Histogram bins for float volumes.
    hist : (counts, centers), optional
        The volume's histogram, if already computed.
    output, **options : as :func:`apply_thresholds`.

    Returns
    -------
    labels : array or str
        As :func:`apply_thresholds`.
    thresholds : list of float

    Examples
    --------
    >>> import numpy as np
    >>> labels, t = otsu(np.array([[[10, 11, 200, 201]]], dtype=np.uint8), device="cpu")
    >>> labels.tolist(), t
    ([[[2, 2, 1, 1]]], [11.0])
    """
    if classes not in (2, 3):
        raise ParameterError(f"--classes {classes}: use 2 (active / non-active) or 3 (active / CBD / pore)")
    if is_path(image):
        check_output(output, bool(options.get("overwrite")))  # before reading the whole volume for its histogram
    if hist is None:
        compute = {k: v for k, v in options.items() if k != "overwrite"}
        hist = histogram(image, nbins, **compute)  # type: ignore[arg-type]
    if classes == 2:
        values = [threshold_otsu(image, hist=hist)]
    else:
        values = [float(t) for t in threshold_multiotsu(image, classes, hist=hist)]
    method = "otsu" if classes == 2 else "multi-otsu"
    labels = apply_thresholds(image, values, output=output, method=method, **options)
    return labels, values


def check_output(output: str | os.PathLike | None, overwrite: bool) -> None:
    """Raise before any work if ``output`` is missing, exists (without ``overwrite``) or is unwritable."""
    if output is None:
        raise ParameterError("segmenting a path needs an output path")
    outputs.check_new(output, overwrite)
