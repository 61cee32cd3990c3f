"""The napari plugin: open gpuseg outputs and OME-Zarr images, paint scribbles, train, preview, predict."""
