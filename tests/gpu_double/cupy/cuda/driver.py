"""``cupy.cuda.driver``: the driver API error that failed launches raise."""

from __future__ import annotations


class CUDADriverError(RuntimeError):
    """A CUDA driver API error, e.g. ``CUDA_ERROR_INVALID_VALUE`` for an oversized block."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        super().__init__(f"{name}: {text}")


CUDADriverError.__module__ = "cupy_backends.cuda.api.driver"
