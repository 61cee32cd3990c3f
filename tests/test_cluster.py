import os
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import blockwise, cluster, io
from gpuseg.errors import ParameterError


def smooth_or_die(block, *, flag: str):
    """Box filter; the first call anywhere kills its own worker process (like an OOM kill)."""
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return ndi.uniform_filter(block.astype(np.float32), 3)
    os.close(fd)
    os._exit(1)


def test_killed_worker_still_gives_complete_output(tmp_path):
    vol = np.random.default_rng(5).random((24, 24, 24), dtype=np.float32)
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (8, 8, 8))
    src[:] = vol
    flag = tmp_path / "killed-once"
    out = blockwise.run(
        smooth_or_die, [src], tmp_path / "v.zarr/out", shape=vol.shape, dtype=np.float32, halo=1,
        chunks=8, block_shape=(8, 8, 8), kwargs={"flag": str(flag)}, scheduler="local", workers=2,
    )
    assert flag.exists()  # a worker really died
    np.testing.assert_array_equal(out[:], ndi.uniform_filter(vol, 3))


def test_scheduler_names():
    assert cluster.check_scheduler(None) == "threads"
    assert cluster.check_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(ParameterError, match="unknown scheduler"):
        cluster.check_scheduler("slurm")
    with pytest.raises(ParameterError, match="at least 1"):
        cluster.compute([1], workers=0)
