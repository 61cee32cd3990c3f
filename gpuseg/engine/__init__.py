"""The block engine: one planner, one executor, one resumable output, for every operation on CPU and GPU.

Modules, one job each: :mod:`.blocks` (halo and crop geometry), :mod:`.operation` (declaring
an operation), :mod:`.plan` (block sizes for CPU and GPU, stored with the run),
:mod:`.executor` (the only host↔device path), :mod:`.outputs` (the only resumable, locked,
atomic output), :mod:`.run` (zarr → zarr out of core), :mod:`.lazy` (in memory and dask),
:mod:`.reduce` (exact chunk reductions), :mod:`.staging` (any format in and out),
:mod:`.cluster` (schedulers and device placement), :mod:`.api` (public functions from
declarations), :mod:`.timing`, :mod:`.progress`, :mod:`.faults` (a test seam).

Examples
--------
A custom operation, declared once and run on an array:

>>> import numpy as np, scipy.ndimage as ndi
>>> from gpuseg import engine
>>> box = engine.Operation("box", lambda b, size: ndi.uniform_filter(b, size), halo=lambda p: p["size"] // 2)
>>> x = np.random.default_rng(0).random((20, 20, 20), dtype=np.float32)
>>> y = engine.process(box, {"size": 3}, x, chunks=7, device="cpu")
>>> bool(np.allclose(y, ndi.uniform_filter(x, 3)))
True
"""

from .api import RunOptions, is_path, process
from .operation import Operation, Result

__all__ = ["Operation", "Result", "RunOptions", "is_path", "process"]
