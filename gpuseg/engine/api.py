"""The public function of a declared operation: arrays in, arrays out; a path in, paths out.

Every algorithm module's public function (``filters.gaussian``, ``segment.watershed``, …)
validates its parameters and calls :func:`process` with its :class:`Operation`; nothing
about staging, resuming, planning or devices is written twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from ..errors import OutputError, ParameterError
from ..io import metadata, zarrio
from ..io.paths import check_writable_kind
from ..io.volume import check_volume, info
from . import lazy, outputs, run, staging
from .identity import input_signature
from .operation import Operation, _value


class RunOptions(TypedDict, total=False):
    """Where and how an operation runs; every public operation takes these as keywords.

    device : {"auto", "cpu", "gpu"}
        ``auto`` takes the GPU only where one really works (decided once, where the work runs).
    chunks : int or (z, y, x)
        Output chunk shape for paths (default: the input's); block size for in-memory arrays
        (default: the whole array).
    scheduler : str
        ``threads`` (default), ``synchronous``, ``processes``, ``local``, ``local-cuda`` or a
        scheduler address (:mod:`gpuseg.engine.cluster`).
    workers : int
        Parallel workers (default: all cores).
    overwrite : bool
        Replace existing outputs, only once the new ones are complete.
    progress : bool
        Show a progress bar on stderr.
    """

    device: str
    chunks: int | Sequence[int] | None
    scheduler: str | None
    workers: int | None
    overwrite: bool
    progress: bool


def is_path(source: Any) -> bool:
    """Whether ``source`` names a volume on disk (else it is an array)."""
    return isinstance(source, (str, os.PathLike))


def _check_targets(op: Operation, params: Mapping[str, Any], targets: Mapping[str, str], image: Any,
                   overwrite: bool) -> None:
    """Fail before any input is staged: a 4-D result not to zarr, an input as output, an existing output."""
    for name, target in targets.items():
        if _value(op.results[name].channels, params) and check_writable_kind(target).kind != "zarr":
            raise OutputError(f"{target}: the {name} are 4-D (channel, z, y, x); write them to zarr (name.zarr[/array])")
        outputs.check_distinct(target, [image])
        if len(targets) == 1:  # several: one may be this very run's, committed before a kill (the engine knows)
            outputs.check_new(target, overwrite)
    if len({os.path.abspath(os.fspath(t)) for t in targets.values()}) < len(targets):
        raise OutputError(f"{', '.join(map(str, targets.values()))}: every output needs its own path")


def process(
    op: Operation,
    params: Mapping[str, Any],
    image: Any,
    output: str | os.PathLike[str] | None = None,
    *,
    extra: Mapping[str, str | os.PathLike[str] | None] | None = None,
    want: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
    check: Callable[[Any], None] | None = None,
    default_chunks: int | Sequence[int] | None = None,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    block_shape: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Run ``op`` with ``params`` on an array (in memory or lazily) or on a path (out of core).

    Parameters
    ----------
    op, params : the operation and its (validated) parameters.
    image : numpy, cupy or dask array, or path
    output : path, optional
        The main result's target; required for a path ``image``.
    extra : mapping, optional
        Further results' targets by name (None: not wanted).
    want : names, optional
        Results returned for array input (default: the main one).
    attrs : mapping or callable
        Output attributes; a callable gets the input (a zarr array, or :class:`~gpuseg.engine.staging.InMemory`).
    check : callable, optional
        Validates the input from its header (shape, dtype, attrs) before anything is staged or written.
    default_chunks : chunk shape for path input when ``chunks`` is None (default: the input's).
    device, chunks, scheduler, workers, block_shape, overwrite, progress : see :func:`gpuseg.engine.run.run`.

    Returns
    -------
    array, dict of arrays (several results), or the output path
    """
    if not is_path(image):
        if check is not None:
            check(image)
        return lazy.apply(op.bind(params, image.dtype, want), image, chunks=chunks, device=device)
    if output is None:
        raise ParameterError(f"{op.name} of a path needs an output path")
    targets = {next(iter(op.results)): os.fspath(output)}
    targets.update({k: os.fspath(v) for k, v in (extra or {}).items() if v is not None})
    _check_targets(op, params, targets, image, overwrite)
    header = info(image)  # the checks read headers only, so nothing is staged or written before they pass
    check_volume(header)
    if check is not None:
        check(header)
    zarrio.normalize_chunks(chunks or default_chunks or header.chunks, header.shape)  # refuses a hopeless chunking
    with contextlib.ExitStack() as stack:
        zarr_targets = {k: stack.enter_context(staging.zarr_output(t, overwrite, progress)) for k, t in targets.items()}
        src = stack.enter_context(staging.open_input(image, output, chunks, progress, scheduler=scheduler,
                                                     header=header))  # in memory when it fits, else zarr
        bound = op.bind(params, src.dtype, list(targets))
        extra_attrs = attrs(src) if callable(attrs) else dict(attrs or {})
        meta = {**metadata.inherit(header.attrs), **extra_attrs, **metadata.provenance(source=image)}
        meta.pop(outputs.RUN_KEY, None)
        run.run(bound, [src], zarr_targets, shape=src.shape,
                chunks=zarrio.normalize_chunks(chunks or default_chunks or src.chunks, src.shape), attrs=meta,
                identity=[input_signature(image)], input_paths=[image], device=device, scheduler=scheduler,
                workers=workers, block_shape=block_shape, overwrite=overwrite, progress=progress)
    return os.fspath(output)
