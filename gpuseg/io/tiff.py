"""TIFF stacks: one multi-page file or a folder of slices, read and written one slice at a time."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from ..validate import three_d

BIGTIFF_LIMIT = 2**32 - 2**25  # stay clear of 4 GiB: headers and offsets need room too


def natural_key(name: str) -> list:
    """Sort key putting ``s2.tif`` before ``s10.tif``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_slices(folder: str | os.PathLike) -> list[Path]:
    """The TIFF files in ``folder``, in natural sort order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such file or folder; check the path")
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff") and p.is_file()]
    if not files:
        raise InputError(f"{folder}: folder holds no .tif/.tiff slices; point at a TIFF file or a folder of slices")
    return sorted(files, key=lambda p: natural_key(p.name))


def _page_shape(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape), np.dtype(series.dtype), len(tif.pages)
    except Exception as exc:
        raise InputError(f"{path}: not a readable TIFF ({type(exc).__name__}: {exc}); re-export or remove it") from exc


def stack_info(path: str | os.PathLike) -> tuple[tuple[int, int, int], np.dtype]:
    """Shape (z, y, x) and dtype of a multi-page TIFF or a folder of 2-D slices, from headers only.

    Raises
    ------
    InputError
        Unreadable file; slices of differing shape or dtype; not a 3-D greyscale stack.
    """
    path = Path(path)
    if path.is_dir():
        files = list_slices(path)
        shape0, dtype0, _ = _page_shape(files[0])
        for f in files[1:]:
            shape, dtype, _ = _page_shape(f)
            if shape != shape0 or dtype != dtype0:
                raise InputError(
                    f"{f}: slice is {shape} {dtype} but {files[0].name} is {shape0} {dtype0}; "
                    "all slices must share shape and dtype"
                )
        if len(shape0) != 2:
            raise InputError(f"{files[0]}: slices must be 2-D greyscale images, found shape {shape0}")
        return (len(files), *shape0), dtype0
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    shape, dtype, _ = _page_shape(path)
    three_d(shape, str(path))
    z, y, x = shape
    return (z, y, x), dtype


def iter_slabs(
    path: str | os.PathLike, depth: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(z0, slab)`` with at most ``depth`` slices each from ``start`` to ``stop``, one page at a time."""
    path = Path(path)
    shape, dtype = stack_info(path)
    stop = shape[0] if stop is None else stop
    slab = np.empty((max(1, min(depth, stop - start)), *shape[1:]), dtype)
    if path.is_dir():
        sources = ((f, 0) for f in list_slices(path)[start:stop])
        tif = None
    else:
        tif = tifffile.TiffFile(path)
        sources = ((path, i) for i in range(start, stop))
    try:
        z0 = start
        for z, (file, page) in enumerate(sources, start):
            try:
                if tif is None:
                    slab[z - z0] = tifffile.imread(file)
                else:
                    slab[z - z0] = tif.pages[page].asarray()
            except Exception as exc:
                raise InputError(
                    f"{file}: slice {z} is unreadable ({type(exc).__name__}: {exc}); the TIFF is corrupt or truncated"
                ) from exc
            if z - z0 + 1 == len(slab) or z == stop - 1:
                yield z0, slab[: z - z0 + 1]
                z0 = z + 1
    finally:
        if tif is not None:
            tif.close()


def write_stack(path: str | os.PathLike, slabs: Iterator[np.ndarray], shape, dtype, metadata: dict | None = None) -> None:
    """Write slabs as one multi-page TIFF (BigTIFF when the data passes ~4 GiB), page by page."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with tifffile.TiffWriter(path, bigtiff=nbytes >= BIGTIFF_LIMIT) as tif:
        for slab in slabs:
            for page in slab:
                tif.write(page, contiguous=True, metadata=metadata)
                metadata = None  # only the first page carries it


def write_slices(folder: str | os.PathLike, slabs: Iterator[np.ndarray], nslices: int) -> None:
    """Write slabs as a folder of 2-D TIFF slices named ``slice_00000.tif`` …"""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(nslices - 1)))
    z = 0
    for slab in slabs:
        for page in slab:
            tifffile.imwrite(folder / f"slice_{z:0{width}d}.tif", page)
            z += 1
