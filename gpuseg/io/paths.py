"""What a path names: a zarr array inside a store, an HDF5 dataset, a .npy, a TIFF file or folder.

Zarr arrays and HDF5 datasets are addressed as paths through the container:
``vol.zarr/raw`` is the array ``raw`` in the store ``vol.zarr``; ``scan.h5/exchange/data``
is the dataset ``exchange/data`` in ``scan.h5``.

Examples
--------
>>> parse("vol.zarr/raw")
Location(kind='zarr', container='vol.zarr', inner='raw')
>>> parse("stack.tif").kind
'tiff'
>>> parse("slices/").kind
'tiff-folder'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
FOREIGN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".raw", ".mrc", ".rec", ".nii", ".nrrd", ".vol", ".am",
                    ".n5", ".csv", ".json", ".txt", ".npz")
"""Names of formats gpuseg does not write: as an output they would silently become a folder of TIFF slices."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed path.

    Attributes
    ----------
    kind : {"zarr", "hdf5", "npy", "tiff", "tiff-folder"}
    container : str
        The file or folder on disk (the store for zarr, the file for HDF5).
    inner : str
        The array path inside the container ("" for the root or for plain files).
    """

    kind: str
    container: str
    inner: str = ""

    def __str__(self) -> str:
        return f"{self.container}/{self.inner}" if self.inner else self.container


def _split_container(path: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part.lower().endswith(suffixes):
            return str(Path(*parts[: i + 1])), "/".join(parts[i + 1 :])
    return None


def parse(path: str | os.PathLike) -> Location:
    """Tell which kind of volume ``path`` names, from its name alone."""
    text = os.fspath(path)
    split = _split_container(text, (".zarr",))
    if split:
        return Location("zarr", *split)
    split = _split_container(text, HDF5_SUFFIXES)
    if split:
        return Location("hdf5", *split)
    lower = text.lower().rstrip("/")
    if lower.endswith(".npy"):
        return Location("npy", text)
    if lower.endswith(TIFF_SUFFIXES):
        return Location("tiff", text)
    return Location("tiff-folder", text.rstrip("/") or text)


def node(path: str | os.PathLike[str]) -> Path:
    """The file or folder on disk that ``path`` names (a zarr array inside a store: its folder; HDF5: the file)."""
    loc = parse(path)
    if loc.kind == "zarr":
        return Path(loc.container) / loc.inner if loc.inner else Path(loc.container)
    if loc.kind == "hdf5":
        return Path(loc.container)
    text = os.fspath(path)
    return Path(text.rstrip("/") or text)


def check_writable_kind(path: str | os.PathLike) -> Location:
    """The location of an output path, refusing a name that promises a format gpuseg does not write.

    Examples
    --------
    >>> check_writable_kind("slices").kind
    'tiff-folder'
    >>> check_writable_kind("out.png")
    Traceback (most recent call last):
    ...
    gpuseg.errors.OutputError: out.png: gpuseg does not write .png volumes; name out.zarr[/array], out.tif or a \
folder of TIFF slices
    """
    from ..errors import OutputError

    loc = parse(path)
    suffix = Path(os.fspath(path).rstrip("/")).suffix.lower()
    if loc.kind == "tiff-folder" and suffix in FOREIGN_SUFFIXES:
        raise OutputError(f"{path}: gpuseg does not write {suffix} volumes; name out.zarr[/array], out.tif or a "
                          "folder of TIFF slices")
    return loc
