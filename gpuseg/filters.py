"""Gaussian filtering of volumes, blockwise, with scipy.ndimage semantics on CPU and GPU.

``truncate`` is the reference study's "kernel size factor": the kernel reaches
``int(truncate * sigma + 0.5)`` voxels to each side, as in ``scipy.ndimage``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend, blockwise
from .errors import ParameterError
from .io import metadata, staging

Sigma = float | Sequence[float]


def normalize_sigma(sigma: Sigma) -> tuple[float, float, float]:
    """One sigma or one per axis (z, y, x) → three positive floats.

    Raises
    ------
    ParameterError
        If any sigma is not positive.
    """
    values = [float(sigma)] * 3 if np.isscalar(sigma) else [float(s) for s in sigma]
    if len(values) != 3 or not all(s > 0 for s in values):
        raise ParameterError(f"sigma {sigma!r} must be one or three numbers > 0")
    return tuple(values)  # type: ignore[return-value]


def kernel_radius(sigma: Sigma, truncate: float = 4.0) -> tuple[int, int, int]:
    """Voxels a Gaussian of ``sigma`` reaches on each side: the halo it needs (scipy's rule).

    Examples
    --------
    >>> kernel_radius(2.0, truncate=4.0)
    (8, 8, 8)
    """
    if truncate <= 0:
        raise ParameterError(f"truncate {truncate} must be > 0")
    return tuple(int(truncate * s + 0.5) for s in normalize_sigma(sigma))  # type: ignore[return-value]


def gaussian_block(block: Any, *, sigma: Sigma, truncate: float = 4.0) -> Any:
    """Gaussian filter of one block as float32, mode ``reflect`` (numpy or cupy in, same out)."""
    be = backend.for_array(block)
    data = block.astype(be.xp.float32, copy=False)
    return be.ndi.gaussian_filter(data, sigma, truncate=truncate, mode="reflect", output=be.xp.float32)


def gaussian(
    image: Any,
    sigma: Sigma,
    *,
    truncate: float = 4.0,
    output: str | os.PathLike | None = None,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
):
    """3-D Gaussian filter, float32 out, equal to ``scipy.ndimage.gaussian_filter(image, sigma, mode="reflect")``.

    Parameters
    ----------
    image : numpy, cupy or dask array, or path
        The volume; a path (any supported format) is filtered out of core into ``output``.
    sigma : float or (z, y, x)
        Standard deviation in voxels, > 0.
    truncate : float
        Kernel size factor: radius = ``int(truncate * sigma + 0.5)``.
    output : path, optional
        Required for a path input: ``out.zarr[/array]``, ``out.tif`` or a folder of slices.
    device : {"auto", "cpu", "gpu"}
    chunks : int or (z, y, x), optional
        Block size; default 128³ for paths, whole array for in-memory input.
    scheduler, workers : see :mod:`gpuseg.cluster`.
    overwrite, progress : bool

    Returns
    -------
    array or str
        An array of the input's kind (dask input: lazy dask array), or the output path.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi
    >>> x = np.random.default_rng(0).random((16, 16, 16), dtype=np.float32)
    >>> y = gaussian(x, 1.5, chunks=5, device="cpu")
    >>> bool(np.allclose(y, ndi.gaussian_filter(x, 1.5), rtol=1e-5, atol=1e-6))
    True
    """
    sigma = normalize_sigma(sigma)
    halo = kernel_radius(sigma, truncate)
    kwargs = {"sigma": sigma, "truncate": float(truncate)}
    if not isinstance(image, (str, os.PathLike)):
        return blockwise.apply(gaussian_block, image, halo=halo, chunks=chunks, device=device, dtype=np.float32, **kwargs)
    if output is None:
        raise ParameterError("gaussian on a path needs an output path")
    with staging.zarr_output(output, overwrite, progress) as target, staging.zarr_input(image, output, chunks, progress) as src:
        blockwise.run(
            gaussian_block, [src], target, shape=src.shape, dtype=np.float32, halo=halo,
            chunks=chunks or src.chunks, kwargs=kwargs, identity={"input": os.fspath(image)},
            attrs=metadata.provenance(source=image, sigma=list(sigma), truncate=truncate, **metadata.inherit(src.attrs.asdict())),
            device=device, scheduler=scheduler, workers=workers, overwrite=overwrite, progress=progress,
            desc=f"gaussian σ={sigma[0]:g}",
        )
    return os.fspath(output)
