import os

import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import io
from gpuseg.engine import Operation, Result, cluster, plan, process
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
    op = Operation("smooth or die", smooth_or_die, halo=1, results={"output": Result(np.float32)})
    out = process(op, {"flag": str(flag)}, tmp_path / "v.zarr/raw", tmp_path / "v.zarr/out", chunks=8,
                  block_shape=(8, 8, 8), scheduler="local", workers=2, device="cpu")
    assert flag.exists()  # a worker really died
    np.testing.assert_array_equal(io.open_array(out)[:], ndi.uniform_filter(vol, 3))


def test_scheduler_names():
    assert cluster.check_scheduler(None) == "threads"
    assert cluster.check_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(ParameterError, match="unknown scheduler"):
        cluster.check_scheduler("slurm")
    with pytest.raises(ParameterError, match=">= 1"):
        cluster.compute([1], workers=0)
    with pytest.raises(ParameterError, match="per core"):
        cluster.compute([1], workers=100 * cluster.default_workers())


def _smooth(block):
    return ndi.uniform_filter(block.astype(np.float32), 3)


def test_local_cuda_without_dask_cuda_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from tests.conftest import run_cli

    monkeypatch.setitem(__import__("sys").modules, "dask_cuda", None)  # import fails, as when not installed
    vol = np.random.default_rng(1).random((16, 16, 16), dtype=np.float32)
    io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (8, 8, 8))[:] = vol
    code = run_cli("filter", tmp_path / "v.zarr/raw", tmp_path / "v.zarr/smooth", "--sigma", "1", "--cluster", "local-cuda", "-q")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install dask-cuda" in err[0]
    assert not io.zarrio.exists(tmp_path / "v.zarr/smooth")


def test_local_cuda_starts_dask_cudas_cluster(tmp_path, monkeypatch):
    """With dask-cuda present, ``local-cuda`` runs on its LocalCUDACluster (stood in for by a LocalCluster)."""
    import sys
    import types

    from distributed import LocalCluster

    made = []

    def fake_cluster(n_workers=None, threads_per_worker=1, dashboard_address=None):
        made.append((n_workers, threads_per_worker))
        return LocalCluster(n_workers=n_workers or 1, threads_per_worker=threads_per_worker, processes=False,
                            dashboard_address=dashboard_address)

    monkeypatch.setitem(sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=fake_cluster))
    vol = np.random.default_rng(2).random((24, 24, 24), dtype=np.float32)
    src = io.create_array(tmp_path / "v.zarr/raw", vol.shape, vol.dtype, (8, 8, 8))
    src[:] = vol
    op = Operation("smooth", _smooth, halo=1, results={"output": Result(np.float32)})
    out = process(op, {}, tmp_path / "v.zarr/raw", tmp_path / "v.zarr/out", chunks=8, block_shape=(8, 8, 8),
                  scheduler="local-cuda", workers=1, device="cpu")
    assert made == [(1, 2 * plan.IN_FLIGHT)]
    np.testing.assert_array_equal(io.open_array(out)[:], ndi.uniform_filter(vol, 3))


class _Workers:
    """A stand-in distributed client: what ``client.run`` would collect from each worker."""

    def __init__(self, reports):
        self.reports = reports

    def run(self, func):
        return {f"tcp://w{i}": r for i, r in enumerate(self.reports)}

    def nthreads(self):
        return {f"tcp://w{i}": 6 for i in range(len(self.reports))}


def _report(ok=True, free=8 * 2**30, host="node1", gpu="0000:01:00.0", why=""):
    return {"ok": ok, "why": why, "free": free, "host": host, "gpu": gpu}


def test_placement_is_decided_where_the_work_runs():
    from gpuseg.errors import DeviceError

    # a login node without a GPU driving GPU workers: the workers' GPUs count, not the client's
    session = cluster.Session("tcp://sched:8786", None, _Workers([_report(), _report(gpu="0000:02:00.0")]))
    place = session.placement("gpu")
    assert (place.device, place.free_device_memory, place.sharing) == ("gpu", 8 * 2**30, 1)
    assert session.placement("auto").device == "gpu"
    # four worker processes on one GPU share its memory
    shared = cluster.Session("tcp://sched:8786", None, _Workers([_report(free=2**30 * (i + 2)) for i in range(4)]))
    assert shared.placement("auto").sharing == 4 and shared.placement("auto").free_device_memory == 2 * 2**30
    # a worker without a GPU: auto falls back to the CPU everywhere, gpu is one clear error
    broken = cluster.Session("tcp://sched:8786", None, _Workers([_report(), _report(ok=False, why="no CUDA device")]))
    assert broken.placement("auto").device == "cpu"
    with pytest.raises(DeviceError, match="no CUDA device"):
        broken.placement("gpu")
    assert broken.placement("cpu").device == "cpu"
