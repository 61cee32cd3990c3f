"""Any format in and out of the block engine, through zarr where needed.

The engine reads regions of zarr arrays and writes zarr chunks. A TIFF, HDF5 or .npy input
is first copied into a hidden zarr beside the output, tagged with the source's signature
(:func:`gpuseg.engine.identity.input_signature`): a rerun after a kill reuses the copy, a
replaced source is copied afresh. A TIFF output is computed into a hidden zarr and then
exported. Both temporaries are removed once the run has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..errors import OutputError
from ..io import zarrio
from ..io.paths import parse
from ..io.volume import check_volume, info
from . import outputs
from .identity import input_signature

log = logging.getLogger("gpuseg")

SOURCE_KEY = "gpuseg_source"


def _reusable(scratch: str, signature: str) -> Any:
    if not zarrio.exists(scratch):
        return None
    try:
        arr = zarrio.open_array(scratch)
    except Exception:
        return None
    return arr if arr.attrs.get(SOURCE_KEY) == signature else None


@contextlib.contextmanager
def zarr_input(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, chunks: Any = None, progress: bool = False,
    *, checked: bool = False,
) -> Iterator[Any]:
    """Open ``path`` as a zarr array; a TIFF, HDF5 or .npy is copied to zarr first.

    The copy goes beside ``output`` (so that cluster workers see it wherever they see the output,
    and a rerun finds it), or into a temporary folder when there is no output. ``checked``: the
    caller has already checked the header (a folder of slices has one per slice: read them once).
    """
    from ..volumes import ingest

    if not checked:
        check_volume(info(path))
    if parse(path).kind == "zarr":
        yield zarrio.open_array(path)
        return
    folder = tempfile.mkdtemp(prefix="gpuseg-") if output is None else None
    scratch = outputs.scratch(output, "input") if output is not None else os.path.join(str(folder), "input.zarr")
    signature = input_signature(path)["signature"]
    arr = _reusable(scratch, signature)
    if arr is not None:
        log.info("%s: reusing its zarr copy %s", path, scratch)
    else:
        log.info("%s: reading through a zarr copy %s", path, scratch)
        outputs.remove(scratch)
        with outputs.writing(scratch, reading=True):  # a full disk while copying: one line
            arr = ingest(path, scratch, chunks=chunks, progress=progress, attrs={SOURCE_KEY: signature})
    try:
        yield arr
    except BaseException:
        if folder:
            outputs.remove(folder)
        raise
    outputs.remove(folder or scratch)


@contextlib.contextmanager
def zarr_output(output: str | os.PathLike[str], overwrite: bool, progress: bool = False) -> Iterator[str]:
    """Yield a zarr path to compute into; for a TIFF output, export it there when done."""
    from ..volumes import export

    kind = parse(output).kind
    if kind == "zarr":
        yield os.fspath(output)
        return
    if kind not in ("tiff", "tiff-folder"):
        raise OutputError(f"{output}: outputs are .zarr, .tif or a folder of slices; choose one of those")
    outputs.check_new(output, overwrite)
    scratch = outputs.scratch(output, "result")
    yield scratch
    with outputs.writing(output):
        export(scratch, output, overwrite=overwrite, progress=progress)
    outputs.remove(scratch)
