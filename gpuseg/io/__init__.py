"""Format adapters: TIFF stacks, zarr v3, HDF5, .npy and ilastik projects, read and written by path."""

from .paths import Location, parse
from .volume import VolumeInfo, info, iter_slabs
from .zarrio import create_array, open_array

__all__ = ["Location", "VolumeInfo", "create_array", "info", "iter_slabs", "open_array", "parse"]
