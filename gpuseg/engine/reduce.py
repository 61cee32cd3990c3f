"""Lazy chunked views of volumes, and one-pass exact integer reductions over their chunks.

A reduction (a histogram, voxel counts, pairwise disagreement) is a function of one chunk
returning a vector of int64 counts; :func:`sum_over_chunks` maps it over every chunk and
sums the vectors in a tree, so no task ever holds more than a few chunks and a few count
vectors, and the sum is exact whatever the scheduler (threads, processes, a LocalCluster,
or a remote dask.distributed cluster).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import InputError
from ..io import zarrio
from . import cluster, executor, staging

FANIN = 16


@contextlib.contextmanager
def open_dask(source: Any, chunks: int | Sequence[int] | None = None, *, progress: bool = False) -> Iterator[Any]:
    """Open ``source`` as a lazy dask array, reading chunk by chunk.

    Parameters
    ----------
    source : path, numpy, cupy or dask array
        A zarr path is read in place; a TIFF, HDF5 or .npy path is first copied, slab by
        slab, into a temporary zarr store (see :func:`gpuseg.io.staging.zarr_input`).
    chunks : int or (z, y, x), optional
        Chunk shape; default: the zarr array's chunks, or 128³.

    Yields
    ------
    dask.array.Array
    """
    import dask.array as da

    if not isinstance(source, (str, os.PathLike)):
        if isinstance(source, da.Array):
            yield source if chunks is None else source.rechunk(zarrio.normalize_chunks(chunks, source.shape))
        else:
            yield da.from_array(source, chunks=zarrio.normalize_chunks(chunks, source.shape), asarray=False)
        return
    with staging.zarr_input(source, None, chunks, progress) as arr:
        yield from_zarr(arr, zarrio.normalize_chunks(chunks, arr.shape) if chunks else arr.chunks)


def from_zarr(arr: Any, chunks: Sequence[int]) -> Any:
    """A zarr array as a lazy dask array whose reads name a damaged chunk (:func:`gpuseg.io.zarrio.read`)."""
    import dask.array as da
    from dask.base import tokenize

    return da.from_array(zarrio.CheckedReads(arr), chunks=tuple(chunks), name=f"from-zarr-{tokenize(arr, tuple(chunks))}",
                         meta=np.empty((0,) * arr.ndim, arr.dtype), asarray=True)


def _chunk_call(func: Callable[..., Any], blocks: Sequence[Any], kwargs: Mapping[str, Any], device: str) -> np.ndarray:
    """One chunk of every input through the executor onto ``device``, reduced by ``func`` to host int64 counts."""
    counts = executor.run_on_device(func, blocks, backend.resolve(device), dict(kwargs))  # the executor moves them
    return np.asarray(counts, dtype=np.int64)


def _sum(*parts: np.ndarray) -> np.ndarray:
    total = np.array(parts[0], dtype=np.int64, copy=True)
    for p in parts[1:]:
        total += p
    return total


def _tree(parts: list[Any]) -> Any:
    """Sum delayed count vectors in a tree of fan-in :data:`FANIN`."""
    import dask

    while len(parts) > 1:
        parts = [dask.delayed(_sum, pure=True)(*parts[i : i + FANIN]) for i in range(0, len(parts), FANIN)]
    return parts[0]


def sum_over_chunks(
    func: Callable[..., Any],
    arrays: Sequence[Any],
    *,
    kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "chunks",
) -> np.ndarray:
    """Exact int64 sum over all chunks of ``func(*chunk_of_each_array, **kwargs)``.

    Parameters
    ----------
    func : callable
        Module-level (picklable) function of one chunk of each array (numpy, or cupy on
        the GPU), returning a 1-D vector of counts of fixed length.
    arrays : sequence of dask arrays
        Same shape; all are read with the chunks of the first.
    device : {"auto", "cpu", "gpu"}
        Where each chunk is reduced.
    scheduler, workers, progress : see :func:`gpuseg.cluster.compute`.

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> x = da.from_array(np.arange(10) % 3, chunks=4)
    >>> sum_over_chunks(lambda b: np.bincount(b, minlength=3), [x], scheduler="synchronous")
    array([4, 3, 3])
    """
    import dask

    first = arrays[0]
    for a in arrays[1:]:
        if a.shape != first.shape:
            raise InputError(f"volumes of shapes {first.shape} and {a.shape} cannot be compared; they must have the same shape")
    arrays = [first] + [a.rechunk(first.chunks) for a in arrays[1:]]
    blocks = [a.to_delayed().ravel() for a in arrays]
    kwargs = dict(kwargs or {})
    with cluster.session(scheduler, workers) as session:
        where = session.placement(device).device  # decided once, where the work runs
        per_chunk = [dask.delayed(_chunk_call, pure=True)(func, [b[i] for b in blocks], kwargs, where)
                     for i in range(len(blocks[0]))]
        # Groups of chunks are summed on the workers; the client adds at most 64 vectors.
        groups = max(1, min(64, len(per_chunk)))
        size = -(-len(per_chunk) // groups)
        tasks = [_tree(per_chunk[i : i + size]) for i in range(0, len(per_chunk), size)]
        results = session.compute(tasks, progress=progress, desc=desc)
    return _sum(*results)


def compute_scalars(values: Sequence[Any], *, scheduler: str | None = None, workers: int | None = None) -> list[Any]:
    """Compute 0-d dask arrays (e.g. ``x.min()``) under the chosen scheduler; return numpy scalars."""
    import dask

    tasks = [dask.delayed(backend.to_host)(v) for v in values]  # a 0-d cupy result cannot go through np.asarray
    return [r[()] for r in cluster.compute(tasks, scheduler=scheduler, workers=workers)]
