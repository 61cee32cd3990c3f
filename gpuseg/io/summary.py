"""What ``gpuseg info`` reports: header facts and a one-pass grey-value summary."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import metadata
from .volume import check_volume, info, iter_slabs


def summary(path: str | os.PathLike, *, progress: bool = False) -> dict[str, Any]:
    """Shape, dtype, chunks, voxel size and grey-value statistics of a volume, reading one slab at a time.

    Returns
    -------
    dict
        ``shape, dtype, chunks, voxel_size_nm, min, max, mean, std`` (over the finite voxels; std with n)
        and ``nonfinite``, the count of NaN or infinite voxels (which every other command refuses).
        Statistics of a volume without a finite voxel are None.

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
    check_volume(vol)
    depth = (vol.chunks or (32,))[0]
    lo, hi, total, total_sq, n, nonfinite = np.inf, -np.inf, 0.0, 0.0, 0, 0
    with Progress(vol.shape[0], f"info {path}", enabled=progress, unit="slices") as bar:
        for _, slab in iter_slabs(path, depth):
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
            bar.update(len(slab))
    mean = total / n if n else None
    return {
        "path": str(path), "shape": list(vol.shape), "dtype": str(vol.dtype),
        "chunks": list(vol.chunks) if vol.chunks else None,
        "voxel_size_nm": metadata.voxel_size(vol.attrs),
        "min": lo if n else None, "max": hi if n else None, "mean": mean,
        "std": float(np.sqrt(max(total_sq / n - mean * mean, 0.0))) if mean is not None else None,
        "nonfinite": nonfinite,
    }
