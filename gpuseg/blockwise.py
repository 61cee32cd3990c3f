"""Halo'd block execution over chunked arrays: the one place that does halo arithmetic.

An operation is a pure function of one padded block: ``func(*blocks, **kwargs)``. Its
result keeps the blocks' spatial shape (the engine crops the halo off) or has the core's
shape already (the function cropped itself, e.g. to skip work on the halo). Leading axes
before the three spatial ones (z, y, x) are channels and pass through.

Blocks are read with their halo from the inputs, clipped at the volume's faces. Near a
face the operation therefore sees exactly what it would see on the whole array, so a
filter with ``mode="reflect"`` reproduces the whole-array result, whatever the chunking,
as long as the halo covers its kernel radius.

Two ways to run an operation:

* :func:`run` — out of core: inputs are zarr (or other sliceable) arrays, the output is a
  zarr array written one block at a time under any dask scheduler. A block is written
  whole or not at all; a run killed half-way resumes where it stopped and ends with the
  same bytes as an uninterrupted one. The output appears at its path only when complete.
* :func:`apply` — in memory or lazy: numpy/cupy arrays in, arrays out; dask arrays in,
  a lazy dask array out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import backend, cluster, timing
from .errors import DeviceError, OutputError, ParameterError
from .io import zarrio
from .io.paths import parse

log = logging.getLogger("gpuseg")

SPATIAL = 3
# Work-unit size when none is given: large enough that halo re-reads (every neighbouring chunk is
# decoded whole to read its halo) and halo recomputation stay small, small enough for a worker's memory.
DEFAULT_BLOCK_VOXELS = 256**3
# On a GPU the block is sized from the device's free memory instead: this share of it is split between the
# blocks in flight (the rest stays for cuFFT plans, compiled kernels and pool fragmentation), up to 512³.
GPU_MEMORY_SHARE = 0.6
GPU_MAX_BLOCK_VOXELS = 512**3
DEFAULT_BYTES_PER_VOXEL = 32
RUN_KEY = "gpuseg_run"
DONE_DIR = ".gpuseg-done"


def normalize_halo(halo: int | Sequence[int]) -> tuple[int, ...]:
    """One halo width or one per axis → a tuple of three non-negative ints."""
    values = [int(halo)] * SPATIAL if np.isscalar(halo) else [int(h) for h in halo]
    if len(values) != SPATIAL or min(values) < 0:
        raise ParameterError(f"halo {halo!r} must be one or {SPATIAL} non-negative integers")
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of the grid.

    Attributes
    ----------
    index : tuple of int
        Position in the block grid.
    core : tuple of slice
        The region of the volume this block writes.
    padded : tuple of slice
        The region read: ``core`` grown by the halo, clipped to the volume.
    inner : tuple of slice
        Where ``core`` lies inside the padded block.
    """

    index: tuple[int, ...]
    core: tuple[slice, ...]
    padded: tuple[slice, ...]
    inner: tuple[slice, ...]

    @property
    def key(self) -> str:
        return "-".join(map(str, self.index))


