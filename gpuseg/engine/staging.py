"""Any format in and out of the block engine, through zarr where needed.

The engine reads regions of zarr arrays and writes zarr chunks. A TIFF, HDF5 or .npy input
that fits the in-memory budget (:func:`fits_in_memory`) is read once, whole, into memory
(:func:`open_input`): no copy is written, and every block is sliced from it. A larger one is
first copied into a hidden zarr beside the output, tagged with the source's signature
(:func:`gpuseg.engine.identity.input_signature`): a rerun after a kill reuses the copy, a
replaced source is copied afresh. Either way the run's identity is the source file's
signature, so a replaced input is never resumed from. A TIFF output is computed into a hidden
zarr and then exported. Both temporaries are removed once the run has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .. import validate
from ..errors import OutputError
from ..io import metadata, zarrio
from ..io.paths import parse
from ..io.volume import VolumeInfo, check_volume, info, iter_slabs
from ..progress import Progress
from . import outputs
from .identity import input_signature

log = logging.getLogger("gpuseg")

SOURCE_KEY = "gpuseg_source"
IN_MEMORY_SHARE = 0.125
"""Of the memory available when a run starts, what an input read whole may take: the blocks' working sets
(up to :data:`gpuseg.engine.plan.HOST_BLOCK_BYTES` each, two per worker) and the results still need the rest."""
IN_MEMORY_MAX_BYTES = 1 << 30
"""An input larger than this streams through its zarr copy whatever the memory: a bound that does not
depend on what else happens to run on the machine, and beyond which a copy costs little beside the work."""
SHARED_MEMORY_SCHEDULERS = (None, "threads", "synchronous")
"""Schedulers whose tasks run in this process and so can slice an array held here; the others (processes,
clusters) would be sent the whole input with every task, and read a copy on disk instead."""


class Attrs(dict[str, Any]):
    """The attributes of an input read into memory, read like a zarr array's (``asdict()``)."""

    def asdict(self) -> dict[str, Any]:
        return dict(self)


class InMemory:
    """A volume read whole into memory, standing in for its zarr copy: the same shape, dtype, chunks and
    attributes, sliced like it (each read a new C-contiguous array, as a zarr read is, that a kernel may own)."""

    def __init__(self, data: np.ndarray, chunks: tuple[int, ...], attrs: Mapping[str, Any]):
        self.data = data
        self.shape, self.dtype, self.ndim = tuple(data.shape), data.dtype, data.ndim
        self.chunks = chunks
        self.attrs = Attrs(attrs)

    def __getitem__(self, selection: Any) -> np.ndarray:
        return np.ascontiguousarray(self.data[selection])


def header_nbytes(header: VolumeInfo) -> int:
    """Bytes of the volume ``header`` describes."""
    return int(np.prod(header.shape, dtype=np.int64)) * np.dtype(header.dtype).itemsize


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def fits_in_memory(header: VolumeInfo, scheduler: str | None = None) -> bool:
    """Whether a non-zarr input is read whole into memory rather than copied to zarr: where the tasks share
    this process's memory (:data:`SHARED_MEMORY_SCHEDULERS`), and its bytes are within both
    :data:`IN_MEMORY_MAX_BYTES` and :data:`IN_MEMORY_SHARE` of the available memory."""
    if scheduler not in SHARED_MEMORY_SCHEDULERS or (header.kind == "zarr" and not header.squeezed):
        return False
    nbytes = header_nbytes(header)
    return nbytes <= IN_MEMORY_MAX_BYTES and nbytes <= IN_MEMORY_SHARE * _available_memory()


def read_whole(header: VolumeInfo, chunks: Any = None, progress: bool = False) -> InMemory:
    """The volume of ``header`` read into memory with the attributes and chunks its zarr copy would get.

    Slab by slab, refusing NaN or infinite grey values with the line :func:`gpuseg.volumes.ingest` gives.
    """
    path = header.path
    signature = input_signature(path)["signature"]  # before reading: the identity a zarr copy would carry
    data = np.empty(header.shape, header.dtype)
    chunk_shape = zarrio.normalize_chunks(chunks, header.shape)
    with Progress(header.shape[0], f"read {path}", enabled=progress, unit="slices") as bar:
        for z0, slab in iter_slabs(path, chunk_shape[0]):
            validate.finite(slab, os.fspath(path), (z0, 0, 0))
            data[z0 : z0 + len(slab)] = slab
            bar.update(len(slab))
    attrs = {**metadata.provenance(source=path), SOURCE_KEY: signature}  # as ingest tags the copy
    size = metadata.voxel_size(header.attrs)
    if size is not None:
        attrs[metadata.VOXEL_SIZE_KEY] = size
    return InMemory(data, chunk_shape, attrs)


