"""``cupy.cuda.Stream`` and the per-thread current stream.

As in cupy, the current stream belongs to the host thread (a stack: ``with stream:`` pushes,
leaving pops), and the memory pool caches freed blocks per stream. Work is never concurrent
in the double: every operation completes before it returns, so ``synchronize`` only counts.
"""

from __future__ import annotations

from typing import Any

from ..._model import MODEL, NULL_STREAM_PTR


class Event:
    """A CUDA event (always complete: the double runs every operation at once)."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self.ptr = 0

    @property
    def done(self) -> bool:
        return True

    def record(self, stream: Any = None) -> None:
        pass

    def synchronize(self) -> None:
        MODEL.sync("Event.synchronize")


class Stream:
    """A CUDA stream: a context manager that makes it this thread's current stream."""

    null: Stream
    ptds: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: int | None = None) -> None:
        if null:
            self.ptr, self.device_id = NULL_STREAM_PTR, -1
        elif ptds:
            self.ptr, self.device_id = 2, -1  # cudaStreamPerThread
        else:
            self.ptr, self.device_id = MODEL.new_stream_ptr(), MODEL.current_device()
        self.non_blocking = bool(non_blocking)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and self.ptr == other.ptr

    def __hash__(self) -> int:
        return self.ptr

    def __repr__(self) -> str:
        return f"<Stream {self.ptr} (device {self.device_id})>"

    def __enter__(self) -> Stream:
        MODEL.stream_stack().append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        MODEL.stream_stack().pop()

    def use(self) -> Stream:
        stack = MODEL.stream_stack()
        if stack:
            stack[-1] = self
        else:
            stack.append(self)
        return self

    @property
    def done(self) -> bool:
        return True

    @property
    def is_non_blocking(self) -> bool:
        return self.non_blocking

    def synchronize(self) -> None:
        MODEL.sync("Stream.synchronize")

    def record(self, event: Event | None = None) -> Event:
        return event or Event()

    def wait_event(self, event: Event) -> None:
        pass


Stream.null = Stream(null=True)
Stream.ptds = Stream(ptds=True)
Stream.__module__ = Event.__module__ = "cupy.cuda.stream"


def get_current_stream(device_id: int = -1) -> Stream:
    stack = MODEL.stream_stack()
    return stack[-1] if stack else Stream.null


def get_current_stream_ptr() -> int:
    return get_current_stream().ptr
