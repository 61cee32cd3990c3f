"""Zarr v3 arrays addressed by path (``vol.zarr/raw``): open, create, and guard against overwriting."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

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
    return tuple(max(1, min(c, s)) for c, s in zip(values, shape))


def open_array(path: str | os.PathLike, mode: AccessMode = "r") -> zarr.Array:
    """Open the zarr array at ``path`` (``store.zarr`` or ``store.zarr/inner/path``)."""
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
        names = ", ".join(sorted(node.array_keys())) or "none"
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
    try:
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
        raise OutputError(f"{path}: cannot be written ({exc}); choose an output path you can write to") from exc