@contextlib.contextmanager
def open_input(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, chunks: Any = None,
    progress: bool = False, *, scheduler: str | None = None, header: VolumeInfo | None = None,
) -> Iterator[Any]:
    """``path`` as the engine reads it: whole in memory when it fits (:func:`fits_in_memory`), else as
    :func:`zarr_input` gives it (a zarr array, or its zarr copy beside ``output``).

    ``header``: the input's, already checked by the caller (else read and checked here).
    """
    if header is None:
        header = info(path)
        check_volume(header)
    if fits_in_memory(header, scheduler):
        log.info("%s: read into memory (%.1f MiB), not copied", path, header_nbytes(header) / 2**20)
        loaded = read_whole(header, chunks, progress)
        if output is not None:  # the copy of an earlier run that streamed (another budget, another scheduler)
            outputs.remove(outputs.scratch(output, "input"))
        yield loaded
        return
    with zarr_input(path, output, chunks, progress, header=header) as arr:
        yield arr


def _reusable(scratch: str, signature: str) -> Any:
    if not zarrio.exists(scratch):
        return None
    try:
        arr = zarrio.open_array(scratch)
    except Exception:
        return None
    return arr if arr.attrs.get(SOURCE_KEY) == signature else None


@contextlib.contextmanager
def zarr_input(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, chunks: Any = None, progress: bool = False,
    *, header: VolumeInfo | None = None,
) -> Iterator[Any]:
    """Open ``path`` as a zarr array; a TIFF, HDF5 or .npy (or a 5-D OME-Zarr image, whose t and c are left
    out) is copied to zarr first.

    The copy goes beside ``output`` (so that cluster workers see it wherever they see the output,
    and a rerun finds it), or into a temporary folder when there is no output. ``header``: the input's,
    already checked by the caller (a folder of slices has one per slice: read them once).
    """
    from ..volumes import ingest

    if header is None:
        header = info(path)
        check_volume(header)
    if header.kind == "zarr" and not header.squeezed:
        yield zarrio.open_array(path)
        return
    folder = tempfile.mkdtemp(prefix="gpuseg-") if output is None else None
    scratch = outputs.scratch(output, "input") if output is not None else os.path.join(str(folder), "input.zarr")
    signature = input_signature(path)["signature"]
    arr = _reusable(scratch, signature)
    if arr is not None:
        log.info("%s: reusing its zarr copy %s", path, scratch)
    else:
        log.info("%s: reading through a zarr copy %s", path, scratch)
        outputs.remove(scratch)
        with outputs.writing(scratch, reading=True):  # a full disk while copying: one line
            arr = ingest(path, scratch, chunks=chunks, progress=progress, attrs={SOURCE_KEY: signature})
    try:
        yield arr
    except BaseException:
        if folder:
            outputs.remove(folder)
        raise
    outputs.remove(folder or scratch)


@contextlib.contextmanager
def zarr_output(output: str | os.PathLike[str], overwrite: bool, progress: bool = False) -> Iterator[str]:
    """Yield a zarr path to compute into; for a TIFF output, export it there when done."""
    from ..volumes import export

    kind = parse(output).kind
    if kind == "zarr":
        yield os.fspath(output)
        return
    if kind not in ("tiff", "tiff-folder"):
        raise OutputError(f"{output}: outputs are .zarr, .tif or a folder of slices; choose one of those")
    outputs.check_new(output, overwrite)
    scratch = outputs.scratch(output, "result")
    yield scratch
    with outputs.writing(output):
        export(scratch, output, overwrite=overwrite, progress=progress)
    outputs.remove(scratch)
