"""What tests may ask of and do to the modelled device (the ``gpu_double`` fixture returns this module).

Examples
--------
>>> from gpu_double import control
>>> control.reset(total_memory=1 << 30)
>>> control.fail_next_allocations(1)   # the next array allocation raises OutOfMemoryError
>>> control.counters()["allocations"]
0
>>> control.reset()                    # back to a fresh 16 GiB device, no faults
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._model import MODEL, DeviceSpec, GiB
from .cupy import _core

__all__ = ["DeviceSpec", "GiB", "clear_faults", "counters", "fail_allocations_above", "fail_next_allocations",
           "pool", "poison", "reset", "set_context_bytes", "set_total_memory", "spec"]


def reset(**spec: Any) -> None:
    """Fresh devices (``DeviceSpec`` fields: total_memory, context_bytes, count, name, …), empty pools, zero counters.

    Arrays that survive a reset give their bytes back to the pool they came from, not to the new one.
    """
    MODEL.reset(DeviceSpec(**spec))
    _core.MODEL_OPTIONS["poison"] = True


def spec() -> DeviceSpec:
    return MODEL.spec


def set_total_memory(nbytes: int) -> None:
    """Change the device size in place (what is allocated stays allocated; it may now exceed the size)."""
    MODEL.spec = dataclasses.replace(MODEL.spec, total_memory=int(nbytes))


def set_context_bytes(nbytes: int) -> None:
    """Memory the CUDA context holds outside the pool (lowers ``memGetInfo``'s free bytes)."""
    MODEL.spec = dataclasses.replace(MODEL.spec, context_bytes=int(nbytes))


def fail_next_allocations(n: int = 1) -> None:
    """The next ``n`` array allocations (pool requests of more than 0 bytes) raise ``OutOfMemoryError``."""
    MODEL.fail_next = int(n)


def fail_allocations_above(nbytes: int | None) -> None:
    """Every allocation of more than ``nbytes`` (after rounding to 512) raises ``OutOfMemoryError``; None: stop."""
    MODEL.fail_above = None if nbytes is None else int(nbytes)


def clear_faults() -> None:
    MODEL.fail_next, MODEL.fail_above = 0, None


def counters() -> dict[str, Any]:
    """A snapshot of what happened since the last reset (see ``_model.Counters`` for the fields)."""
    return MODEL.counters.snapshot()


def pool(device: int = 0):
    """The modelled pool of ``device`` (``used_bytes()``, ``total_bytes()``, ``n_free_blocks()``, …)."""
    return MODEL.pools[device]


def poison(enabled: bool) -> None:
    """Whether ``cupy.empty`` fills new memory with 0xFF bytes (NaN / -1) rather than leaving zeros-or-whatever."""
    _core.MODEL_OPTIONS["poison"] = bool(enabled)
