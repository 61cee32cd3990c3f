"""``gpuseg bench``: the records are consistent, the outputs it keeps agree with numpy / scikit-image,
the plot is a PNG, bad input exits 2 with one line, and the phase clock classifies real dask tasks."""

import contextlib
import io as textio
import json
import math

import numpy as np
import pytest

from gpuseg import backend, io
from gpuseg.bench import measure, pipeline, references, suite
from tests.conftest import run_cli

SIZE = 32
ARGS = ("--sizes", str(SIZE), "--trees", "5", "--chunks", "16", "--workers", "2")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One full CPU run at 32³ (chunks 16³, so every stage has several blocks), data kept."""
    tmp = tmp_path_factory.mktemp("bench")
    out, err = textio.StringIO(), textio.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli("bench", *ARGS, "--device", "cpu", "--workdir", tmp / "work", "--keep",
                       "--json", tmp / "r.json", "--plot", tmp / "r.png")
    assert code == 0, err.getvalue()
    result = json.loads((tmp / "r.json").read_text())
    return {"result": result, "work": tmp / "work" / f"s{SIZE}", "tmp": tmp, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _record(result, stage, device="cpu"):
    (r,) = [r for r in result["results"] if r["stage"] == stage and r["device"] == device]
    return r


def test_json_schema_and_consistency(bench_run):
    result = bench_run["result"]
    for key in ("gpuseg_version", "date", "command", "machine", "parameters", "setup", "results"):
        assert key in result
    assert result["machine"]["cores"] >= 1 and result["parameters"]["devices"] == ["cpu"]
    assert [(r["stage"], r["device"]) for r in result["results"]] == [(s, "cpu") for s in pipeline.STAGES]
    for r in result["results"]:
        assert "error" not in r, r
        assert r["size"] == SIZE and r["voxels"] == SIZE**3
        assert r["seconds"] > 0 and math.isclose(r["voxels_per_s"], r["voxels"] / r["seconds"], rel_tol=1e-12)
        assert r["peak_rss_bytes"] > 0 and r["peak_gpu_bytes"] is None
        if r["shares"] is None:
            assert r["shares_note"]  # a reason, never a silent gap
        else:
            assert set(r["shares"]) == {"io", "compute", "transfer"}
            assert abs(sum(r["shares"].values()) - 1) < 1e-6 and min(r["shares"].values()) >= 0
        ref = r["reference"]
        if "seconds" in ref:
            assert ref["peak_rss_bytes"] > 0
            assert math.isclose(ref["voxels_per_s"], r["voxels"] / ref["seconds"], rel_tol=1e-12)
            assert math.isclose(r["ratio"], r["voxels_per_s"] / ref["voxels_per_s"], rel_tol=1e-12)
        else:
            assert ref["skipped"] and r["ratio"] is None
    # blockwise stages split their time into phases; ingest is all I/O; training says why it is not split
    for stage in ("filter", "watershed", "rf-predict", "compare"):
        assert _record(result, stage)["shares"] is not None
    assert _record(result, "filter")["blocks"] > 1  # chunks of 16³: the engine split the work
    assert _record(result, "ingest")["shares"] == {"io": 1.0, "compute": 0.0, "transfer": 0.0}
    assert _record(result, "rf-train")["shares"] is None and "rf-train" not in references.NAMES
    for stage in references.NAMES:  # 32³ fits everywhere: every reference was measured
        assert "seconds" in _record(result, stage)["reference"], stage


def test_progress_lines_and_table(bench_run):
    lines = [line for line in bench_run["stderr"].splitlines() if line.startswith(f"bench {SIZE}³")]
    assert len(lines) == 1 + len(pipeline.STAGES)  # setup, then one per finished stage
    table = bench_run["stdout"]
    for stage in pipeline.STAGES:
        assert f"| {stage}" in table


def test_compare_accuracy_equals_numpy_on_kept_outputs(bench_run):
    work, r = bench_run["work"], _record(bench_run["result"], "compare")
    truth = io.open_array(work / "phantom.zarr/truth")[:]
    t = np.where(truth > 1, 2, truth)
    for name, folder in (("otsu", "otsu"), ("watershed", "watershed"), ("rf", "rf")):
        seg = io.open_array(work / f"cpu/{folder}.zarr/labels")[:]
        s = np.where(seg > 1, 2, seg)
        expected = np.count_nonzero((s == t) & (t != 0)) / np.count_nonzero(t)
        assert r["extra"]["accuracy"][name] == pytest.approx(expected, abs=1e-12)
        assert 0.5 < expected <= 1.0  # a segmentation, not noise
    assert r["check"] == {"what": "accuracy", "gpuseg": r["extra"]["accuracy"],
                          "reference": r["reference"]["extra"]["accuracy"], "equal": True}


def test_otsu_threshold_equals_skimage_on_filtered(bench_run):
    from skimage.filters import threshold_otsu

    work, r = bench_run["work"], _record(bench_run["result"], "otsu")
    filtered = io.open_array(work / "cpu/filtered.zarr/data")[:]
    assert filtered.dtype == np.float32
    assert r["extra"]["threshold"] == float(threshold_otsu(filtered))
    labels = io.open_array(work / "cpu/otsu.zarr/labels")[:]
    np.testing.assert_array_equal(labels, np.where(filtered > r["extra"]["threshold"], 1, 2))
    low, high = _record(bench_run["result"], "watershed")["extra"]["window"]
    assert low < r["extra"]["threshold"] < high


def test_filter_output_equals_scipy(bench_run):
    import scipy.ndimage as ndi

    work = bench_run["work"]
    raw = io.open_array(work / "ingested.zarr/raw")[:]
    np.testing.assert_array_equal(raw, io.open_array(work / "phantom.zarr/raw")[:])  # ingest copied the slices exactly
    expected = ndi.gaussian_filter(raw.astype(np.float32), 1.0, mode="reflect")
    np.testing.assert_allclose(io.open_array(work / "cpu/filtered.zarr/data")[:], expected, rtol=1e-5, atol=1e-4)


def test_plot_is_png(bench_run):
    data = (bench_run["tmp"] / "r.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_stage_subset_runs_dependencies_and_skips_big_references(tmp_path, monkeypatch):
    monkeypatch.setattr(references, "MEMORY_SHARE", 0.0)  # no reference "fits": every one is skipped with its reason
    result = suite.run([SIZE], ["filter"], ["cpu"], chunks=16, workers=1, workdir=tmp_path, say=lambda line: None)
    assert [(r["stage"], r["requested"]) for r in result["results"]] == [("ingest", False), ("filter", True)]
    for r in result["results"]:
        assert "GiB available" in r["reference"]["skipped"] and r["ratio"] is None
    assert list(tmp_path.iterdir()) == []  # the data were removed (no keep)


def _error_lines(text):
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("argv, needle", [
    (("--sizes", "16"), "--sizes '16'"),
    (("--sizes", "abc"), "--sizes 'abc'"),
    (("--sizes", "64", "0"), "--sizes '0'"),
    (("--stages", "segment"), "unknown stage 'segment'"),
    (("--device", "tpu"), "--device 'tpu'"),
    (("--trees", "0"), "--trees '0'"),
    (("--preset", "nope"), "--preset 'nope'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    code = run_cli("bench", "--sizes", "32", *argv, "--json", tmp_path / "r.json", "--plot", tmp_path / "r.png",
                   "--workdir", tmp_path / "w", "-q")
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and needle in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_existing_output_needs_overwrite(tmp_path, capsys, option):
    existing = tmp_path / "exists"
    existing.write_text("keep me")
    code = run_cli("bench", "--sizes", "32", option, existing, "--workdir", tmp_path / "w", "-q")
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--overwrite" in lines[0]
    assert existing.read_text() == "keep me" and not (tmp_path / "w").exists()


@pytest.mark.parametrize("device", ["gpu", "both"], ids=["device-gpu", "device-both"])
def test_gpu_asked_without_gpu_exits_2(tmp_path, capsys, monkeypatch, device):
    monkeypatch.setattr(backend, "gpu_status", lambda: (False, "no CUDA device found"))
    code = run_cli("bench", "--sizes", "32", "--device", device, "--json", tmp_path / "r.json", "--workdir", tmp_path / "w")
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"--device {device}" in lines[0] and "--device cpu" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_task_phases_split_reads_from_compute():
    """The clock's task classes match the task names of the installed dask: chunk reads vs reductions."""
    import dask.array as da
    import zarr

    from gpuseg import metrics
    from gpuseg.segment import threshold

    store = zarr.create_array(zarr.storage.MemoryStore(), shape=(16, 16, 16), chunks=(8, 8, 8), dtype="u1")
    store[:] = np.random.default_rng(0).integers(1, 3, (16, 16, 16), dtype=np.uint8)
    x = da.from_zarr(store)
    with measure.task_phases() as totals:
        report = metrics.compare([x], x, scheduler="threads")
    assert report["segmentations"][0]["accuracy"] == 1.0
    assert totals["read"] > 0 and totals["compute"] > 0 and totals["unsplit"] == 0 and totals["tasks"] >= 16
    floats = da.from_zarr(zarr.create_array(zarr.storage.MemoryStore(), shape=(16, 16, 16), chunks=(8, 8, 8), dtype="f4"))
    with measure.task_phases() as totals:
        threshold.histogram(floats + 1, scheduler="threads")  # min/max: dask fuses the read into the reduction
    assert totals["unsplit"] > 0


