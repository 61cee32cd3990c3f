"""``cupy.cuda.Device``: selects the current device of the calling thread."""

from __future__ import annotations

from typing import Any

from ..._model import MODEL
from . import runtime


class Device:
    """A CUDA device; ``with Device(i):`` makes it current (an invalid id fails on entry, as in cupy)."""

    def __init__(self, device: Any = None) -> None:
        self.id = MODEL.current_device() if device is None else int(device)
        self._previous: list[int] = []

    def __int__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("Device", self.id))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"

    def __enter__(self) -> Device:
        current = MODEL.current_device()
        self._previous.append(current)
        if self.id != current:
            runtime.setDevice(self.id)
        return self

    def __exit__(self, *exc: Any) -> None:
        MODEL.set_current_device(self._previous.pop())

    def use(self) -> None:
        runtime.setDevice(self.id)

    def synchronize(self) -> None:
        runtime._check_device(self.id)
        MODEL.sync("Device.synchronize")

    @property
    def mem_info(self) -> tuple[int, int]:
        runtime._check_device(self.id)
        return MODEL.mem_get_info(self.id)

    @property
    def compute_capability(self) -> str:
        return f"{MODEL.spec.major}{MODEL.spec.minor}"

    @property
    def pci_bus_id(self) -> str:
        return f"0000:{0x18 + self.id:02x}:00.0"


Device.__module__ = "cupy.cuda.device"


def get_device_id() -> int:
    return MODEL.current_device()
