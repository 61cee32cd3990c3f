"""A strict test double of cupy, cupyx.scipy.ndimage and cuCIM on numpy / scipy / scikit-image.

``install()`` puts the double's modules into ``sys.modules`` under their public names
(``cupy``, ``cupy.cuda``, …, ``cupyx.scipy.ndimage``, ``cucim.skimage``, …) so that
``import cupy`` finds them; ``uninstall()`` takes them out again. ``tests/conftest.py`` does
both around every ``gpu``-marked test when no real GPU is usable. ``control`` steers the
modelled device. What is modelled: ``README.md`` beside this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

PACKAGES = ("cupy", "cupyx", "cucim")


def modules() -> dict[str, ModuleType]:
    """Public name → the double's module, for every module of the three packages."""
    found: dict[str, ModuleType] = {}
    for top in PACKAGES:
        package = importlib.import_module(f"{__name__}.{top}")
        found[top] = package
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            module = importlib.import_module(info.name)
            found[info.name[len(__name__) + 1 :]] = module
    return found


def installed() -> bool:
    return sys.modules.get("cupy") is modules()["cupy"]


def install() -> None:
    """Make ``import cupy`` (…) import the double; refuses if a real cupy is already imported."""
    for name, module in modules().items():
        present = sys.modules.get(name)
        if present is not None and present is not module:
            raise RuntimeError(f"a real {name} is already imported ({getattr(present, '__file__', present)}); "
                               "the double cannot replace it")
        sys.modules[name] = module


def uninstall() -> None:
    for name, module in modules().items():
        if sys.modules.get(name) is module:
            del sys.modules[name]


from . import control  # noqa: E402  (after the install machinery: control imports the double's cupy)

__all__ = ["control", "install", "installed", "modules", "uninstall"]