def test_shares_of_reports_reasons():
    phases = {"read": 1.0, "to_device": 0.5, "compute": 2.0, "to_host": 0.5, "write": 0.0, "unsplit": 0.0}
    shares, note = suite.shares_of({"phase_seconds": phases})
    assert shares == {"io": 0.25, "transfer": 0.25, "compute": 0.5} and note
    shares, note = suite.shares_of({"phase_seconds": {**phases, "unsplit": 1.0}})
    assert shares is None and "task time" in note
    shares, note = suite.shares_of({"phase_seconds": dict.fromkeys(phases, 0.0)})
    assert shares is None and "no block or task time" in note


@pytest.mark.gpu
def test_device_both_reports_gpu_rows(tmp_path):
    result = suite.run([SIZE], pipeline.STAGES, ["cpu", "gpu"], trees=5, chunks=16, workdir=tmp_path, keep=True,
                       say=lambda line: None)
    gpu_rows = [r for r in result["results"] if r["device"] == "gpu"]
    assert [r["stage"] for r in gpu_rows] == [s for s in pipeline.STAGES if s not in pipeline.HOST_ONLY]
    for r in gpu_rows:
        assert "error" not in r, r
        assert r["peak_gpu_bytes"] > 0 and r["peak_rss_bytes"] > 0
    cpu_otsu, gpu_otsu = _record(result, "otsu", "cpu"), _record(result, "otsu", "gpu")
    assert gpu_otsu["extra"]["threshold"] == pytest.approx(cpu_otsu["extra"]["threshold"], rel=1e-5)
    cpu_acc, gpu_acc = _record(result, "compare", "cpu")["extra"]["accuracy"], _record(result, "compare", "gpu")["extra"]["accuracy"]
    assert gpu_acc["otsu"] == pytest.approx(cpu_acc["otsu"], abs=1e-3)


def test_failed_stage_is_recorded_and_its_dependents_not_run(tmp_path):
    result = suite.run([SIZE], ["rf-predict"], ["cpu"], features="no-such-feature:1", trees=2, chunks=16, workers=1,
                       workdir=tmp_path, say=lambda line: None)
    by_stage = {r["stage"]: r for r in result["results"]}
    assert list(by_stage) == ["ingest", "rf-train", "rf-predict"]
    assert "error" not in by_stage["ingest"]
    assert "no-such-feature" in by_stage["rf-train"]["error"]
    assert by_stage["rf-predict"]["error"] == "not run: needs rf-train, which failed"
