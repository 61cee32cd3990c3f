"""What identifies a run's output: its inputs' content signatures and a fingerprint of everything else.

A resumed run must be the same run. Its fingerprint covers the operation, its parameters,
shapes and chunks, and each input's identity: the path and a cheap signature of its files
(names, sizes, modification times; for single files also the first and last MiB), so
re-ingesting another volume at the same path changes it, reading does not.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..io.paths import node

SIGNATURE_BYTES = 1 << 20  # head and tail of a plain file that enter its signature


def input_signature(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies an input's content, cheaply: its files' names, sizes and modification times.

    For a zarr array: every file of the array (metadata and chunks). For a single file
    (TIFF, HDF5, .npy): size, modification time, and a hash of its first and last MiB.
    For a folder of slices: every slice's name, size and modification time. Re-ingesting
    another volume at the same path changes it; reading does not.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "v.npy"); np.save(p, np.zeros(3))
    >>> a = input_signature(p); np.save(p, np.ones(3)); a == input_signature(p)
    False
    """
    where = node(path)
    digest = hashlib.sha256()
    if where.is_dir():
        for root, dirs, files in os.walk(where):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".gpuseg"))
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                rel = os.path.relpath(os.path.join(root, name), where)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    elif where.is_file():
        st = where.stat()
        digest.update(f"{st.st_size}\0{st.st_mtime_ns}\n".encode())
        with open(where, "rb") as f:
            digest.update(f.read(SIGNATURE_BYTES))
            if st.st_size > SIGNATURE_BYTES:
                f.seek(max(SIGNATURE_BYTES, st.st_size - SIGNATURE_BYTES))
                digest.update(f.read())
    return {"path": os.path.abspath(os.fspath(path)), "signature": digest.hexdigest()[:24]}


def fingerprint(**parts: Any) -> str:
    """A stable hash of what defines an output's bytes."""
    text = json.dumps(parts, sort_keys=True, default=_identify)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _identify(value: Any) -> str:
    """Objects in a fingerprint: by their content digest where they have one (a forest), else their text."""
    digest = getattr(value, "digest", None)
    return str(digest()) if callable(digest) else str(value)
