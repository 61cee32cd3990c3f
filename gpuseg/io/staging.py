"""Let block operations read and write any format by going through zarr where needed.

The block engine reads regions of zarr arrays and writes zarr chunks. A TIFF, HDF5 or
.npy input is first ingested into a temporary zarr beside the output; a TIFF output is
computed into a temporary zarr and then exported. Both temporaries are hidden siblings
of the output with fixed names, so a killed run resumes from them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import zarr

from ..errors import OutputError
from . import zarrio
from .convert import export, ingest
from .paths import parse
from .volume import check_volume, info

log = logging.getLogger("gpuseg")


def _scratch(output: str | os.PathLike, tag: str) -> str:
    target = Path(os.fspath(output).rstrip("/"))
    return str(target.with_name(f".{target.name}.{tag}.zarr"))


@contextlib.contextmanager
def zarr_input(
    path: str | os.PathLike, output: str | os.PathLike | None = None, chunks=None, progress: bool = False
) -> Iterator[zarr.Array]:
    """Open ``path`` as a zarr array; a TIFF, HDF5 or .npy is ingested first and removed on exit.

    The copy goes beside ``output`` (so that cluster workers see it wherever they see the output),
    or into a temporary folder when there is no output.
    """
    loc = parse(path)
    check_volume(info(path))
    if loc.kind == "zarr":
        yield zarrio.open_array(path)
        return
    folder = None if output is not None else tempfile.mkdtemp(prefix="gpuseg-")
    scratch = _scratch(output, "input") if folder is None else os.path.join(folder, "input.zarr")
    log.info("%s: reading through a temporary zarr copy %s", path, scratch)
    if zarrio.exists(scratch):
        shutil.rmtree(scratch)
    try:
        yield ingest(path, scratch, chunks=chunks, progress=progress)
    finally:
        shutil.rmtree(folder or scratch, ignore_errors=True)


@contextlib.contextmanager
def zarr_output(output: str | os.PathLike, overwrite: bool, progress: bool = False) -> Iterator[str]:
    """Yield a zarr path to compute into; for a TIFF output, export it there when done."""
    loc = parse(output)
    if loc.kind == "zarr":
        yield os.fspath(output)
        return
    if loc.kind not in ("tiff", "tiff-folder"):
        raise OutputError(f"{output}: outputs are .zarr, .tif or a folder of slices; choose one of those")
    if Path(output).exists() and not overwrite:
        raise OutputError(f"{output}: already exists; pass --overwrite to replace it, or choose another output")
    scratch = _scratch(output, "result")
    if zarrio.exists(scratch):  # complete result of a run killed while exporting
        shutil.rmtree(scratch)
    yield scratch
    export(scratch, output, overwrite=overwrite, progress=progress)
    shutil.rmtree(scratch, ignore_errors=True)
