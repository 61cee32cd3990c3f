"""Sub-packages of cupy the double does not model: importable, but every use says so."""

from __future__ import annotations

from typing import Any


class NotModelledError(NotImplementedError, AttributeError):
    """A part of cupy the double does not model (also an AttributeError, so ``hasattr`` stays well-behaved)."""


def module_getattr(module: str):
    def __getattr__(name: str) -> Any:
        if name.startswith("__") or name.startswith("pytest"):
            raise AttributeError(name)
        raise NotModelledError(f"gpu_double: {module}.{name} is not modelled")

    return __getattr__
