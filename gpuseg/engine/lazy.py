"""In memory and lazy: an operation over numpy, cupy or dask arrays, through the same executor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, validate
from ..io import zarrio
from . import executor
from .blocks import SPATIAL, Block, crop, iter_blocks
from .operation import Bound


def _whole(bound: Bound, arrays: Sequence[Any], be: backend.Backend) -> dict[str, Any]:
    """The whole array as one block, left on the device it was computed on."""
    parts = [be.asarray(a) for a in arrays]
    block = next(iter_blocks(parts[0].shape[-SPATIAL:], parts[0].shape[-SPATIAL:], 0))
    with executor.device_slot(be):
        value = executor.call_kernel(bound, parts, block)
    results = value if bound.multi else {bound.names[0]: value}
    if bound.op.finish is not None:
        results = {k: be.asarray(bound.op.finish(v, **bound.params)) for k, v in results.items()}
    return {k: crop(v, block) for k, v in results.items()}


def _block(bound: Bound, parts: Sequence[Any], block: Block, device: str,
           origin: Sequence[int] | None) -> dict[str, Any]:
    """One block; a dask array's (``origin``: where it starts) is checked for NaN here, where it is computed."""
    if origin is not None:
        for part in parts:
            validate.finite(part, "the volume", origin)
    return executor.run_block(bound, parts, block, backend.resolve(device))  # the executor moves them


def apply(bound: Bound, *arrays: Any, chunks: int | Sequence[int] | None = None, device: str = "auto") -> Any:
    """Apply ``bound`` to in-memory or dask arrays.

    numpy or cupy arrays with ``chunks=None`` are processed whole on ``device`` and the results
    returned on the input's device. With ``chunks``, or for dask arrays, the work is split into
    halo'd blocks through the executor and a lazy dask array is built (computed before
    returning for numpy/cupy input).

    Returns
    -------
    array, or dict of arrays by result name for an operation with several results
    """
    import dask
    import dask.array as da

    first = arrays[0]
    lazy = isinstance(first, da.Array)
    be = backend.resolve(device)
    home = backend.for_array(first) if not lazy else backend.resolve("cpu")
    if not lazy:
        for a in arrays:
            validate.finite(a, "the volume")
    if not lazy and chunks is None:
        results = _whole(bound, arrays, be)
    else:
        spatial = tuple(first.shape[-SPATIAL:])
        block_shape = (tuple(c[0] for c in first.chunks[-SPATIAL:]) if lazy and chunks is None
                       else zarrio.normalize_chunks(chunks, spatial))
        grid = [len(range(0, n, b)) for n, b in zip(spatial, block_shape)]
        nested = {name: np.empty(grid, dtype=object) for name in bound.names}
        for block in iter_blocks(spatial, block_shape, bound.halo):
            core = tuple(s.stop - s.start for s in block.core)
            parts = [a[(Ellipsis, *block.padded)] for a in arrays]
            task = dask.delayed(_block, pure=True)(bound, parts, block.local(), be.name,
                                                   [s.start for s in block.padded] if lazy else None)
            for name in bound.names:
                nested[name][block.index] = da.from_delayed(
                    task[name], shape=(*bound.channels[name], *core), dtype=bound.dtypes[name])
        results = {name: da.block(n.tolist()) for name, n in nested.items()}
        if not lazy:
            results = dask.compute(results, scheduler="threads")[0]
    if not lazy:  # back on the input's device
        results = {k: home.asarray(v).astype(bound.dtypes[k], copy=False) for k, v in results.items()}
    return results if bound.multi else results[bound.names[0]]
