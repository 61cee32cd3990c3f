"""Reading and writing volumes: TIFF stacks, zarr v3, HDF5 and .npy."""

from .convert import central_region, crop, export, ingest
from .paths import Location, parse
from .volume import VolumeInfo, info, iter_slabs, staged_output
from .zarrio import create_array, open_array

__all__ = [
    "Location", "VolumeInfo", "central_region", "create_array", "crop", "export", "info",
    "ingest", "iter_slabs", "open_array", "parse", "staged_output",
]
