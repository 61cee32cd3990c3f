"""Zarr v3 arrays addressed by path (``vol.zarr/raw``): open, create, and guard against overwriting.

A path may name an OME-Zarr image group (:mod:`.ome`): it opens as its full-resolution level, and unless
switched off (:func:`.ome.enabled`, ``GPUSEG_OME_ZARR=0``), :func:`create_array` creates one (its level 0
returned, its pyramid built when the engine commits the output).
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from .. import validate
from ..errors import InputError, OutputError
from .paths import parse

DEFAULT_CHUNKS = 128
COMPRESSOR_LEVEL = 3
AccessMode = Literal["r", "r+", "a", "w", "w-"]  # zarr.open's modes


def compressor_for(dtype: Any) -> Any:
    """zstd for integers (grey values, labels: labels shrink ~20×); lz4 after bit-shuffling for floats.

    Filtered volumes and feature stacks barely compress (zstd level 3: 1.2×) but zstd encodes
    float32 at only ~0.15–0.3 GB/s per core, which made encoding the bound of every float
    output (``benchmarks/roofline.py``). Bit-shuffled lz4 compresses them better (1.5×) at
    several times the speed.
    """
    if np.dtype(dtype).kind == "f":
        return BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
    return ZstdCodec(level=COMPRESSOR_LEVEL)


def normalize_chunks(chunks: int | Sequence[int] | None, shape: Sequence[int]) -> tuple[int, ...]:
    """One edge length or one per axis → a chunk shape no larger than ``shape``."""
    ndim = len(shape)
    if chunks is None:
        chunks = DEFAULT_CHUNKS
    values = [int(c) for c in chunks] if isinstance(chunks, Iterable) else [int(chunks)] * ndim
    if len(values) != ndim or min(values) < 1:
        from ..errors import ParameterError

        raise ParameterError(f"chunks {chunks!r} must be one or {ndim} positive integers")
    clipped = tuple(max(1, min(c, s)) for c, s in zip(values, shape))
    validate.chunk_count(shape, clipped)
    return clipped


def open_array(path: str | os.PathLike, mode: AccessMode = "r") -> zarr.Array:
    """Open the zarr array at ``path`` (``store.zarr`` or ``store.zarr/inner/path``); an OME-Zarr image's level 0."""
    loc = parse(path)
    if loc.kind != "zarr":
        raise InputError(f"{path}: not a zarr path (expected a name ending in .zarr, or .zarr/ARRAY)")
    if not Path(loc.container).exists():
        raise InputError(f"{path}: no such zarr store; check the path")
    try:
        node = zarr.open(store=loc.container, path=loc.inner, mode=mode)
    except Exception as exc:
        raise InputError(f"{path}: cannot open as zarr ({exc}); check the path and the array name") from exc
    if not isinstance(node, zarr.Array):
        from . import ome

        if ome.is_image(node.attrs.asdict()):  # an OME-Zarr image: its full resolution, as a plain array's path
            return ome.resolve(node, 0, os.fspath(path))
        images = [name for name, sub in node.groups() if ome.is_image(sub.attrs.asdict())]
        names = ", ".join(sorted([*node.array_keys(), *images])) or "none"
        raise InputError(f"{path}: is a zarr group, not an array; name one of its arrays ({names}), e.g. {path}/raw")
    return node


def exists(path: str | os.PathLike) -> bool:
    """Whether a zarr array or group exists at ``path``."""
    loc = parse(path)
    node = Path(loc.container) / loc.inner if loc.inner else Path(loc.container)
    return (node / "zarr.json").exists()


