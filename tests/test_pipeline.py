"""The whole pipeline, as a user runs it, gives the same bytes on one thread and on a 2-process cluster."""

import json
from pathlib import Path

import numpy as np
import pytest

from gpuseg import io
from tests.conftest import run_cli


def pipeline(work: Path, *scheduler: str) -> None:
    store = work / "p.zarr"
    compute = [*scheduler, "--chunks", "16", "-q"]
    assert run_cli("phantom", store, "--preset", "nmc-1", "--shape", "40", "40", "40", "--seed", "3", *compute) == 0
    assert run_cli("filter", f"{store}/raw", f"{store}/smooth", "--sigma", "1.0", "--device", "cpu", *compute) == 0
    assert run_cli("segment", "otsu", f"{store}/smooth", f"{store}/otsu", *compute) == 0
    assert run_cli("segment", "watershed", f"{store}/raw", f"{store}/ws", "--low", "110", "--high", "150", *compute) == 0
    two_phase = np.where(io.open_array(f"{store}/truth")[:] == 1, 1, 2).astype(np.uint8)  # active / non-active
    io.create_array(f"{store}/truth2", two_phase.shape, np.uint8, (16, 16, 16))[:] = two_phase
    scribbles = np.zeros_like(two_phase)
    scribbles[20, ::3, ::3] = two_phase[20, ::3, ::3]
    np.save(work / "scribbles.npy", scribbles)
    assert run_cli("train", f"{store}/raw", "--labels", work / "scribbles.npy", "--model", work / "forest.npz",
                   "--trees", "10", *compute) == 0
    assert run_cli("predict", f"{store}/raw", "--model", work / "forest.npz", f"{store}/forest",
                   "--probabilities", f"{store}/proba", *compute) == 0
    assert run_cli("compare", f"{store}/otsu", f"{store}/ws", f"{store}/forest", "--truth", f"{store}/truth2",
                   "--names", "otsu", "ws", "forest", "--json", work / "report.json", *scheduler, "-q") == 0


def chunk_bytes(store: Path) -> dict[str, bytes]:
    """Every chunk file of every array (metadata holds paths and command lines, which differ)."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("c/**/*")) if p.is_file()}


@pytest.mark.slow
def test_pipeline_on_a_local_cluster_equals_synchronous(tmp_path):
    pipeline(tmp_path / "sync", "--scheduler", "synchronous")
    pipeline(tmp_path / "cluster", "--scheduler", "local", "--workers", "2")
    a, b = chunk_bytes(tmp_path / "sync/p.zarr"), chunk_bytes(tmp_path / "cluster/p.zarr")
    assert {k.split("/")[0] for k in a} == {"raw", "truth", "truth2", "smooth", "otsu", "ws", "forest", "proba"}
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    forests = [np.load(tmp_path / d / "forest.npz") for d in ("sync", "cluster")]
    assert forests[0].files == forests[1].files
    assert all(np.array_equal(forests[0][k], forests[1][k]) for k in forests[0].files if k != "header")
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in ("sync", "cluster")]
    headers = [json.loads(f["header"].tobytes()) for f in forests]
    assert strip(headers[0], tmp_path / "sync", "sha256") == strip(headers[1], tmp_path / "cluster", "sha256")
    assert strip(reports[0], tmp_path / "sync") == strip(reports[1], tmp_path / "cluster")


def strip(record: dict, folder: Path, *drop: str) -> str:
    """A JSON record without the run's own folder in its paths (and without the ``drop`` keys)."""
    return json.dumps({k: v for k, v in record.items() if k not in drop}, sort_keys=True).replace(str(folder), "")
