"""Checks at the edge: parameters in range, grey values finite, a run small enough to finish.

Every public function checks what it is given here, once, before anything is written;
the message names the parameter as the command line spells it and says what to do.

Non-finite grey values (NaN, ±inf) are refused everywhere, never replaced: a filter
spreads one NaN over its whole kernel and a threshold puts it in no phase, so any
silent policy would change the volume fractions gpuseg exists to measure. The error
gives how many there are and where the first one is, so the user can repair the
reconstruction (e.g. with ``numpy.nan_to_num``) and rerun.

Examples
--------
>>> number("--sigma", 1.5, above=0)
1.5
>>> number("--sigma", float("inf"), above=0)
Traceback (most recent call last):
...
gpuseg.errors.ParameterError: --sigma inf must be a finite number > 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError, ParameterError

MAX_CHUNKS = 1_000_000
"""Chunks one array may have: beyond it, per-chunk overheads (files, tasks, marks) dwarf the work."""

MAX_WORKERS_PER_CORE = 4
"""Local workers per core: more only adds processes and memory, never speed."""


def number(name: str, value: Any, *, above: float | None = None, at_least: float | None = None,
           at_most: float | None = None) -> float:
    """``value`` as a finite float within the bounds given, or a :class:`ParameterError` naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} {value!r} must be a number") from None
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"<= {at_most:g}" if at_most is not None else ""]
    wanted = " and ".join(b for b in bounds if b)
    if (not math.isfinite(x) or (above is not None and not x > above) or (at_least is not None and not x >= at_least)
            or (at_most is not None and not x <= at_most)):
        raise ParameterError(f"{name} {value:g} must be a finite number" + (f" {wanted}" if wanted else ""))
    return x


def integer(name: str, value: Any, *, at_least: int | None = None, at_most: int | None = None) -> int:
    """``value`` as an int within the bounds given (bools and fractions refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
            isinstance(value, float) and value.is_integer()):
        raise ParameterError(f"{name} {value!r} must be an integer")
    x = int(value)
    if (at_least is not None and x < at_least) or (at_most is not None and x > at_most):
        span = (f"from {at_least} to {at_most}" if at_least is not None and at_most is not None
                else f">= {at_least}" if at_least is not None else f"<= {at_most}")
        raise ParameterError(f"{name} {x} must be an integer {span}")
    return x


def workers(value: int | None, cores: int, scheduler: str) -> None:
    """Refuse a worker count no local machine can use (a remote cluster sizes itself)."""
    if value is None:
        return
    integer("--workers", value, at_least=1)
    if "://" not in scheduler and value > MAX_WORKERS_PER_CORE * cores:
        raise ParameterError(f"--workers {value} is more than {MAX_WORKERS_PER_CORE} per core of the {cores} here; "
                             f"use at most {MAX_WORKERS_PER_CORE * cores} (default: one per core)")


def chunk_count(shape: Sequence[int], chunks: Sequence[int]) -> None:
    """Refuse a chunking so fine that its overheads would never let the run finish."""
    count = math.prod(-(-int(n) // int(c)) for n, c in zip(shape, chunks))
    if count > MAX_CHUNKS:
        edge = math.ceil((math.prod(int(n) for n in shape) / MAX_CHUNKS) ** (1 / len(shape)))
        raise ParameterError(f"--chunks {' '.join(map(str, chunks))} cuts the {'x'.join(map(str, shape))} volume into "
                             f"{count:,} chunks (at most {MAX_CHUNKS:,}); use --chunks {max(edge, 64)} or more")


def three_d(shape: Sequence[int], name: str) -> None:
    """Refuse anything but a non-empty (z, y, x) volume, saying how to give one."""
    if len(shape) == 2:
        raise InputError(f"{name}: is one 2-D image {tuple(shape)}; gpuseg works on 3-D volumes (z, y, x): give a "
                         "multi-page TIFF or a folder of slices")
    if len(shape) != 3:
        raise InputError(f"{name}: is {len(shape)}-D {tuple(shape)}; expected a 3-D volume (z, y, x)")
    if min(shape) < 1:
        raise InputError(f"{name}: the volume is empty (shape {tuple(shape)})")


def finite(values: Any, name: str, origin: Sequence[int] = (0, 0, 0)) -> None:
    """Refuse NaN or infinite grey values in ``values`` (host or device), a block whose first voxel is at ``origin``.

    Examples
    --------
    >>> finite(np.array([[[1.0, np.nan]]]), "v.zarr", origin=(4, 0, 8))
    Traceback (most recent call last):
    ...
    gpuseg.errors.InputError: v.zarr: 1 voxel is NaN or infinite in z 4:5, y 0:1, x 8:10 (first at z=4, y=0, x=9); \
gpuseg refuses non-finite grey values: replace them (e.g. numpy.nan_to_num) and rerun
    """
    if np.dtype(values.dtype).kind not in "fc":
        return
    from .backend import for_array

    xp = for_array(values).xp
    bad = ~xp.isfinite(values)
    count = int(bad.sum())
    if not count:
        return
    first = [int(i) for i in xp.unravel_index(int(xp.argmax(bad.ravel())), values.shape)][-3:]
    lead = len(values.shape) - 3
    where = ", ".join(f"{axis} {o}:{o + n}" for axis, o, n in zip("zyx", origin, values.shape[lead:]))
    at = ", ".join(f"{axis}={o + i}" for axis, o, i in zip("zyx", origin, first))
    raise InputError(f"{name}: {count} voxel{'s are' if count > 1 else ' is'} NaN or infinite in {where} (first at "
                     f"{at}); gpuseg refuses non-finite grey values: replace them (e.g. numpy.nan_to_num) and rerun")
