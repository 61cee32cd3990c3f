"""Out of core: an operation over zarr inputs into resumable zarr outputs, block by block, on any scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from . import cluster, executor, faults, outputs, plan, timing
from .blocks import Block, chunk_keys, iter_blocks
from .identity import fingerprint
from .operation import Bound

log = logging.getLogger("gpuseg")


def _block_task(bound: Bound, inputs: Sequence[Any], arrays: Mapping[str, Any], block: Block, device: str,
                done_dirs: Sequence[str], chunk_shape: Sequence[int]) -> int:
    """Read one block with its halo, compute it where the run was placed, write it, then mark its chunks."""
    be = backend.resolve(device)
    clock = timing.BlockClock(on_gpu=be.name == "gpu")
    parts = [a[(Ellipsis, *block.padded)] for a in inputs]  # decoding runs on every worker thread at once
    clock.lap("read")
    results = executor.run_block(bound, parts, block.local(), be, clock)
    for name, arr in arrays.items():
        arr[(Ellipsis, *block.core)] = results[name].astype(arr.dtype, copy=False)
    clock.lap("write")
    clock.done()
    faults.point("block:written")
    keys = chunk_keys(block.core, chunk_shape)
    for done in done_dirs:  # after the data: a chunk without its mark is redone on resume
        outputs.mark_done(done, keys)
    faults.point("block:marked")
    return 1


def _chosen_plan(pending: Sequence[outputs.BlockOutput], explicit: Sequence[int] | None,
                 device: str) -> plan.Plan | None:
    """The plan stored by the unfinished outputs, when they agree, no other block was asked for, and
    its bytes came from this device (or from an operation that gives the same bytes on every device)."""
    stored = {str(o.stored_plan) for o in pending}
    if len(stored) != 1 or pending[0].stored_plan is None:
        return None
    found = plan.Plan.from_dict(pending[0].stored_plan)
    if explicit is not None and tuple(explicit) != found.block_shape:
        return None
    if found.device not in (None, device):
        log.info("%s: begun on the %s; on the %s its last bits would differ, so it starts afresh",
                 pending[0].target, found.device.upper(), device.upper())
        return None
    return found


def run(
    bound: Bound,
    inputs: Sequence[Any],
    targets: Mapping[str, str],
    *,
    shape: Sequence[int],
    chunks: Sequence[int],
    attrs: Mapping[str, Any],
    identity: Any,
    input_paths: Sequence[str | os.PathLike[str]] = (),
    device: str = "auto",
    scheduler: str | None = None,
    workers: int | None = None,
    block_shape: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, str]:
    """Apply ``bound`` to every halo'd block of ``inputs`` and write its results to zarr ``targets``.

    Parameters
    ----------
    bound : Bound
        The operation with its parameters (:meth:`Operation.bind`).
    inputs : sequence of array-like
        zarr arrays (or anything sliceable) sharing their last three axes.
    targets : mapping
        Result name → zarr path, for the results wanted.
    shape, chunks : spatial shape and chunk shape (z, y, x) of the outputs.
    attrs : mapping
        Output attributes (voxel size, provenance); not part of the fingerprint.
    identity : JSON-able
        What identifies the inputs' content (:func:`gpuseg.engine.identity.input_signature`).
    input_paths : paths
        Inputs no target may coincide with.
    device : {"auto", "cpu", "gpu"}
        Decided once, for where the work runs (:meth:`gpuseg.engine.cluster.Session.placement`).
    scheduler, workers : see :mod:`gpuseg.engine.cluster`.
    block_shape : (z, y, x), optional
        The work unit (a multiple of ``chunks``); default: :func:`gpuseg.engine.plan.make`.
    overwrite : bool
        Replace existing outputs, only once the new ones are complete.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        Result name → the complete output's path.
    """
    shape, chunk_shape = tuple(int(s) for s in shape), tuple(int(c) for c in chunks)
    base = {**bound.identity(), "inputs": identity, "shape": list(shape), "chunks": list(chunk_shape)}
    with contextlib.ExitStack() as stack:
        outs = {name: stack.enter_context(outputs.BlockOutput(
            path, fingerprint=fingerprint(**base, result=name), overwrite=overwrite, inputs=input_paths))
            for name, path in targets.items()}
        pending = {name: o for name, o in outs.items() if not o.complete}
        if not pending:
            return dict(targets)
        with cluster.session(scheduler, workers) as session:
            place = session.placement(device)
            chosen = _chosen_plan(list(pending.values()), block_shape, place.device) or plan.make(
                bound, shape, chunk_shape, device=place.device, workers=session.parallelism,
                free_device_memory=place.free_device_memory, sharing=place.sharing, block_shape=block_shape)
            log.debug("%s: blocks of %s on the %s", bound.op.name, chosen.block_shape, place.device.upper())
            arrays = {name: o.open((*bound.channels[name], *shape), bound.dtypes[name],
                                   (*bound.channels[name], *chunk_shape), outputs.as_attrs(attrs), chosen.to_dict())
                      for name, o in pending.items()}
            done = set.intersection(*(o.done() for o in pending.values()))
            todo = [b for b in iter_blocks(shape, chosen.block_shape, bound.halo)
                    if not done.issuperset(chunk_keys(b.core, chunk_shape))]
            if done:
                log.info("%s: resuming, %d of %d chunks already written", targets[bound.names[0]], len(done),
                         int(np.prod([-(-n // c) for n, c in zip(shape, chunk_shape)])))
            import dask

            dirs = [str(o.done_dir) for o in pending.values()]
            tasks = [dask.delayed(_block_task, pure=False)(bound, inputs, arrays, b, place.device, dirs, chunk_shape)
                     for b in todo]
            try:
                session.compute(tasks, progress=progress, desc=bound.op.name)
            except Exception:
                for o in pending.values():
                    outputs.discard_if_empty(o)
                raise
        for o in pending.values():
            o.commit()
    return dict(targets)
