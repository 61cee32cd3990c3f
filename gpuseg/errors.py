"""Errors a user can cause and fix.

The CLI prints each as one line, naming the input and what to do, and exits
with status 2; nothing that already exists is overwritten or lost. Python callers
catch them the usual way too: a bad parameter is a ``ValueError``, a missing or
unwritable path an ``OSError``, an unusable device a ``RuntimeError``.

Examples
--------
>>> issubclass(ParameterError, ValueError), issubclass(OutputError, OSError)
(True, True)
"""

from __future__ import annotations


class GpusegError(Exception):
    """Base class for every error caused by input, parameters or environment."""


class InputError(GpusegError, ValueError):
    """An input is missing, unreadable, corrupt or of an unsupported kind."""


class OutputError(GpusegError, OSError):
    """An output exists (and ``overwrite`` was not given) or cannot be written."""


class ParameterError(GpusegError, ValueError):
    """A parameter is out of its valid range."""


class DeviceError(GpusegError, RuntimeError):
    """The requested compute device is not available."""


class RunError(GpusegError, RuntimeError):
    """A run could not go on: its scheduler was lost, its workers kept dying, the disk filled.

    What was written stays resumable: rerunning the same command continues it.
    """
