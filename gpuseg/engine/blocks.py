"""Block geometry: the grid of work blocks over a volume, their halos, and the chunks each covers.

This is the only place that does halo arithmetic. A block's *core* is the region it writes;
its *padded* region is the core grown by the halo and clipped to the volume, which is what
it reads; *inner* is where the core lies inside the padded block. Near a face the operation
therefore sees exactly what it would see on the whole array, so a filter with
``mode="reflect"`` reproduces the whole-array result whatever the blocking, as long as the
halo covers its kernel radius.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError

SPATIAL = 3
Shape = tuple[int, ...]
Region = tuple[slice, ...]


def normalize_halo(halo: int | Sequence[int]) -> Shape:
    """One halo width or one per axis → a tuple of three non-negative ints.

    Examples
    --------
    >>> normalize_halo(2), normalize_halo((0, 1, 2))
    ((2, 2, 2), (0, 1, 2))
    """
    values = [int(halo)] * SPATIAL if isinstance(halo, (int, np.integer)) else [int(h) for h in halo]
    if len(values) != SPATIAL or min(values) < 0:
        raise ParameterError(f"halo {halo!r} must be one or {SPATIAL} non-negative integers")
    return tuple(values)


def extent(region: Region) -> Shape:
    """The shape of a region of slices."""
    return tuple(s.stop - s.start for s in region)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of the grid.

    Attributes
    ----------
    index : tuple of int
        Position in the block grid.
    core : tuple of slice
        The region of the volume this block writes.
    padded : tuple of slice
        The region read: ``core`` grown by the halo, clipped to the volume.
    inner : tuple of slice
        Where ``core`` lies inside the padded block.
    """

    index: Shape
    core: Region
    padded: Region
    inner: Region

    @property
    def key(self) -> str:
        return "-".join(map(str, self.index))

    def local(self) -> Block:
        """The same block with ``padded`` counted from 0: for an array that holds only the padded region."""
        return Block(self.index, self.core, tuple(slice(0, s.stop - s.start) for s in self.padded), self.inner)


def pad(core: Region, halo: Sequence[int], bounds: Region) -> Block:
    """The :class:`Block` of ``core`` with ``halo``, clipped to ``bounds`` (the volume, or an enclosing padded block)."""
    padded = tuple(slice(max(c.start - h, b.start), min(c.stop + h, b.stop)) for c, h, b in zip(core, halo, bounds))
    inner = tuple(slice(c.start - p.start, c.stop - p.start) for c, p in zip(core, padded))
    return Block((), core, padded, inner)


def iter_blocks(shape: Sequence[int], block_shape: Sequence[int], halo: int | Sequence[int]) -> Iterator[Block]:
    """Every block of ``block_shape`` tiling ``shape``, with its halo'd read region.

    Examples
    --------
    >>> blocks = list(iter_blocks((10, 4, 4), (4, 4, 4), (2, 0, 0)))
    >>> [(b.core[0], b.padded[0], b.inner[0]) for b in blocks]  # doctest: +NORMALIZE_WHITESPACE
    [(slice(0, 4, None), slice(0, 6, None), slice(0, 4, None)),
     (slice(4, 8, None), slice(2, 10, None), slice(2, 6, None)),
     (slice(8, 10, None), slice(6, 10, None), slice(2, 4, None))]
    """
    halo = normalize_halo(halo)
    bounds = tuple(slice(0, int(n)) for n in shape)
    grids = [range(0, n, b) for n, b in zip(shape, block_shape)]
    for starts in itertools.product(*grids):
        core = tuple(slice(s, min(s + b, n)) for s, b, n in zip(starts, block_shape, shape))
        index = tuple(s // b for s, b in zip(starts, block_shape))
        yield dataclasses.replace(pad(core, halo, bounds), index=index)


def split(block: Block, halo: Sequence[int]) -> list[Block]:
    """``block``'s core cut in two along its longest axis, each half padded inside ``block.padded``.

    A half reads only voxels its parent read, so an operation whose result does not depend on
    the blocking (the halo covers its kernel) gives the same bytes on the halves.

    Examples
    --------
    >>> parent = next(iter_blocks((8, 4, 4), (8, 4, 4), 1))
    >>> [(h.core[0], h.padded[0]) for h in split(parent, (1, 1, 1))]
    [(slice(0, 4, None), slice(0, 5, None)), (slice(4, 8, None), slice(3, 8, None))]
    """
    sizes = extent(block.core)
    axis = int(np.argmax(sizes))
    if sizes[axis] < 2:
        return [block]
    c = block.core[axis]
    mid = c.start + sizes[axis] // 2
    halves = []
    for part in (slice(c.start, mid), slice(mid, c.stop)):
        core = tuple(part if a == axis else s for a, s in enumerate(block.core))
        halves.append(dataclasses.replace(pad(core, halo, block.padded), index=block.index))
    return halves


def crop(result: Any, block: Block) -> Any:
    """Crop the halo off ``result`` unless the operation already returned the core."""
    spatial = tuple(result.shape[-SPATIAL:])
    core, padded = extent(block.core), extent(block.padded)
    if spatial == padded:
        return result[(Ellipsis, *block.inner)]
    if spatial == core:
        return result
    raise ValueError(f"operation returned spatial shape {spatial}; expected the padded {padded} or the core {core}")


def count_blocks(shape: Sequence[int], block: Sequence[int]) -> int:
    return int(np.prod([-(-n // b) for n, b in zip(shape, block)]))


def chunk_keys(core: Region, chunk_shape: Sequence[int]) -> list[str]:
    """Names of the chunks (by chunk-grid coordinates, ``"z.y.x"``) a chunk-aligned region covers.

    They name what is written independently of how the work was blocked, so a resume with
    another block size, worker count or device still knows which chunks are complete.

    Examples
    --------
    >>> chunk_keys((slice(0, 8), slice(4, 8), slice(0, 4)), (4, 4, 4))
    ['0.1.0', '1.1.0']
    """
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(core, chunk_shape)]
    return [".".join(map(str, idx)) for idx in itertools.product(*ranges)]
