"""``cupy.cuda``: devices, streams, memory pools, the runtime API and kernel compilation errors."""

from __future__ import annotations

from . import compiler, device, driver, memory, runtime, stream
from .device import Device, get_device_id
from .memory import MemoryPointer, MemoryPool, OutOfMemoryError, PinnedMemoryPool
from .stream import Event, Stream, get_current_stream


def is_available() -> bool:
    return runtime.getDeviceCount() > 0


def get_local_runtime_version() -> int:
    return runtime.runtimeGetVersion()


__all__ = ["Device", "Event", "MemoryPointer", "MemoryPool", "OutOfMemoryError", "PinnedMemoryPool", "Stream",
           "compiler", "device", "driver", "get_current_stream", "get_device_id", "is_available", "memory",
           "runtime", "stream"]
