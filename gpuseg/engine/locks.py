"""The writer's lock of an output: one run at a time, a second stops with one line naming the first.

The lock is a file beside the output (``.NAME.gpuseg-lock``), created exclusively, holding the
host, process, start time and command of its holder. A lock whose process is gone (dead on this
host, or our own process id without this process holding it) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io.paths import node

log = logging.getLogger("gpuseg")

LOCK_SUFFIX = ".gpuseg-lock"
_held: set[str] = set()  # locks this process holds


def lock_path(target: str | os.PathLike[str]) -> Path:
    t = node(target)
    return t.with_name(f".{t.name}{LOCK_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(holder: Mapping[str, Any], lock: Path) -> bool:
    """A lock is stale when its process is gone: dead on this host, or our own pid but not held by us."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = int(holder.get("pid", -1))
    return not _pid_alive(pid) or (pid == os.getpid() and str(lock) not in _held)


def _describe(holder: Mapping[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("time", 0))))
    return f"process {holder.get('pid')} on {holder.get('host')} since {since} ({holder.get('command', '?')[:80]})"


@contextlib.contextmanager
def lock(target: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive writer's lock of ``target`` (one line naming the holder if another run has it)."""
    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create {path.parent} ({exc.strerror}); choose an output path you can write to") from None
    me = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            if holder and not _stale(holder, path):
                raise OutputError(f"{target}: another gpuseg run is writing it ({_describe(holder)}); wait for it "
                                  f"to finish, or delete {path} if that run is dead") from None
            if not holder and time.time() - _mtime(path) < 5:  # being written this instant
                time.sleep(0.2)
                continue
            log.info("%s: taking over the lock of a run that is gone (%s)", target, _describe(holder))
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        except OSError as exc:
            raise OutputError(f"{target}: cannot write in {path.parent} ({exc.strerror}); "
                              "choose an output path you can write to") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise OutputError(f"{target}: could not take its lock {path}; another run keeps taking it")
    _held.add(str(path))
    try:
        yield
    finally:
        _held.discard(str(path))
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
