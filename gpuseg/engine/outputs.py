"""The one resumable, locked, atomic output: every file or array gpuseg writes goes through here.

Guarantees, for block-written zarr arrays (:class:`BlockOutput`) and for outputs written in
one go (:func:`staged`) alike:

* **Nothing existing is lost.** Work goes to a hidden sibling (``.NAME.partial…``); the
  target is replaced only once the new output is complete, by an atomic exchange of the two
  paths (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere a journalled pair of renames that
  the next run rolls forward). A kill at any moment leaves the old or the new output at the
  target, never neither and never a mix.
* **Two runs never mix.** A writer holds the output's lock (:mod:`.locks`); a second writer
  stops with one line naming the holder.
* **A resume is the same run.** A block output's partial carries a fingerprint of
  everything that defines its bytes: operation, parameters, shapes, chunks, and the
  identity of every input (:mod:`.identity`), so a replaced input or a changed parameter
  starts afresh (one log line), never merges. The block plan (block shape, and the device
  whose bytes it holds) is stored beside the fingerprint and reused on resume, and completed
  chunks are recorded by chunk-grid coordinates, so a resume with other workers or memory
  ends with the same bytes.
* **An output is never an input.** A target equal to, inside, or containing an input is refused.
* **A pyramid is whole or pending.** An OME-Zarr output (:mod:`gpuseg.io.ome`) gets its multiscale
  pyramid built just before it is committed (:func:`finish_pyramids`); until then its metadata lists
  level 0 only and a pending mark, and a rerun of a killed run builds the pyramid again.

No other module renames or deletes anything an output path names; temporaries go through
:func:`scratch` / :func:`remove` here too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..io import ome, zarrio
from ..io.paths import node, parse
from . import faults
from .locks import lock

log = logging.getLogger("gpuseg")

RUN_KEY = "gpuseg_run"
DONE_DIR = ".gpuseg-done"
JOURNAL_SUFFIX = ".gpuseg-commit"


# --------------------------------------------------------------------------- names


def sibling(path: str | os.PathLike[str], tag: str) -> str:
    """A hidden name beside ``path`` that parses as the same kind (``out.zarr/a`` → ``out.zarr/.a.TAG.zarr``)."""
    text = os.fspath(path).rstrip("/")
    target = Path(text)
    loc = parse(text)
    suffix = ".zarr" if loc.kind == "zarr" else "".join(target.suffixes[-1:]) if loc.kind != "tiff-folder" else ""
    return str(target.with_name(f".{target.name}.{tag}{suffix}"))


def partial_path(target: str | os.PathLike[str]) -> str:
    """Where the unfinished output of ``target`` lives, found again by a rerun."""
    return sibling(target, "partial")


def _journal_path(target: str | os.PathLike[str]) -> Path:
    t = node(target)
    return t.with_name(f".{t.name}{JOURNAL_SUFFIX}")


def check_distinct(target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse a target that is an input, lies inside one, or contains one."""
    t = node(target).resolve()
    for source in inputs:
        s = node(source).resolve()
        if t == s or t in s.parents or s in t.parents:
            raise OutputError(f"{target}: is also an input ({source}); choose another output path")


# --------------------------------------------------------------------------- atomic replacement


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except OSError:
        return None


_renameat2 = _load_renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a file or folder if it exists (temporaries and superseded outputs only)."""
    p = Path(os.fspath(path))
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def finish_pyramids(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Build the pending pyramids of the OME-Zarr images in ``source`` (to be committed as ``target``).

    A temporary (a hidden target: a copied input, a result on its way to TIFF) gets none, only its mark removed.
    """
    if parse(target).kind == "zarr" and node(source).is_dir():
        name = node(target).name
        ome.finish(source, name=name, pyramid=not name.startswith("."))


