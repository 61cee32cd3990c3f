"""The defaults of segmentation that ``gpuseg segment --help`` shows, importable without the engine."""

WATERSHED_HALO = 16
"""Context voxels per block side of the blockwise watershed: the smallest halo that agreed with a
whole-volume watershed on at least 99.9 % of voxels for every window and chunk size tried
(``docs/segmentation.md``, ``benchmarks/watershed_halo.py``)."""
