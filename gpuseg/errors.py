"""Errors a user can cause and fix.

The CLI prints each as one line, naming the input and what to do, and exits
with status 2; nothing that already exists is overwritten or lost.
"""

from __future__ import annotations


class GpusegError(Exception):
    """Base class for every error caused by input, parameters or environment."""


class InputError(GpusegError):
    """An input is missing, unreadable, corrupt or of an unsupported kind."""


class OutputError(GpusegError):
    """An output exists (and ``overwrite`` was not given) or cannot be written."""


class ParameterError(GpusegError):
    """A parameter is out of its valid range."""


class DeviceError(GpusegError):
    """The requested compute device is not available."""
