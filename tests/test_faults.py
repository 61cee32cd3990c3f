"""Every failure inside a run ends, within a bound, as one line and exit 2 (130 for Ctrl-C), leaving what
was written resumable and what existed untouched: rerunning the same command gives the bytes of an
uninterrupted run.

Faults: a damaged input chunk met mid-run (threads and processes), a scheduler address where nothing
listens, the scheduler lost mid-run, workers of a LocalCluster dying again and again, Ctrl-C (threads and
a LocalCluster, sent to the whole process group as a terminal does), a disk that fills or a permission
lost on the output mid-run, and an error before any block is written (no empty unfinished output kept).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from gpuseg import filters, io
from gpuseg.engine import clients, cluster, outputs, plan
from gpuseg.errors import DeviceError, RunError
from tests.conftest import run_cli
from tests.killer import ROOT

SHAPE, CHUNK = (48, 48, 48), 16  # 27 chunks
FILTER = ["filter", "--sigma", "1", "--device", "cpu", "-q"]
BOUND_S = 90  # no fault may take longer than this to end a run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """An input volume (zstd-compressed uint8 chunks of 16³) and the bytes of an uninterrupted filter run."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(11)
    vol = rng.integers(0, 255, SHAPE, dtype=np.uint8)
    arr = io.create_array(folder / "in.zarr/raw", SHAPE, vol.dtype, (CHUNK,) * 3)
    arr[:] = vol
    filters.gaussian(folder / "in.zarr/raw", 1.0, output=folder / "ref.zarr/g", device="cpu", scheduler="synchronous")
    return folder / "in.zarr/raw", io.open_array(folder / "ref.zarr/g", mode="r")[:]


def _env():
    env = dict(os.environ)
    env.pop("GPU_DOUBLE_AUTOINSTALL", None)
    return env


