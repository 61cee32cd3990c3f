"""Ingest any supported volume into chunked zarr, export zarr to TIFF, and crop subvolumes: resumable-safe writes.

All three stream z-slabs: peak memory is one slab of ``chunks[0]`` slices, not the volume.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from . import validate
from .engine import outputs
from .errors import OutputError, ParameterError
from .io import metadata, tiff, zarrio
from .io.paths import check_writable_kind
from .io.summary import channel_slabs, check_channels
from .io.volume import check_volume, info, iter_slabs
from .progress import Progress


def ingest(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    voxel_size: float | Sequence[float] | None = None,
    chunks: int | Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    attrs: Mapping[str, Any] | None = None,
):
    """Copy a TIFF stack, HDF5 dataset, .npy or zarr array into a chunked, compressed zarr v3 array.

    Parameters
    ----------
    source : path
        Multi-page TIFF, folder of TIFF slices (natural sort order), ``file.h5/dataset``,
        ``.npy`` or ``store.zarr/array``.
    output : path
        ``store.zarr`` or ``store.zarr/array``.
    voxel_size : float or (z, y, x), optional
        In nm. Defaults to the source's own, if it has one. A copy keeps what the source's labels or
        channels are (``metadata.NAMING_KEYS``): a copied segmentation is a label image again.
    chunks : int or (z, y, x), optional
        Chunk shape; default 128³.
    overwrite : bool
        Replace an existing output (only once the new one is complete).
    attrs : mapping, optional
        Extra attributes for the output.

    Returns
    -------
    zarr.Array

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "v.npy"), np.arange(1000, dtype=np.uint16).reshape(10, 10, 10))
    >>> arr = ingest(os.path.join(d, "v.npy"), os.path.join(d, "v.zarr/raw"), voxel_size=397, chunks=4)
    >>> arr.shape, arr.chunks, arr.attrs["voxel_size_nm"]
    ((10, 10, 10), (4, 4, 4), [397.0, 397.0, 397.0])
    """
    vol = info(source)
    check_volume(vol)
    size = metadata.normalize_voxel_size(voxel_size)
    chunk_shape = zarrio.normalize_chunks(chunks, vol.shape)
    meta = {**metadata.provenance(source=source), **metadata.inherit(vol.attrs, names=True), **(attrs or {})}
    if size is not None:
        meta[metadata.VOXEL_SIZE_KEY] = size
    with outputs.staged(output, overwrite=overwrite, inputs=[source]) as staged:
        arr = zarrio.create_array(staged, vol.shape, vol.dtype, chunk_shape, meta)
        with Progress(vol.shape[0], f"ingest {source}", enabled=progress, unit="slices") as bar:
            for z0, slab in iter_slabs(source, chunk_shape[0]):
                validate.finite(slab, os.fspath(source), (z0, 0, 0))
                arr[z0 : z0 + len(slab)] = slab
                bar.update(len(slab))
    return zarrio.open_array(output)


def save(
    data: np.ndarray,
    output: str | os.PathLike[str],
    *,
    chunks: int | Sequence[int] | None = None,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Any:
    """Write an in-memory array as a compressed zarr array, replacing ``output`` only once it is written.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> arr = save(np.ones((4, 4, 4), np.uint8), os.path.join(tempfile.mkdtemp(), "a.zarr/x"), chunks=2)
    >>> arr.chunks, int(arr[:].sum())
    ((2, 2, 2), 64)
    """
    with outputs.staged(output, overwrite=overwrite) as staged:
        zarrio.create_array(staged, data.shape, data.dtype, zarrio.normalize_chunks(chunks, data.shape),
                            attrs)[...] = data
    return zarrio.open_array(output)


def export(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> str:
    """Write a volume as one multi-page TIFF (``.tif``; BigTIFF over 4 GiB) or a folder of slices.

    Parameters
    ----------
    source : path
        Any supported volume, usually ``store.zarr/array``.
    output : path
        ``name.tif``/``name.tiff`` for one file, any other name for a folder of slices,
        or ``store.zarr/array`` to copy into zarr.

    Returns
    -------
    str
        The output path.
    """
    loc = check_writable_kind(output)
    if loc.kind == "zarr":
        ingest(source, output, overwrite=overwrite, progress=progress)
        return str(output)
    if loc.kind not in ("tiff", "tiff-folder"):
        raise OutputError(f"{output}: export writes .tif, a folder of slices, or .zarr; choose one of those")
    vol = info(source)
    check_volume(vol)
    depth = (vol.chunks or (64,))[0]

    def slabs(bar: Progress) -> Iterator[np.ndarray]:
        for _, slab in iter_slabs(source, depth):
            yield slab
            bar.update(len(slab))

    with outputs.staged(output, overwrite=overwrite, inputs=[source]) as staged, Progress(vol.shape[0], f"export {output}", enabled=progress, unit="slices") as bar:
        if loc.kind == "tiff":
            size = metadata.voxel_size(vol.attrs)
            tiff.write_stack(staged, slabs(bar), vol.shape, vol.dtype, metadata={"voxel_size_nm": size} if size else None)
        else:
            tiff.write_slices(staged, slabs(bar), vol.shape[0])
    return str(output)


def central_region(shape: Sequence[int], size: int | Sequence[int]) -> tuple[slice, ...]:
    """Slices of a box of ``size`` centred in ``shape`` (like the reference study's central 200³).

    Examples
    --------
    >>> central_region((10, 20, 30), 4)
    (slice(3, 7, None), slice(8, 12, None), slice(13, 17, None))
    """
    sizes = [int(s) for s in size] if isinstance(size, Iterable) else [int(size)] * len(shape)
    if len(sizes) != len(shape) or any(s < 1 or s > n for s, n in zip(sizes, shape)):
        raise ParameterError(f"crop size {size} does not fit in a volume of shape {tuple(shape)}")
    return tuple(slice((n - s) // 2, (n - s) // 2 + s) for s, n in zip(sizes, shape))


def crop(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    size: int | Sequence[int],
    start: Sequence[int] | None = None,
    chunks: int | Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    region: tuple[slice, ...] | None = None,
):
    """Copy the subvolume of ``size`` at ``start`` (default: centred), or ``region``, into a zarr array.

    A 4-D output of gpuseg (channel, z, y, x: probabilities, features) is cropped in z, y, x with every channel.

    Returns
    -------
    zarr.Array
    """
    vol = info(source)
    check_channels(vol)
    lead, space = vol.shape[:-3], vol.shape[-3:]
    if region is None and start is None:
        region = central_region(space, size)
    elif region is None:
        sizes = [int(s) for s in size] if isinstance(size, Iterable) else [int(size)] * 3
        region = tuple(slice(int(a), int(a) + s) for a, s in zip(start or (), sizes))
        if any(r.start < 0 or r.stop > n or r.start >= r.stop for r, n in zip(region, space)):
            raise ParameterError(f"crop start {tuple(start or ())} + size {tuple(sizes)} leaves the volume {space}")
    if check_writable_kind(output).kind != "zarr":
        raise OutputError(f"{output}: {source} is {len(vol.shape)}-D {vol.dtype}; crop it into zarr (name.zarr[/array])")
    shape = tuple(r.stop - r.start for r in region)
    chunk_shape = (*lead, *zarrio.normalize_chunks(chunks or (vol.chunks[-3:] if vol.chunks else None), shape))
    attrs = metadata.provenance(source=source, crop_start=[r.start for r in region],
                                **metadata.inherit(vol.attrs, names=True))
    with outputs.staged(output, overwrite=overwrite, inputs=[source]) as staged:
        arr = zarrio.create_array(staged, (*lead, *shape), vol.dtype, chunk_shape, attrs)
        z0 = region[0].start
        with Progress(shape[0], f"crop {source}", enabled=progress, unit="slices") as bar:
            for z, slab in channel_slabs(source, vol, chunk_shape[-3], region[0].start, region[0].stop):
                lo, hi = max(z, z0), min(z + slab.shape[-3], region[0].stop)
                if lo < hi:
                    arr[..., lo - z0 : hi - z0, :, :] = slab[..., lo - z : hi - z, region[1], region[2]]
                    bar.update(hi - lo)
    return zarrio.open_array(output)