def iter_blocks(shape: Sequence[int], block_shape: Sequence[int], halo: int | Sequence[int]) -> Iterator[Block]:
    """Every block of ``block_shape`` tiling ``shape``, with its halo'd read region.

    Examples
    --------
    >>> blocks = list(iter_blocks((10, 4, 4), (4, 4, 4), (2, 0, 0)))
    >>> [(b.core[0], b.padded[0], b.inner[0]) for b in blocks]  # doctest: +NORMALIZE_WHITESPACE
    [(slice(0, 4, None), slice(0, 6, None), slice(0, 4, None)),
     (slice(4, 8, None), slice(2, 10, None), slice(2, 6, None)),
     (slice(8, 10, None), slice(6, 10, None), slice(2, 4, None))]
    """
    halo = normalize_halo(halo)
    grids = [range(0, n, b) for n, b in zip(shape, block_shape)]
    for starts in itertools.product(*grids):
        core = tuple(slice(s, min(s + b, n)) for s, b, n in zip(starts, block_shape, shape))
        padded = tuple(slice(max(c.start - h, 0), min(c.stop + h, n)) for c, h, n in zip(core, halo, shape))
        inner = tuple(slice(c.start - p.start, c.stop - p.start) for c, p in zip(core, padded))
        index = tuple(s // b for s, b in zip(starts, block_shape))
        yield Block(index, core, padded, inner)


def auto_block_shape(
    shape: Sequence[int], chunk_shape: Sequence[int], max_voxels: int = DEFAULT_BLOCK_VOXELS, min_blocks: int = 1,
    halo: Sequence[int] = (0, 0, 0),
) -> tuple[int, ...]:
    """The largest multiple of ``chunk_shape`` (grown evenly, no larger than needed) with at most ``max_voxels``.

    Growth also stops before the volume would split into fewer than ``min_blocks`` blocks, so that
    every worker has work. With ``halo``, ``max_voxels`` bounds the padded block (core plus halo
    on both sides), as it must where the limit is memory.

    Examples
    --------
    >>> auto_block_shape((1024, 1024, 1024), (128, 128, 128))
    (256, 256, 256)
    >>> auto_block_shape((100, 2048, 2048), (128, 128, 128), 128 * 512 * 512)
    (128, 512, 512)
    >>> auto_block_shape((256, 256, 256), (128, 128, 128), min_blocks=4)
    (256, 128, 128)
    """
    block = list(chunk_shape)
    while True:
        growable = [a for a in range(len(block)) if block[a] < shape[a]]
        if not growable:
            return tuple(block)
        axis = min(growable, key=lambda a: block[a])
        grown = [b * 2 if a == axis else b for a, b in enumerate(block)]
        padded = [min(g, n) + 2 * h for g, n, h in zip(grown, shape, halo)]
        if np.prod(padded) > max_voxels or _count_blocks(shape, grown) < min_blocks:
            return tuple(block)
        block = grown


def gpu_block_voxels(bytes_per_voxel: int, in_flight: int = backend.GPU_BLOCKS_IN_FLIGHT, free: int | None = None) -> int:
    """Voxels of the largest padded block whose working set fits ``in_flight`` times into free device memory.

    Parameters
    ----------
    bytes_per_voxel : int
        Device bytes one voxel of a block needs at the operation's peak (input, temporaries, output).
    in_flight : int
        Blocks on the device at once (see :func:`gpuseg.backend.device_slot`).
    free : int, optional
        Free device bytes (default: asked from the device).

    Examples
    --------
    >>> gpu_block_voxels(100, in_flight=3, free=80 * 2**30) == GPU_MAX_BLOCK_VOXELS
    True
    >>> gpu_block_voxels(100, in_flight=3, free=2**30)
    2147483
    """
    free = backend.free_device_memory() if free is None else free
    return max(1, min(GPU_MAX_BLOCK_VOXELS, int(free * GPU_MEMORY_SHARE / in_flight / bytes_per_voxel)))


def _count_blocks(shape: Sequence[int], block: Sequence[int]) -> int:
    return int(np.prod([-(-n // b) for n, b in zip(shape, block)]))


def _crop(result: Any, block: Block) -> Any:
    """Crop the halo off ``result`` unless the operation already returned the core."""
    spatial = tuple(result.shape[-SPATIAL:])
    core = tuple(s.stop - s.start for s in block.core)
    padded = tuple(s.stop - s.start for s in block.padded)
    if spatial == padded:
        return result[(Ellipsis, *block.inner)]
    if spatial == core:
        return result
    raise ValueError(f"operation returned spatial shape {spatial}; expected the padded {padded} or the core {core}")


def _with_block(func: Callable, kwargs: Mapping, block: Block) -> Mapping:
    """``kwargs``, plus ``block=`` (the :class:`Block`) for a function with a true ``takes_block``
    attribute, e.g. to crop to ``block.inner`` before costly per-voxel work."""
    return {**kwargs, "block": block} if getattr(func, "takes_block", False) else kwargs


# --------------------------------------------------------------------------- out of core


def fingerprint(**parts: Any) -> str:
    """A stable hash of what defines a run's output (operation, parameters, inputs)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _partial_path(path: str) -> str:
    """Where an unfinished output lives: a hidden sibling, found again by a rerun."""
    loc = parse(path)
    target = Path(loc.container) / loc.inner if loc.inner else Path(loc.container)
    hidden = target.with_name(f".{target.name}.partial.zarr")
    return str(hidden)


def _node_dir(path: str) -> Path:
    loc = parse(path)
    return Path(loc.container) / loc.inner if loc.inner else Path(loc.container)


def _done_dir(partial: str) -> Path:
    return _node_dir(partial) / DONE_DIR


def _write_block(func, arrays, output, block: Block, device: str, kwargs, done_dir: str) -> int:
    be = backend.resolve(device)
    clock = timing.BlockClock(on_gpu=be.name == "gpu")
    parts = [a[(Ellipsis, *block.padded)] for a in arrays]  # decoding runs on every worker thread at once
    clock.lap("read")
    kwargs = _with_block(func, kwargs, block)
    with backend.device_slot(be):  # only a few blocks on the device at once, each on its own stream
        clock.lap("wait")
        try:
            result = _on_device(func, parts, block, be, kwargs, clock)
        except Exception as exc:
            if be.name != "gpu" or not backend.is_out_of_memory(exc):
                raise
            backend.release_cached_memory()  # fragmentation: retry once with the pool emptied
            try:
                result = _on_device(func, parts, block, be, kwargs, clock)
            except Exception as again:
                if not backend.is_out_of_memory(again):
                    raise
                shape = tuple(s.stop - s.start for s in block.padded)
                raise DeviceError(f"GPU out of memory on a block of {shape} voxels: lower --workers or --chunks, "
                                  "or free the device") from None
    output[(Ellipsis, *block.core)] = result.astype(output.dtype, copy=False)
    clock.lap("write")
    clock.done()
    _crash_hook()
    # Written after the data: a block without its marker is redone on resume.
    Path(done_dir, block.key).touch()
    return 1


def _on_device(func, parts, block: Block, be: backend.Backend, kwargs, clock: timing.BlockClock) -> np.ndarray:
    """Copy a block's inputs to the device, compute, crop, and copy the result back: one host round trip."""
    parts = [be.asarray(p) for p in parts]
    clock.lap("to_device")
    result = _crop(func(*parts, **kwargs), block)
    clock.lap("compute")
    result = backend.to_host(result)
    clock.lap("to_host")
    return result


def _crash_hook() -> None:
    """Test hook: die like a killed process after ``GPUSEG_CRASH_AFTER`` blocks of this process."""
    limit = os.environ.get("GPUSEG_CRASH_AFTER")
    if limit is None:
        return
    _crash_hook.count = getattr(_crash_hook, "count", 0) + 1
    if _crash_hook.count >= int(limit):
        os._exit(137)


def run(
    func: Callable,
    inputs: Sequence[Any],
    output: str | os.PathLike,
    *,
    shape: Sequence[int],
    dtype: Any,
    halo: int | Sequence[int],
    chunks: int | Sequence[int] | None = None,
    block_shape: Sequence[int] | None = None,
    max_block_voxels: int | None = None,
    bytes_per_voxel: int | None = None,
    channels: Sequence[int] = (),
    attrs: Mapping[str, Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    identity: Mapping[str, Any] | None = None,
    device: str = "auto",
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    desc: str = "blocks",
):
    """Apply ``func`` to every halo'd block of ``inputs`` and write the result to a zarr array.

    Parameters
    ----------
    func : callable
        ``func(*padded_blocks, **kwargs) -> array``; pure, and importable by workers.
    inputs : sequence of array-like
        zarr arrays (or anything sliceable, e.g. a numpy memmap) sharing their last three axes.
    output : path
        ``store.zarr`` or ``store.zarr/array``.
    shape, dtype : spatial shape (z, y, x) and dtype of the output.
    halo : int or (z, y, x)
        Voxels of context each block needs on each side (the operation's kernel radius).
    chunks : int or (z, y, x), optional
        Output chunk shape; default 128³.
    block_shape : (z, y, x), optional
        Work unit; a multiple of ``chunks`` (default: :func:`auto_block_shape`, up to
        ``max_block_voxels``).
    max_block_voxels : int, optional
        Upper bound on an automatic block's voxels on the CPU (default :data:`DEFAULT_BLOCK_VOXELS`);
        lower it for memory-hungry operations.
    bytes_per_voxel : int, optional
        Device memory the operation needs per (padded) voxel; on a GPU the automatic block is
        the largest that fits :data:`~gpuseg.backend.GPU_BLOCKS_IN_FLIGHT` times into free
        device memory (:func:`gpu_block_voxels`). Default :data:`DEFAULT_BYTES_PER_VOXEL`.
    channels : tuple of int
        Leading, non-spatial output axes (e.g. feature channels).
    attrs : mapping
        Output attributes (voxel size, provenance).
    kwargs : mapping
        Keyword arguments for ``func``.
    identity : mapping
        What defines the result beyond ``func`` and ``kwargs`` (e.g. input paths); a rerun
        resumes an unfinished output only when this and the rest match.
    device : {"auto", "cpu", "gpu"}
    scheduler, workers : see :func:`gpuseg.cluster.compute`.
    overwrite : bool
        Replace an existing complete output (only once the new one is complete).
    progress : bool
        Show a progress bar.

    Returns
    -------
    zarr.Array
        The complete output.
    """
    output = os.fspath(output)
    if zarrio.exists(output) and not overwrite:
        raise OutputError(f"{output}: already exists; pass --overwrite to replace it, or choose another output")
    be = backend.resolve(device)  # fail before any work if the device is unusable
    shape = tuple(int(s) for s in shape)
    halo = normalize_halo(halo)
    chunk_shape = zarrio.normalize_chunks(chunks, shape)
    if block_shape is None and be.name == "gpu":
        budget = gpu_block_voxels(bytes_per_voxel or DEFAULT_BYTES_PER_VOXEL)
        block_shape = auto_block_shape(shape, chunk_shape, budget, backend.GPU_BLOCKS_IN_FLIGHT, halo)
        log.debug("GPU block %s (free device memory %.1f GiB)", block_shape, backend.free_device_memory() / 2**30)
    elif block_shape is None:
        # two blocks per worker at least, so that none idles while another finishes a large block
        min_blocks = 2 * (workers or cluster.default_workers())
        block_shape = auto_block_shape(shape, chunk_shape, max_block_voxels or DEFAULT_BLOCK_VOXELS, min_blocks)
    block_shape = tuple(block_shape)
    if any(b % c for b, c in zip(block_shape, chunk_shape)):
        raise ParameterError(f"block shape {block_shape} must be a multiple of the chunk shape {chunk_shape}")
    kwargs = dict(kwargs or {})
    fp = fingerprint(
        func=f"{func.__module__}.{func.__qualname__}", kwargs=kwargs, identity=identity or {},
        shape=shape, dtype=str(np.dtype(dtype)), halo=halo, chunks=chunk_shape, channels=list(channels),
    )
    partial = _partial_path(output)
    arr = _open_partial(partial, fp, (*channels, *shape), dtype, (*channels, *chunk_shape), attrs)
    done_dir = _done_dir(partial)
    done = set(os.listdir(done_dir))
    blocks = [b for b in iter_blocks(shape, block_shape, halo) if b.key not in done]
    if done:
        log.info("%s: resuming, %d of %d blocks already written", output, len(done), len(done) + len(blocks))
    import dask

    tasks = [
        dask.delayed(_write_block, pure=False)(func, inputs, arr, b, device, kwargs, str(done_dir)) for b in blocks
    ]
    cluster.compute(tasks, scheduler=scheduler, workers=workers, progress=progress, desc=desc)
    return _finish(partial, output, overwrite)


def _open_partial(partial: str, fp: str, shape, dtype, chunks, attrs):
    """Open the unfinished output of the same run, or start a new one."""
    if zarrio.exists(partial):
        arr = zarrio.open_array(partial, mode="r+")
        if arr.attrs.get(RUN_KEY, {}).get("fingerprint") == fp:
            return arr
        log.info("%s: discarding an unfinished output of a different run", partial)
        shutil.rmtree(_node_dir(partial))
    arr = zarrio.create_array(partial, shape, dtype, chunks, {**(attrs or {}), RUN_KEY: {"fingerprint": fp}})
    _done_dir(partial).mkdir()
    return arr


def _finish(partial: str, output: str, overwrite: bool):
    """Move a complete output into place, replacing the old one only now."""
    shutil.rmtree(_done_dir(partial))
    source, target = _node_dir(partial), _node_dir(output)
    if target.exists():
        if not overwrite:
            raise OutputError(f"{output}: appeared while computing; the result is kept at {partial}")
        stale = target.with_name(f".{target.name}.old")
        target.rename(stale)
        source.rename(target)
        shutil.rmtree(stale)
    else:
        source.rename(target)
    return zarrio.open_array(output)


# --------------------------------------------------------------------------- in memory / lazy


def apply(
    func: Callable,
    *arrays: Any,
    halo: int | Sequence[int],
    chunks: int | Sequence[int] | None = None,
    device: str = "auto",
    dtype: Any = None,
    channels: Sequence[int] = (),
    **kwargs: Any,
) -> Any:
    """Apply a block operation to in-memory or dask arrays.

    numpy or cupy arrays with ``chunks=None`` are processed whole on ``device`` and the
    result is returned on the input's device. With ``chunks``, or for dask arrays, the work
    is split into halo'd blocks and a lazy dask array is built (computed before returning
    for numpy/cupy input).

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((20, 20, 20), dtype=np.float32)
    >>> smooth = lambda b: ndi.uniform_filter(b, 3)
    >>> np.allclose(apply(smooth, x, halo=1, chunks=7), ndi.uniform_filter(x, 3))
    True
    """
    import dask.array as da

    first = arrays[0]
    lazy = isinstance(first, da.Array)
    if not lazy and chunks is None:
        be = backend.resolve(device)
        on_gpu_input = backend.for_array(first).name == "gpu"
        result = func(*[be.asarray(a) for a in arrays], **kwargs)
        return result if on_gpu_input or be.name == "cpu" else backend.to_host(result)
    spatial = tuple(first.shape[-SPATIAL:])
    if lazy:
        block_shape = tuple(c[0] for c in first.chunks[-SPATIAL:])
    else:
        block_shape = zarrio.normalize_chunks(chunks, spatial)
    dtype = np.dtype(dtype) if dtype is not None else first.dtype
    be = backend.resolve(device)
    grid = [len(range(0, n, b)) for n, b in zip(spatial, block_shape)]
    nested: np.ndarray = np.empty(grid, dtype=object)
    import dask

    for block in iter_blocks(spatial, block_shape, halo):
        core = tuple(s.stop - s.start for s in block.core)
        parts = [a[(Ellipsis, *block.padded)] for a in arrays]
        task = dask.delayed(_apply_block, pure=True)(func, parts, block, be, kwargs)
        nested[block.index] = da.from_delayed(task, shape=(*channels, *core), dtype=dtype)
    out = da.block(nested.tolist())
    if lazy:
        return out
    result = out.compute(scheduler="threads")
    return backend.for_array(first).asarray(result)


def _apply_block(func, parts, block: Block, be: backend.Backend, kwargs):
    """One block of :func:`apply`: ``parts`` are already the padded block of each array."""
    local = Block(block.index, block.core, tuple(slice(0, s.stop - s.start) for s in block.padded), block.inner)
    clock = timing.BlockClock(on_gpu=be.name == "gpu")
    return _on_device(func, parts, local, be, _with_block(func, kwargs, local), clock)