def commit(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move the complete ``source`` to ``target``, replacing what is there without a moment of neither."""
    finish_pyramids(source, target)
    src, dst = node(source), node(target)
    faults.point("commit:start")
    if not dst.exists():
        os.rename(src, dst)
        faults.point("commit:done")
        return
    if src.is_file() and dst.is_file():
        os.replace(src, dst)  # atomic for files everywhere
        faults.point("commit:done")
        return
    if _exchange(src, dst):  # the target now holds the new output, ``src`` the old one
        faults.point("commit:exchanged")
        remove(src)
        faults.point("commit:done")
        return
    # Two renames with a journal: a kill between them is rolled forward by recover().
    old = Path(sibling(target, f"old-{uuid.uuid4().hex[:8]}"))
    journal = _journal_path(target)
    journal.write_text(json.dumps({"new": str(src), "old": str(old)}))
    os.rename(dst, old)
    faults.point("commit:between-renames")
    os.rename(src, dst)
    journal.unlink()
    remove(old)
    faults.point("commit:done")


def recover(target: str | os.PathLike[str]) -> None:
    """Finish a journalled commit that a kill interrupted (call with the lock held)."""
    journal = _journal_path(target)
    if not journal.exists():
        return
    record = json.loads(journal.read_text())
    new, old, dst = Path(record["new"]), Path(record["old"]), node(target)
    if not dst.exists():
        os.rename(new if new.exists() else old, dst)
        log.info("%s: finished the replacement a killed run had begun", target)
    if old.exists():
        remove(old)
    journal.unlink()


def exists(target: str | os.PathLike[str]) -> bool:
    """Whether an output is at ``target`` (a zarr node with metadata, or a file or folder)."""
    if parse(target).kind == "zarr":
        return zarrio.exists(target)
    return node(target).exists()


def check_new(target: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise unless ``target`` may be written: absent, or ``overwrite``; and its place is writable."""
    if exists(target) and not overwrite:
        raise OutputError(f"{target}: already exists; pass --overwrite to replace it, or choose another output")
    zarrio.check_writable(node(target), overwrite=True)


# --------------------------------------------------------------------------- outputs written in one go


@contextlib.contextmanager
def staged(target: str | os.PathLike[str], *, overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = ()) -> Iterator[str]:
    """Write to a hidden sibling of ``target`` (yielded) and move it into place when the block ends.

    An error or a kill half-way leaves whatever was at ``target`` untouched; the sibling of an
    earlier killed attempt is discarded at the next.

    Examples
    --------
    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> with staged(out, overwrite=False) as tmp:
    ...     _ = open(tmp, "w").write("{}")
    >>> open(out).read()
    '{}'
    """
    target = os.fspath(target)
    check_distinct(target, inputs)
    check_new(target, overwrite)
    created = _missing_folders(target)
    try:
        with lock(target):
            recover(target)
            check_new(target, overwrite)
            stage = sibling(target, "partial")
            remove(node(stage))
            try:
                yield stage
            except BaseException:
                remove(node(stage))
                raise
            if not node(stage).exists():
                raise OutputError(f"{target}: nothing was written")
            commit(stage, target)
    except BaseException:
        _tidy(created)
        raise


# --------------------------------------------------------------------------- temporaries


def scratch(beside: str | os.PathLike[str], tag: str) -> str:
    """A hidden zarr path beside ``beside`` for a temporary (e.g. a TIFF input copied to zarr)."""
    t = node(beside)
    return str(t.with_name(f".{t.name}.{tag}.zarr"))


# --------------------------------------------------------------------------- block-written zarr arrays


def mark_done(done_dir: str, keys: Iterable[str]) -> None:
    """Record chunks as complete (after their data is written: a chunk without its mark is redone)."""
    for key in keys:
        Path(done_dir, key).touch()


def _missing_folders(path: str | os.PathLike[str]) -> list[Path]:
    """The folders above ``path`` that do not exist yet (the deepest first): a run that fails created them."""
    missing = []
    folder = node(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _tidy(created: Sequence[Path]) -> None:
    """Remove folders a failed run created, if nothing is in them but an empty zarr group's metadata
    (which creating an array inside a new store writes); stop at the first that holds anything else."""
    for folder in created:
        try:
            entries = set(os.listdir(folder))
            if not entries <= {"zarr.json"}:
                return
            if entries:
                group = json.loads((folder / "zarr.json").read_text())
                if group.get("node_type") != "group" or group.get("attributes"):
                    return
                (folder / "zarr.json").unlink()
            folder.rmdir()
        except (OSError, ValueError):
            return


class _Locked:
    """An output held under its writer's lock for the duration of a ``with`` block.

    A run that fails leaves no new empty folder behind (:func:`_tidy`).
    """

    target: str

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._created: list[Path] = []

    def __enter__(self) -> Any:
        self._created = _missing_folders(self.target)
        try:
            self._stack.enter_context(lock(self.target))
            recover(self.target)
            self._prepare()
        except BaseException:
            self._stack.close()
            _tidy(self._created)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
        if exc[0] is not None:
            _tidy(self._created)

    def _prepare(self) -> None:
        """Find what a killed run left, or start afresh (called with the lock held)."""
        raise NotImplementedError


class BlockOutput(_Locked):
    """A zarr array written block by block: resumable, locked, committed atomically.

    Use as a context manager (it holds the lock). After :meth:`open` the array is
    :attr:`array`; :attr:`done` lists completed chunks; :meth:`commit` moves it into place.
    When the target already holds the output of this very run (a kill after committing it but
    before its siblings), :attr:`complete` is true and nothing needs doing.

    Parameters
    ----------
    target : path
        ``store.zarr`` or ``store.zarr/array``.
    fingerprint : str
        What defines the bytes (see :func:`fingerprint`); an unfinished output with another
        fingerprint is discarded.
    overwrite : bool
        Replace an existing output (only once the new one is complete).
    inputs : paths
        Inputs the target must not coincide with.
    """

    def __init__(self, target: str | os.PathLike[str], *, fingerprint: str, overwrite: bool,
                 inputs: Sequence[str | os.PathLike[str]] = ()):
        self.target = os.fspath(target)
        if parse(self.target).kind != "zarr":
            raise OutputError(f"{self.target}: not a zarr path; name it like out.zarr or out.zarr/array")
        self.fingerprint = fingerprint
        self.overwrite = overwrite
        self.partial = partial_path(self.target)
        self.array: Any = None
        self.stored_plan: dict[str, Any] | None = None
        self.complete = False
        check_distinct(self.target, inputs)
        super().__init__()

    def _prepare(self) -> None:
        # A target holding this very run's output (a kill came between the commits of a run's several
        # outputs) is done, unless the user asked to replace it.
        self.complete = not self.overwrite and self._committed_by_this_run()
        if self.complete:  # killed after its commit: what is left beside it is the replaced old output
            remove(node(self.partial))
        else:
            check_new(self.target, self.overwrite)
            self._look_for_partial()

    def _committed_by_this_run(self) -> bool:
        if not zarrio.exists(self.target):
            return False
        run = zarrio.open_array(self.target).attrs.get(RUN_KEY, {})
        return isinstance(run, dict) and run.get("fingerprint") == self.fingerprint

    def _look_for_partial(self) -> None:
        if not zarrio.exists(self.partial):
            remove(node(self.partial))
            return
        try:
            arr = zarrio.open_array(self.partial, mode="r+")
            run = arr.attrs.get(RUN_KEY, {})
        except Exception:  # unreadable leftovers of a killed run
            run, arr = {}, None
        if isinstance(run, dict) and run.get("fingerprint") == self.fingerprint and self.done_dir.is_dir():
            self.array, self.stored_plan = arr, run.get("plan")
            return
        log.info("%s: discarding an unfinished output of a run with other inputs, parameters or plan", self.target)
        remove(node(self.partial))

    @property
    def done_dir(self) -> Path:
        return node(self.partial) / DONE_DIR

    @property
    def resumed(self) -> bool:
        return self.array is not None

    def open(self, shape: Sequence[int], dtype: Any, chunks: Sequence[int], attrs: Mapping[str, Any],
             plan: Mapping[str, Any]) -> Any:
        """The partial array: the resumed one (if its stored plan is ``plan``), else a new one."""
        if self.array is not None and self.stored_plan == dict(plan):
            return self.array
        if self.array is not None:
            log.info("%s: discarding an unfinished output of another block plan", self.target)
            remove(node(self.partial))
        run = {"fingerprint": self.fingerprint, "plan": dict(plan)}
        self.array = zarrio.create_array(self.partial, shape, dtype, chunks, {**attrs, RUN_KEY: run})
        self.done_dir.mkdir()
        self.stored_plan = dict(plan)
        return self.array

    def done(self) -> set[str]:
        return set(os.listdir(self.done_dir)) if self.resumed else set()

    def commit(self) -> None:
        """Move the complete partial into place (the old output, if any, goes only now)."""
        finish_pyramids(self.partial, self.target)  # before the marks go: a kill now resumes to the pyramid
        remove(self.done_dir)
        commit(self.partial, self.target)
        self.complete = True


class GroupOutput(_Locked):
    """A zarr group whose arrays several runs write (e.g. a phantom's ``truth`` and ``raw``).

    Resumed as a whole when the fingerprint matches, committed at once; :attr:`state` keeps
    what a resume needs beyond the arrays (JSON, in the group's attributes).
    """

    def __init__(self, target: str | os.PathLike[str], *, fingerprint: str, overwrite: bool):
        self.target = os.fspath(target).rstrip("/")
        self.fingerprint, self.overwrite = fingerprint, overwrite
        self.partial = partial_path(self.target)
        self.group: Any = None
        super().__init__()

    def _prepare(self) -> None:
        import zarr

        check_new(self.target, self.overwrite)
        if zarrio.exists(self.partial):
            group = zarr.open_group(self.partial, mode="r+")
            run = group.attrs.get(RUN_KEY, {})
            if isinstance(run, dict) and run.get("fingerprint") == self.fingerprint:
                self.group = group
                return
            log.info("%s: discarding an unfinished output of a run with other parameters", self.target)
        remove(self.partial)
        zarrio.check_writable(self.partial, overwrite=True)
        self.group = zarr.open_group(self.partial, mode="w")
        self.group.attrs[RUN_KEY] = {"fingerprint": self.fingerprint, "state": {}}

    @property
    def state(self) -> dict[str, Any]:
        return dict(dict(self.group.attrs.get(RUN_KEY, {})).get("state", {}))

    def save_state(self, state: Mapping[str, Any]) -> None:
        self.group.attrs[RUN_KEY] = {"fingerprint": self.fingerprint, "state": as_attrs(dict(state))}

    def commit(self) -> None:
        commit(self.partial, self.target)


_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_failure(target: str | os.PathLike[str], exc: OSError) -> OutputError:
    """One line for an output that could not be written mid-run (disk full, permission lost, …).

    What was completed before stays marked, so rerunning the same command resumes the run.
    """
    if isinstance(exc, OutputError):
        return exc
    target = os.fspath(target)
    if exc.errno in _FULL:
        return OutputError(f"disk full writing {target} ({exc.strerror}): free space and rerun the same command "
                           "to resume")
    if exc.errno in _DENIED:
        return OutputError(f"{target}: permission to write was lost ({exc.strerror}); restore it and rerun the "
                           "same command to resume")
    return OutputError(f"{target}: cannot be written ({exc}); fix that and rerun the same command to resume")


@contextlib.contextmanager
def writing(target: str | os.PathLike[str], *, reading: bool = False) -> Iterator[None]:
    """Turn a file system error raised while writing ``target`` into :func:`write_failure`'s one line.

    ``reading``: the block also reads something else (a copy from a source), so only a full disk and
    errors naming a file of ``target`` (or of its hidden siblings) are the output's; others pass unchanged.
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if reading and exc.errno not in _FULL and not _inside(exc.filename, target):
            raise
        raise write_failure(target, exc) from exc


def _inside(filename: Any, target: str | os.PathLike[str]) -> bool:
    """Whether ``filename`` is ``target``, inside it, or inside one of its siblings (``.NAME.partial…``)."""
    if not isinstance(filename, (str, os.PathLike)):
        return False
    where, top = Path(os.path.abspath(filename)), Path(os.path.abspath(target))
    if where == top or top in where.parents:
        return True
    if top.parent not in where.parents:
        return False
    first = where.relative_to(top.parent).parts[0]
    return first.startswith(".") and top.name in first


def discard_if_empty(output: BlockOutput, *, always: bool = False) -> None:
    """Remove a partial in which no chunk was completed (an error before any work leaves nothing behind),
    or, ``always``, any unfinished partial (one no rerun could resume: its input must change first)."""
    if output.resumed and not output.complete and output.done_dir.is_dir() and (
            always or not any(output.done_dir.iterdir())):
        remove(node(output.partial))


def as_attrs(value: Any) -> Any:
    """Attributes made JSON-safe (numpy scalars and arrays to Python)."""
    if isinstance(value, dict):
        return {str(k): as_attrs(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_attrs(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
