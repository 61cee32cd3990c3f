"""The double's ``cupy``: device arrays on numpy, a modelled memory pool, streams, and real RawKernels.

Installed as the top-level module ``cupy`` only while a ``gpu``-marked test runs (see
``gpu_double.install``). What is modelled and what is not: ``tests/gpu_double/README.md``.
"""

from __future__ import annotations

from typing import Any

from .._model import MODEL
from . import cuda, fft, linalg, random, testing
from ._core import ndarray
from ._functions import build_namespace, ufunc
from ._raw import RawKernel

globals().update(build_namespace())

__version__ = "13.6.0+gpu_double"


def is_available() -> bool:
    return MODEL.spec.count > 0


def get_default_memory_pool() -> cuda.MemoryPool:
    return cuda.memory._DEFAULT_POOL


def get_default_pinned_memory_pool() -> cuda.PinnedMemoryPool:
    return cuda.memory._DEFAULT_PINNED_POOL


def show_config(*args: Any, **kwargs: Any) -> None:
    print("gpu_double: a strict test double of cupy (no CUDA)")


__all__ = ["RawKernel", "cuda", "fft", "get_default_memory_pool", "get_default_pinned_memory_pool",
           "is_available", "linalg", "ndarray", "random", "testing", "ufunc"]