def _start(args, *, kill=None, **kw):
    """The CLI (through tests/killer.py with ``kill`` = its options) in a process group of its own, with
    SIGINT handled as in a terminal even where this test runs with SIGINT ignored."""
    head = [sys.executable, "-m", "tests.killer", *kill] if kill else [sys.executable, "-m", "gpuseg"]
    return subprocess.Popen([*head, *map(str, args)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _finish(proc, timeout=BOUND_S):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the run did not end within {timeout} s; its stderr:\n{err}")
    return proc.returncode, err


def _cli(args, *, kill=None, timeout=BOUND_S):
    start = time.monotonic()
    rc, err = _finish(_start(args, kill=kill), timeout)
    return rc, err, time.monotonic() - start


def _one_line(rc, err, *, expect_rc=2, command="filter", says=()):
    """Exactly one stderr line, ``gpuseg COMMAND: error: …`` (or ``interrupted`` for 130), no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == expect_rc, (rc, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    prefix = f"gpuseg {command}: interrupted" if expect_rc == 130 else f"gpuseg {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    for text in says:
        assert text in lines[0], lines[0]
    return lines[0]


def _same_bytes(path, want):
    np.testing.assert_array_equal(io.open_array(path, mode="r")[:], want)
    leftovers = [p.name for p in Path(path).parent.glob(".*")]
    assert not leftovers, leftovers


def _marks(target):
    done = Path(outputs.partial_path(target)) / outputs.DONE_DIR
    return len(os.listdir(done)) if done.is_dir() else 0


def _wait_for_marks(proc, target, least=1, timeout=60):
    """Until ``least`` chunks of ``target`` are complete (the run is computing)."""
    deadline = time.monotonic() + timeout
    while _marks(target) < least:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it was interrupted: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no chunk was completed within {timeout} s")
        time.sleep(0.05)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- damaged input


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_a_damaged_input_chunk_met_mid_run_is_one_line_and_the_rerun_resumes(tmp_path, data, scheduler):
    src, want = data
    shutil.copytree(src.parent, tmp_path / "in.zarr")
    bad = tmp_path / "in.zarr/raw/0/c/2/1/2"  # the last chunks' blocks come late: others are done before
    intact = bad.read_bytes()
    bad.write_bytes(intact[: len(intact) // 3])  # truncated, as by a crash while copying
    target = tmp_path / "out.zarr/g"
    args = [*FILTER, "--scheduler", scheduler, "--workers", "2", tmp_path / "in.zarr/raw", target]
    rc, err, took = _cli(args)
    _one_line(rc, err, says=[os.path.join("in.zarr", "raw", "0", "c", "2", "1", "2"), "chunk (2, 1, 2)",
                             "re-ingest or restore it"])
    assert not (tmp_path / "out.zarr/g").exists()  # its unfinished output is there if a block was done
    assert bad.read_bytes() == intact[: len(intact) // 3]  # the input is not touched
    bad.write_bytes(intact)  # restored
    rc, err, _ = _cli(args)
    assert rc == 0, err
    _same_bytes(target, want)


def test_an_input_chunk_that_may_not_be_read_is_one_line(tmp_path, data, monkeypatch, capsys):
    """A chunk file whose permission was taken away (simulated: this test may run as root)."""
    import zarr.storage._local as local

    src, want = data
    get = local._get

    def denied(path, *a, **kw):
        if str(path).endswith(os.path.join("raw", "0", "c", "1", "2", "0")):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return get(path, *a, **kw)

    monkeypatch.setattr(local, "_get", denied)
    target = tmp_path / "out.zarr/g"
    rc = run_cli(*FILTER, "--scheduler", "threads", "--workers", "2", src, target)
    _one_line(rc, capsys.readouterr().err, says=["chunk (1, 2, 0)", "Permission denied", "give read access"])
    monkeypatch.setattr(local, "_get", get)
    assert run_cli(*FILTER, "--scheduler", "threads", "--workers", "2", src, target) == 0
    _same_bytes(target, want)


# --------------------------------------------------------------------------- schedulers


def test_a_scheduler_address_where_nothing_listens_is_one_line_at_once(tmp_path, data):
    src, _ = data
    address = f"tcp://127.0.0.1:{_free_port()}"
    rc, err, took = _cli([*FILTER, "--scheduler", address, src, tmp_path / "out.zarr/g"])
    _one_line(rc, err, says=[address, "dask scheduler"])
    assert took < 8, took  # distributed alone retries for its connect timeout
    assert not (tmp_path / "out.zarr").exists()  # nothing is left behind


def _dask_cluster(port, folder):
    """``dask scheduler`` and one ``dask worker`` (two threads) on ``port``, started in this repository."""
    log = open(folder / f"dask-{port}.log", "a")  # noqa: SIM115 - closed with the processes
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], cwd=ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or scheduler.poll() is not None:
                scheduler.kill()
                pytest.fail(f"dask scheduler did not start: {(folder / f'dask-{port}.log').read_text()}")
            time.sleep(0.1)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                               "--nworkers", "1", "--nthreads", "2", "--no-dashboard",
                               "--local-directory", str(folder / "dask-worker-space")],
                              cwd=ROOT, stdout=log, stderr=log)
    return scheduler, worker, log


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def test_the_scheduler_lost_mid_run_is_one_line_and_the_rerun_resumes(tmp_path, data):
    src, want = data
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    target = tmp_path / "out.zarr/g"
    args = [*FILTER, "--scheduler", address, src, target]
    scheduler, worker, log = _dask_cluster(port, tmp_path)
    try:
        proc = _start(args, kill=["block:marked", "1", "--one-block-per-chunk", "--in-workers", "--pause", "0.3"])
        _wait_for_marks(proc, target)
        scheduler.kill()  # as by a crash or an operator
        lost = time.monotonic()
        rc, err = _finish(proc)
        assert time.monotonic() - lost < 60
        _one_line(rc, err, says=["lost the dask scheduler", address, "rerun the same command"])
        assert _marks(target) >= 1  # kept, to be resumed
        _stop(worker)
        scheduler, worker, _ = _dask_cluster(port, tmp_path)
        rc, err, _ = _cli(args)
        assert rc == 0 and not err.strip(), err
        _same_bytes(target, want)
    finally:
        _stop(scheduler, worker)
        log.close()


def test_workers_dying_again_and_again_end_the_run_with_one_line(tmp_path, data):
    """Each worker process of a LocalCluster dies at its first written block (as an out-of-memory kill would)."""
    src, want = data
    target = tmp_path / "out.zarr/g"
    args = [*FILTER, "--scheduler", "local", "--workers", "2", src, target]
    rc, err, took = _cli(args, kill=["block:written", "1", "--one-block-per-chunk", "--in-workers"])
    _one_line(rc, err, says=["kept dying", "rerun the same command"])
    rc, err, _ = _cli(args)
    assert rc == 0 and not err.strip(), err  # -q: nothing of the cluster's logs, no dashboard address
    _same_bytes(target, want)


def test_a_cluster_left_without_workers_ends_the_run(monkeypatch):
    """A scheduler whose workers are all gone (a remote scheduler's own no-workers timeout is not ours to set):
    the run ends with one RunError once it has had none for ``NO_WORKERS_S``."""
    import dask
    from distributed import Client, LocalCluster

    monkeypatch.setattr(clients, "WATCH_S", 0.2)
    monkeypatch.setattr(clients, "NO_WORKERS_S", 1.0)
    pool = ThreadPoolExecutor(1)  # the run is awaited with a bound: a hang fails the test
    try:
        with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as lc, Client(lc) as client:
            session = cluster.Session("tcp://sched:8786", None, client)
            running = pool.submit(session.compute, [dask.delayed(time.sleep, pure=False)(0.1) for _ in range(4)])
            with pytest.raises(RunError, match="no workers for 1 s"):
                running.result(timeout=15)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("scheduler", ["threads", "local"])
def test_ctrl_c_mid_run_stops_at_once_and_the_rerun_resumes(tmp_path, data, scheduler):
    """SIGINT to the whole process group (a terminal's Ctrl-C: the local cluster's workers get it too)."""
    src, want = data
    target = tmp_path / "out.zarr/g"
    args = [*FILTER, "--scheduler", scheduler, "--workers", "2", src, target]
    slow = ["block:marked", "1", "--one-block-per-chunk", "--pause", "0.4"]
    proc = _start(args, kill=slow + (["--in-workers"] if scheduler == "local" else []))
    _wait_for_marks(proc, target)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    rc, err = _finish(proc, timeout=30)
    assert time.monotonic() - sent < 15
    _one_line(rc, err, expect_rc=130, says=["rerun the same command to resume"])
    assert _marks(target) >= 1
    rc, err, _ = _cli(args)
    assert rc == 0 and not err.strip(), err
    _same_bytes(target, want)


# --------------------------------------------------------------------------- the output's disk


@pytest.mark.parametrize(("code", "says"), [(errno.ENOSPC, "disk full writing"),
                                            (errno.EACCES, "permission to write was lost")])
def test_a_full_disk_or_lost_permission_mid_run_keeps_the_old_output_and_resumes(tmp_path, data, monkeypatch,
                                                                                   capsys, code, says):
    """The store's writes fail (as on a full disk) after some chunks: one line; the existing output is
    untouched; what was completed is resumed."""
    import zarr.storage._local as local

    src, want = data
    target = tmp_path / "out.zarr/g"
    assert run_cli(*FILTER[:2], "2", *FILTER[3:], src, target) == 0  # an older output, to be replaced
    old = io.open_array(target, mode="r")[:]
    put, written = local._put, []

    def failing(path, value, *a, **kw):
        if ".partial.zarr" in str(path) and "/c/" in str(path):
            if len(written) >= 6:
                raise OSError(code, os.strerror(code), str(path))
            written.append(path)
        return put(path, value, *a, **kw)

    monkeypatch.setattr(plan, "HOST_BLOCK_BYTES", 1)  # blocks of one chunk: six of them are complete
    monkeypatch.setattr(local, "_put", failing)
    args = [*FILTER, "--overwrite", "--scheduler", "threads", "--workers", "2", src, target]
    capsys.readouterr()
    rc = run_cli(*args)
    _one_line(rc, capsys.readouterr().err, says=[says, str(target), "rerun the same command"])
    np.testing.assert_array_equal(io.open_array(target, mode="r")[:], old)  # nothing existing lost
    assert _marks(target) >= 1
    monkeypatch.setattr(local, "_put", put)
    assert run_cli(*args) == 0
    _same_bytes(target, want)


def test_a_full_disk_while_copying_a_tiff_input_is_one_line(tmp_path, data, monkeypatch, capsys):
    """A large TIFF input is first copied to zarr beside the output: a disk that fills then is one line too."""
    import tifffile
    import zarr.storage._local as local

    from gpuseg.engine import staging

    monkeypatch.setattr(staging, "IN_MEMORY_MAX_BYTES", 0)  # as an input too large to read into memory
    src, want = data
    tifffile.imwrite(tmp_path / "scan.tif", io.open_array(src, mode="r")[:])
    put = local._put

    def full(path, value, *a, **kw):
        if ".input.zarr" in str(path) and "/c/" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return put(path, value, *a, **kw)

    monkeypatch.setattr(local, "_put", full)
    target = tmp_path / "out.zarr/g"
    args = [*FILTER, "--scheduler", "threads", tmp_path / "scan.tif", target]
    rc = run_cli(*args)
    _one_line(rc, capsys.readouterr().err, says=["disk full writing", ".g.input.zarr", "rerun the same command"])
    monkeypatch.setattr(local, "_put", put)
    assert run_cli(*args) == 0
    _same_bytes(target, want)


# --------------------------------------------------------------------------- nothing done, nothing kept


def test_an_error_before_any_block_keeps_no_empty_unfinished_output(tmp_path, data, monkeypatch):
    src, _ = data
    target = tmp_path / "out.zarr/g"

    def lost(self, tasks, **kw):
        raise RunError("lost the dask scheduler")

    monkeypatch.setattr(cluster.Session, "compute", lost)
    with pytest.raises(RunError):
        filters.gaussian(src, 1.0, output=target, device="cpu")
    assert not Path(outputs.partial_path(target)).exists()

    def no_device(self, device):
        raise DeviceError("no GPU")

    monkeypatch.setattr(cluster.Session, "placement", no_device)
    with pytest.raises(DeviceError):
        filters.gaussian(src, 1.0, output=target, device="cpu")
    assert not Path(outputs.partial_path(target)).exists() and not outputs.exists(target)
