"""Out of core: an operation over zarr inputs into resumable zarr outputs, block by block, on any scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from .. import backend, validate
from ..errors import InputError
from ..io import metadata, zarrio
from . import cluster, executor, faults, outputs, plan, timing
from .blocks import Block, chunk_keys, iter_blocks
from .identity import fingerprint
from .operation import Bound

log = logging.getLogger("gpuseg")


def _block_task(bound: Bound, inputs: Sequence[Any], arrays: Mapping[str, Any], block: Block, device: str,
                done_dirs: Mapping[str, str], chunk_shape: Sequence[int], targets: Mapping[str, str],
                input_names: Sequence[str]) -> int:
    """Read one block with its halo, compute it where the run was placed, write it, then mark its chunks.

    A damaged input chunk is an :class:`~gpuseg.errors.InputError` naming it (:func:`gpuseg.io.zarrio.read`),
    as is a NaN or infinite grey value (:func:`gpuseg.validate.finite`, named by ``input_names``);
    a full disk or a lost permission on an output an :class:`~gpuseg.errors.OutputError`
    (:func:`gpuseg.engine.outputs.write_failure`), the block then left unmarked, to be redone on resume.
    """
    be = backend.resolve(device)
    clock = timing.BlockClock(on_gpu=be.name == "gpu")
    parts = [zarrio.read(a, (Ellipsis, *block.padded)) for a in inputs]  # decoding runs on every worker thread
    for part, name in zip(parts, input_names):
        validate.finite(part, name, [s.start for s in block.padded])
    clock.lap("read")
    results = executor.run_block(bound, parts, block.local(), be, clock)
    for name, arr in arrays.items():
        value = results[name].astype(arr.dtype, copy=False)
        with outputs.writing(targets[name]):
            arr[(Ellipsis, *block.core)] = value
    clock.lap("write")
    clock.done()
    faults.point("block:written")
    keys = chunk_keys(block.core, chunk_shape)
    for name, done in done_dirs.items():  # after the data: a chunk without its mark is redone on resume
        with outputs.writing(targets[name]):
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
        try:
            _compute(bound, inputs, pending, shape=shape, chunk_shape=chunk_shape, attrs=attrs, device=device,
                     input_names=_names(inputs, input_paths),
                     scheduler=scheduler, workers=workers, block_shape=block_shape, progress=progress,
                     label=targets[bound.names[0]])
        except BaseException as exc:  # whatever stopped it: a partial without any completed chunk is not kept,
            for o in pending.values():  # nor one whose input is at fault (a rerun needs a repaired input: afresh)
                outputs.discard_if_empty(o, always=isinstance(exc, InputError))
            raise
        for o in pending.values():
            with outputs.writing(o.target):
                o.commit()
    return dict(targets)


def _names(inputs: Sequence[Any], paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """What errors call each input: the path the user gave, else the array's own."""
    if len(paths) == len(inputs):
        return [os.fspath(p) for p in paths]
    return [zarrio.array_name(a) if isinstance(a, zarr.Array) else "the input" for a in inputs]


def _compute(bound: Bound, inputs: Sequence[Any], pending: Mapping[str, outputs.BlockOutput], *,
             shape: tuple[int, ...], chunk_shape: tuple[int, ...], attrs: Mapping[str, Any], device: str,
             scheduler: str | None, workers: int | None, block_shape: Sequence[int] | None, progress: bool,
             label: str, input_names: Sequence[str]) -> None:
    """Every block not yet done, into the opened outputs ``pending``, on the chosen scheduler."""
    with cluster.session(scheduler, workers) as session:
        place = session.placement(device)
        chosen = _chosen_plan(list(pending.values()), block_shape, place.device) or plan.make(
            bound, shape, chunk_shape, device=place.device, workers=session.parallelism,
            free_device_memory=place.free_device_memory, sharing=place.sharing, block_shape=block_shape)
        log.debug("%s: blocks of %s on the %s", bound.op.name, chosen.block_shape, place.device.upper())
        arrays = {}
        for name, o in pending.items():
            own = attrs if bound.op.results[name].named else {
                k: v for k, v in attrs.items() if k not in metadata.NAMING_KEYS}
            with outputs.writing(o.target):
                arrays[name] = o.open((*bound.channels[name], *shape), bound.dtypes[name],
                                      (*bound.channels[name], *chunk_shape), outputs.as_attrs(own), chosen.to_dict())
        done = set.intersection(*(o.done() for o in pending.values()))
        todo = [b for b in iter_blocks(shape, chosen.block_shape, bound.halo)
                if not done.issuperset(chunk_keys(b.core, chunk_shape))]
        if done:
            log.info("%s: resuming, %d of %d chunks already written", label, len(done),
                     int(np.prod([-(-n // c) for n, c in zip(shape, chunk_shape)])))
        import dask

        dirs = {name: str(o.done_dir) for name, o in pending.items()}
        names = {name: o.target for name, o in pending.items()}
        tasks = [dask.delayed(_block_task, pure=False)(bound, inputs, arrays, b, place.device, dirs, chunk_shape, names,
                                                       input_names) for b in todo]
        session.compute(tasks, progress=progress, desc=bound.op.name)
