"""Speckle removal: drop connected components of one phase smaller than N voxels, exactly, blockwise.

Why a halo makes this exact without any global labelling: a component of fewer than
``min_size`` voxels spans at most ``min_size - 1`` voxels along every axis. Label each
block grown by a halo of ``min_size - 1`` voxels. A component containing a core voxel
that reaches the edge of the grown block (other than a face of the volume) contains a
path of at least ``min_size`` voxels, so it is large and kept. Any other such component
lies wholly inside the grown block, so its size there is its true size. The result
therefore equals ``skimage.morphology.remove_small_objects`` on the whole volume, for any
chunking and any connectivity, with nothing but one halo'd block in memory per worker.

The cost is the halo: each block of edge ``c`` reads ``(c + 2 (min_size - 1))³`` voxels,
so keep ``min_size`` well below the chunk edge (the study's speckles are a few voxels).

Examples
--------
>>> import numpy as np
>>> seg = np.full((1, 5, 5), 2, np.uint8)
>>> seg[0, 0, 0] = 1          # a one-voxel speckle
>>> seg[0, 2:5, 2:5] = 1      # a 9-voxel particle
>>> int((remove_speckles(seg, 2, device="cpu") == 1).sum())
9
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from typing_extensions import Unpack

from .. import backend, validate
from ..engine import Operation, RunOptions, process
from ..errors import InputError, ParameterError


def structure(connectivity: int) -> np.ndarray:
    """The 3×3×3 neighbourhood of ``connectivity`` 1 (faces), 2 (and edges) or 3 (and corners)."""
    import scipy.ndimage as ndi

    if connectivity not in (1, 2, 3):
        raise ParameterError(f"connectivity {connectivity} must be 1 (6 neighbours), 2 (18) or 3 (26)")
    return ndi.generate_binary_structure(3, connectivity)


def remove_speckles_block(block: Any, *, min_size: int, phase: int = 1, fill: int = 2, connectivity: int = 1) -> Any:
    """Relabel ``phase`` components of fewer than ``min_size`` voxels in one block as ``fill``."""
    be = backend.for_array(block)
    xp = be.xp
    mask = block == phase
    labels, n = be.ndi.label(mask, structure=xp.asarray(structure(connectivity)))
    sizes = backend.count(labels, int(n) + 1)
    small = sizes < min_size
    small[0] = False  # background
    out = block.copy()
    out[small[labels]] = fill
    return out


def remove_speckles(
    segmentation: Any,
    min_size: int,
    *,
    phase: int = 1,
    fill: int = 2,
    connectivity: int = 1,
    output: str | os.PathLike | None = None,
    **options: Unpack[RunOptions],
) -> Any:
    """Relabel connected ``phase`` components of fewer than ``min_size`` voxels as ``fill``.

    The voxels that stay ``phase`` are exactly ``skimage.morphology.remove_small_objects(
    segmentation == phase, max_size=min_size - 1, connectivity=connectivity)`` (scikit-image
    < 0.26: ``min_size=min_size``) on the whole volume, for any chunking.

    Parameters
    ----------
    segmentation : path, numpy, cupy or dask array of integer labels
    min_size : int
        Components with fewer voxels are removed; ≥ 1 (1 removes nothing).
    phase : int
        The label whose components are cleaned (1 = active material).
    fill : int
        The label removed voxels get (2 = non-active in two-phase segmentations).
    connectivity : {1, 2, 3}
        Neighbourhood, as in scikit-image: 1 = faces (default), 3 = faces, edges and corners.
    output : path, optional
        Required for a path input.
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    array or str
        The cleaned labels (same dtype), or the output path.
    """
    min_size = validate.integer("--min-size", min_size, at_least=1)
    phase = validate.integer("--phase", phase, at_least=1, at_most=255)
    fill = validate.integer("--fill", fill, at_least=0, at_most=255)
    if fill == phase:
        raise ParameterError(f"--fill {fill} equals --phase {phase}: removed voxels must get another label")
    structure(connectivity)
    params = {"min_size": min_size, "phase": phase, "fill": fill, "connectivity": int(connectivity)}
    return process(SPECKLE, params, segmentation, output, check=lambda seg: _check_labels(seg, segmentation),
                   attrs=lambda src: {**src.attrs.asdict(), "speckle_min_size": min_size}, **options)


def _check_labels(array: Any, name: Any) -> None:
    if np.dtype(array.dtype).kind not in "ui":
        where = name if isinstance(name, (str, os.PathLike)) else "segmentation"
        raise InputError(f"{where}: dtype {array.dtype} is not a segmentation; labels must be integers")


SPECKLE = Operation("speckles", remove_speckles_block, halo=lambda p: p["min_size"] - 1,
                    device_bytes_per_voxel=16, host_bytes_per_voxel=16, same_on_every_device=True)
