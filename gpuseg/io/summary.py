"""What ``gpuseg info`` reports: header facts and a one-pass grey-value summary, for 3-D volumes and for
4-D (channel, z, y, x) zarr outputs such as probabilities and features."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..validate import three_d
from . import metadata, ome, zarrio
from .volume import VolumeInfo, check_dtype, check_volume, info, iter_slabs


def check_channels(vol: VolumeInfo) -> None:
    """Raise :class:`~gpuseg.errors.InputError` unless ``vol`` is a volume gpuseg reads or writes: 3-D, or 4-D
    (channel, z, y, x) zarr, of a dtype gpuseg computes on or float16 (its probabilities and uncertainty)."""
    if vol.dtype == np.float16 or (len(vol.shape) == 4 and vol.kind == "zarr"):
        three_d(vol.shape[-3:], vol.path)
        if len(vol.shape) not in (3, 4):
            check_volume(vol)
        if vol.dtype != np.float16:
            check_dtype(vol.dtype, vol.path)
    else:
        check_volume(vol)


def channel_slabs(path: str | os.PathLike, vol: VolumeInfo, depth: int, start: int = 0,
                  stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Like :func:`~gpuseg.io.volume.iter_slabs`, slabs along z, also of a 4-D zarr array (all channels: ``(c, z, y, x)``)."""
    if len(vol.shape) != 4:
        yield from iter_slabs(path, depth, start, stop)
        return
    arr = zarrio.open_array(path)
    stop = arr.shape[1] if stop is None else stop
    for z0 in range(start, stop, depth):
        yield z0, np.asarray(zarrio.read(arr, (slice(None), slice(z0, min(z0 + depth, stop)))))


def summary(path: str | os.PathLike, *, progress: bool = False) -> dict[str, Any]:
    """Shape, dtype, chunks, voxel size and grey-value statistics of a volume, reading one slab at a time.

    Returns
    -------
    dict
        ``shape, dtype, chunks, voxel_size_nm, min, max, mean, std`` (over the finite voxels; std with n)
        and ``nonfinite``, the count of NaN or infinite voxels (which every other command refuses).
        Statistics of a volume without a finite voxel are None. A 4-D (channel, z, y, x) array adds
        ``channel_means`` (one per channel); ``levels`` lists an OME-Zarr image's resolution levels.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "v.npy")
    >>> np.save(p, np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    >>> s = summary(p)
    >>> s["shape"], s["min"], s["max"], s["mean"]
    ([2, 2, 2], 0.0, 7.0, 3.5)
    """
    from ..progress import Progress

    vol = info(path)
    check_channels(vol)
    channels = len(vol.shape) == 4
    depth = (vol.chunks or (32,))[1 if channels else 0]
    lo, hi, total, total_sq, n, nonfinite = np.inf, -np.inf, 0.0, 0.0, 0, 0
    per_channel = np.zeros(vol.shape[0] if channels else 0)
    with Progress(vol.shape[-3], f"info {path}", enabled=progress, unit="slices") as bar:
        for _, slab in channel_slabs(path, vol, depth):
            if channels:
                per_channel += slab.reshape(len(slab), -1).sum(axis=1, dtype=np.float64)
            data = slab.astype(np.float64)
            if slab.dtype.kind == "f":
                keep = np.isfinite(data)
                nonfinite += int(data.size - np.count_nonzero(keep))
                data = data[keep]
            if data.size:
                lo, hi = min(lo, float(data.min())), max(hi, float(data.max()))
                total += float(data.sum())
                total_sq += float(np.square(data).sum())
                n += data.size
            bar.update(slab.shape[-3])
    mean = total / n if n else None
    voxels = int(np.prod(vol.shape[-3:]))
    levels = _levels(path) if vol.kind == "zarr" else []
    return {
        "path": str(path), "shape": list(vol.shape), "dtype": str(vol.dtype),
        "chunks": list(vol.chunks) if vol.chunks else None,
        "voxel_size_nm": metadata.voxel_size(vol.attrs) or (levels[0]["voxel_size_nm"] if levels else None),
        "min": lo if n else None, "max": hi if n else None, "mean": mean,
        "std": float(np.sqrt(max(total_sq / n - mean * mean, 0.0))) if mean is not None else None,
        "nonfinite": nonfinite,
        **({"channel_means": [float(v) / voxels for v in per_channel]} if channels else {}),
        **({"levels": levels} if levels else {}),
    }


def _levels(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Shape and voxel size of each resolution level of the OME-Zarr image at ``path``; [] for a plain array."""
    import zarr

    from .paths import parse

    loc = parse(path)
    try:
        group = zarr.open(store=loc.container, path=loc.inner, mode="r")
    except Exception:
        return []
    if isinstance(group, zarr.Array) or not ome.is_image(group.attrs.asdict()):
        return []
    attrs = group.attrs.asdict()
    paths = ome.level_paths(attrs)
    found = []
    for level, scale in enumerate(ome.level_scales(attrs)):
        arr = group.get(paths[level]) if level < len(paths) else None
        if isinstance(arr, zarr.Array):
            found.append({"level": level, "path": paths[level], "shape": list(arr.shape), "voxel_size_nm": scale})
    return found