def check_writable(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise :class:`OutputError` if ``path`` exists (and not ``overwrite``) or its folder cannot be written."""
    target = Path(os.fspath(path))
    if target.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it, or choose another output")
    parent = target.parent if target.parent != Path("") else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise OutputError(f"{path}: cannot write in {probe}; choose an output path you can write to")


def create_array(
    path: str | os.PathLike,
    shape: Sequence[int],
    dtype: Any,
    chunks: Sequence[int],
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    fill_value: Any = 0,
) -> zarr.Array:
    """Create a compressed zarr v3 array (:func:`compressor_for`) at ``path``, its parent groups included.

    While :func:`.ome.enabled`, ``path`` becomes an OME-Zarr image group and the array its level 0
    (:func:`.ome.create_image`).

    Raises
    ------
    OutputError
        The array exists and ``overwrite`` is false, or the location is not writable.
    """
    loc = parse(path)
    if loc.kind != "zarr":
        raise OutputError(f"{path}: not a zarr path; name it like out.zarr or out.zarr/array")
    node_path = Path(loc.container) / loc.inner if loc.inner else Path(loc.container)
    if exists(path) and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it, or choose another output")
    check_writable(node_path, overwrite=True)
    from . import ome

    try:
        if ome.enabled():
            return ome.create_image(path, shape, dtype, chunks, attrs or {}, overwrite=overwrite, fill_value=fill_value)
        if loc.inner:
            root = zarr.open_group(store=loc.container, mode="a")
            return root.create_array(
                name=loc.inner, shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
                compressors=compressor_for(dtype), fill_value=fill_value,
                attributes=dict(attrs or {}), overwrite=overwrite,
            )
        return zarr.create_array(
            store=loc.container, shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
            compressors=compressor_for(dtype), fill_value=fill_value,
            attributes=dict(attrs or {}), overwrite=overwrite,
        )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"disk full writing {path} ({exc.strerror}): free space and rerun the same command") from exc
        raise OutputError(f"{path}: cannot be written ({exc}); choose an output path you can write to") from exc


# --------------------------------------------------------------------------- reads that name a damaged chunk

REPAIR = "re-ingest or restore it, then rerun the same command to resume"


def _full_selection(selection: Any, shape: Sequence[int]) -> tuple[slice, ...] | None:
    """``selection`` (slices, an optional leading Ellipsis) as one step-1 slice per axis; None for anything else."""
    sel = selection if isinstance(selection, tuple) else (selection,)
    if sel and sel[0] is Ellipsis:
        sel = (slice(None),) * (len(shape) - len(sel) + 1) + sel[1:]
    sel = sel + (slice(None),) * (len(shape) - len(sel))
    if len(sel) != len(shape) or not all(isinstance(s, slice) and s.step in (None, 1) for s in sel):
        return None
    return tuple(slice(*s.indices(n)[:2]) for s, n in zip(sel, shape))


def _chunk_file(arr: zarr.Array, coords: tuple[int, ...]) -> str | None:
    """The file holding chunk ``coords`` of a local zarr array (None for other stores)."""
    root = getattr(arr.store, "root", None)
    try:
        key = arr.metadata.encode_chunk_key(coords)
    except Exception:  # zarr v2 metadata, or a store that names chunks otherwise
        return None
    return os.fspath(Path(root, arr.path, key)) if root is not None else None


def _unreadable_chunk(arr: zarr.Array, selection: tuple[slice, ...]) -> tuple[tuple[int, ...], BaseException] | None:
    """The first chunk under ``selection`` that cannot be read on its own, with its error."""
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(selection, arr.chunks)]
    for coords in itertools.product(*ranges):
        try:
            arr.get_block_selection(coords)
        except MemoryError:
            raise
        except Exception as exc:
            return coords, exc
    return None


def read(source: Any, selection: Any) -> Any:
    """``source[selection]``; for a zarr array, a chunk that cannot be read (damaged, truncated, or its
    file not readable) is an :class:`InputError` naming the array, the chunk and its file.

    Only failures of the data are converted: after an error the region is read again chunk by chunk,
    and unless one chunk fails on its own (or the error was the file system's), the error is re-raised
    unchanged.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> arr = create_array(os.path.join(tempfile.mkdtemp(), "v.zarr/raw"), (4, 4, 4), np.uint8, (2, 2, 2))
    >>> read(arr, (Ellipsis, slice(0, 2), slice(1, 3), slice(0, 4))).shape
    (2, 2, 4)
    """
    if not isinstance(source, zarr.Array):
        return source[selection]
    try:
        return source[selection]
    except MemoryError:
        raise
    except Exception as exc:
        full = _full_selection(selection, source.shape)
        found = _unreadable_chunk(source, full) if full is not None else None
        if found is None and not isinstance(exc, OSError):
            raise
        raise InputError(_unreadable(source, found, exc)) from exc


def _unreadable(arr: zarr.Array, found: tuple[tuple[int, ...], BaseException] | None, exc: BaseException) -> str:
    name = array_name(arr)
    if found is None:
        return f"{name}: cannot be read ({_reason(exc)}); check the input, or {REPAIR}"
    coords, err = found
    where = _chunk_file(arr, coords)
    place = f"chunk {tuple(int(c) for c in coords)}" + (f" (file {where})" if where else "")
    if isinstance(err, PermissionError):
        return f"{name}: {place} cannot be read ({_reason(err)}); give read access to it, then rerun the same command"
    return f"{name}: {place} cannot be read ({_reason(err)}); the input is damaged: {REPAIR}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def array_name(arr: zarr.Array) -> str:
    """The path of a local zarr array (the store path for others), as errors name it."""
    root = getattr(arr.store, "root", None)
    return os.fspath(Path(root, arr.path)) if root is not None else str(arr.store_path)


class CheckedReads:
    """A zarr array as ``dask.array.from_array`` reads it, through :func:`read` (a damaged chunk is one clear
    :class:`InputError`)."""

    def __init__(self, array: zarr.Array):
        self.array = array
        self.shape, self.dtype, self.ndim = tuple(array.shape), array.dtype, array.ndim

    def __getitem__(self, selection: Any) -> Any:
        return read(self.array, selection)
