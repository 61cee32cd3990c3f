"""gpuseg: GPU-accelerated, out-of-core segmentation of battery-electrode tomograms,
with the reliability metrics of multi-user segmentation studies."""

__version__ = "0.1.0"
