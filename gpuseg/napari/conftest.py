"""Doctest collection of the plugin: the widget module needs napari and Qt, which only the ``napari`` extra installs."""

import importlib.util


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


collect_ignore = [] if _installed("napari") and _installed("qtpy") else ["widget.py"]
