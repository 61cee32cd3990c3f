"""A block operation, declared once: its kernel and everything the engine needs to run it.

The engine derives the rest from the declaration: the halo to read, the outputs to create,
how large a block may be on the CPU and on the GPU, whether an out-of-memory block may be
split, and the public path-in/path-out and array-in/array-out functions (:mod:`.api`).
Algorithm modules hold kernels and declarations; they do no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .blocks import Shape, normalize_halo

Params = Mapping[str, Any]


def _value(field: Any, *args: Any) -> Any:
    return field(*args) if callable(field) and not isinstance(field, (type, np.dtype)) else field


@dataclasses.dataclass(frozen=True)
class Result:
    """One array an operation writes.

    Attributes
    ----------
    dtype : dtype, callable or None
        Its dtype; a callable gets ``(params, input_dtype)``; None: the input's dtype.
    channels : tuple or callable
        Leading non-spatial axes (e.g. ``(K,)`` class probabilities); a callable gets ``params``.
    named : bool
        Whether the class or phase names of the run's attributes describe this array's values. False for a
        measurement written beside labels (an uncertainty in [0, 1]): it gets no names, so it is not taken
        for a label image.
    """

    dtype: Any = None
    channels: Any = ()
    named: bool = True


@dataclasses.dataclass(frozen=True)
class Operation:
    """The declaration of a block operation.

    Attributes
    ----------
    name : str
        Shown in progress bars and stored in the fingerprint.
    kernel : callable
        ``kernel(*padded_blocks, **params) -> array`` on the blocks' device (numpy or cupy);
        the result has the padded or the core spatial shape (the engine crops). With several
        :attr:`results`, a dict of the wanted ones (``params["want"]`` names them).
    halo : int, (z, y, x) or callable
        Context voxels per side; a callable gets ``params``.
    results : mapping of name to :class:`Result`
        What it writes; the first is the main output.
    finish : callable, optional
        A host step after the device kernel, run outside the device slot (e.g. scikit-image's
        watershed, which has no GPU version): ``finish(host_result, **params)``.
    device_bytes_per_voxel, host_bytes_per_voxel : int or callable
        Peak memory one padded voxel needs on the device and on the host (input,
        temporaries, outputs); they size the blocks.
    max_block_voxels : int or callable, optional
        Cap on a block's padded voxels, on every device.
    blocking_invariant : bool
        True when the result does not depend on the blocking (the halo covers the kernel):
        then blocks may be sized per device and split after an out-of-memory error. False
        (e.g. the watershed): the block shape depends only on the declaration and chunks,
        never on the device or workers, so every device and every resume gives the same bytes.
    takes_block : bool
        Pass ``block=`` (the local :class:`~gpuseg.engine.blocks.Block`) to the kernel, e.g. to
        compute only the core.
    same_on_every_device : bool
        True when CPU and GPU give the same bytes (integer logic: thresholds, labels). Otherwise
        (floating-point sums in another order, transcendental functions) a resume stays on the
        device that began the output, or starts afresh, so an output never mixes devices' bits.
    """

    name: str
    kernel: Callable[..., Any]
    halo: Any = 0
    results: Mapping[str, Result] = dataclasses.field(default_factory=lambda: {"output": Result()})
    finish: Callable[..., Any] | None = None
    device_bytes_per_voxel: Any = 32
    host_bytes_per_voxel: Any = 16
    max_block_voxels: Any = None
    blocking_invariant: bool = True
    takes_block: bool = False
    same_on_every_device: bool = False

    def bind(self, params: Params, input_dtype: Any, want: Sequence[str] | None = None) -> Bound:
        """The declaration evaluated for ``params`` and an input of ``input_dtype``."""
        names = tuple(want) if want else (next(iter(self.results)),)
        unknown = [n for n in names if n not in self.results]
        if unknown:
            raise ValueError(f"{self.name} has no result {unknown[0]!r}; it has {', '.join(self.results)}")
        params = dict(params)
        if len(self.results) > 1:
            params["want"] = names
        dtypes = {n: np.dtype(_value(self.results[n].dtype, params, np.dtype(input_dtype)) or input_dtype) for n in names}
        channels = {n: tuple(int(c) for c in _value(self.results[n].channels, params)) for n in names}
        max_voxels = _value(self.max_block_voxels, params)
        return Bound(
            op=self, params=params, halo=normalize_halo(_value(self.halo, params)), names=names, dtypes=dtypes,
            channels=channels, device_bytes_per_voxel=int(_value(self.device_bytes_per_voxel, params)),
            host_bytes_per_voxel=int(_value(self.host_bytes_per_voxel, params)),
            max_block_voxels=None if max_voxels is None else int(max_voxels),
        )


@dataclasses.dataclass(frozen=True)
class Bound:
    """An :class:`Operation` with its parameters: concrete halo, results, memory needs."""

    op: Operation
    params: dict[str, Any]
    halo: Shape
    names: tuple[str, ...]
    dtypes: dict[str, np.dtype]
    channels: dict[str, Shape]
    device_bytes_per_voxel: int
    host_bytes_per_voxel: int
    max_block_voxels: int | None

    @property
    def multi(self) -> bool:
        return len(self.op.results) > 1

    def identity(self) -> dict[str, Any]:
        """What of the operation defines its bytes (for fingerprints)."""
        kernel = self.op.kernel
        return {"op": self.op.name, "kernel": f"{kernel.__module__}.{kernel.__qualname__}", "params": self.params,
                "halo": list(self.halo), "dtypes": {k: str(v) for k, v in self.dtypes.items()},
                "channels": {k: list(v) for k, v in self.channels.items()}}
