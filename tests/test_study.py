"""``gpuseg study``: simulated users, their protocols, determinism, resuming, bad input.

Small phantoms (24³) and tiny forests keep the whole file near half a minute on two cores.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from gpuseg import io, phantom
from gpuseg.engine import faults
from gpuseg.errors import ParameterError
from gpuseg.io import ome
from gpuseg.study import active_fraction_interval, html, parse_protocols, run_study
from gpuseg.study import protocols as pr
from gpuseg.study.annotator import Annotator, own_judgement
from gpuseg.study.report import COLUMNS
from gpuseg.study.users import ThresholdUser, User, valley
from tests import killer
from tests.conftest import one_line_error, run_cli

SHAPE = (24, 24, 24)
ROOT = Path(__file__).resolve().parents[1]
FAST = {"features": "gaussian:1.0,gaussian:1.6", "trees": 3, "device": "cpu", "figures": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A phantom with its truth, a truth of random labels, a truth of another shape and one without active material."""
    folder = tmp_path_factory.mktemp("study")
    raw, truth = phantom.make("nmc-2", SHAPE, seed=3)
    rng = np.random.default_rng(0)
    arrays = {"raw": raw, "truth": truth, "random": rng.integers(1, 4, SHAPE).astype(np.uint8),
              "no-active": np.where(truth == 1, 2, truth).astype(np.uint8), "small": truth[:20]}
    for name, values in arrays.items():
        io.create_array(folder / f"in.zarr/{name}", values.shape, values.dtype, (12, 12, 12))[:] = values
    return {name: str(folder / f"in.zarr/{name}") for name in arrays} | {"truth-array": truth}


def _segmentations(outdir: Path) -> dict[str, np.ndarray]:
    found = sorted((outdir / "segmentations").glob("*/*/*.zarr"))
    assert found
    return {str(p.relative_to(outdir)): io.open_array(p, mode="r")[:] for p in found}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the users


def test_a_threshold_user_reads_the_valley_with_their_own_bias():
    x = np.arange(256)
    counts = (1e4 * (np.exp(-((x - 70.0) ** 2) / 300) + 0.6 * np.exp(-((x - 170.0) ** 2) / 300))).astype(np.int64)
    assert abs(valley(counts, x) - (70 + np.argmin(counts[70:171]))) <= 2  # the lowest point between the modes
    chosen = [User.draw(5, i).threshold.choose(counts, x, "raw") for i in range(20)]
    assert all(float(c).is_integer() for c in chosen)  # grey levels of an 8-bit axis
    assert 2 <= np.std(chosen) <= 15 and abs(np.mean(chosen) - valley(counts, x)) < 8  # people scatter around it
    assert ThresholdUser(0, 0, bias=0.1, scatter=0.0).choose(counts, x) > ThresholdUser(0, 0, 0.0, 0.0).choose(counts, x)


def test_annotators_paint_strokes_away_from_boundaries_up_to_the_coverage():
    judgement = np.where(ndi.gaussian_filter(np.random.default_rng(1).random((96, 96)), 4) > 0.5, 1, 2).astype(np.uint8)
    person = Annotator(0, 0, radius=3, margin=2, length=20, wiggle=0.1, mislabel=0.0)
    stroke = person.paint(judgement, 0.15, stream="test")
    painted = stroke.labels > 0
    assert stroke.coverage == pytest.approx(0.15, abs=1 / judgement.size)
    assert np.array_equal(stroke.labels[painted], judgement[painted])  # no mislabels at a rate of 0
    for c in (1, 2):  # every painted pixel keeps the margin from the other phase
        assert ndi.distance_transform_edt(judgement == c)[stroke.labels == c].min() > person.margin
    # strokes, not scattered voxels: few connected pieces, each many pixels
    pieces, n = ndi.label(painted)
    assert n < stroke.strokes and np.bincount(pieces.ravel())[1:].min() >= 2 * person.radius + 1
    # corrections start and run only where the prediction is wrong (the brush reaching its radius beyond)
    wrong = np.zeros_like(painted)
    wrong[:, :40] = True
    fix = person.paint(judgement, 0.15, wrong=wrong, stream="fix")
    assert (fix.labels > 0).any() and not (fix.labels[:, 40 + person.radius + 1 :] > 0).any()
    # a mislabel rate paints some strokes with the other class; the same stream paints the same strokes
    sloppy = Annotator(0, 0, radius=3, margin=2, length=20, wiggle=0.1, mislabel=0.5).paint(judgement, 0.3, stream="s")
    assert sloppy.mislabelled > 0 and (sloppy.labels[sloppy.labels > 0] != judgement[sloppy.labels > 0]).any()
    again = Annotator(0, 0, radius=3, margin=2, length=20, wiggle=0.1, mislabel=0.5).paint(judgement, 0.3, stream="s")
    assert np.array_equal(sloppy.labels, again.labels)


def test_protocol_names():
    assert [p.name for p in parse_protocols("S, cWS,ML3,MLX65,S2")] == ["S1", "S2", "S3", "cWS", "ML3", "MLX65"]
    assert parse_protocols("MLX100")[0].coverage == 1.0
    for bad, words in [("MLX0", "coverage"), ("MLX150", "coverage"), ("ML4", "unknown protocol"), ("", "no protocol")]:
        with pytest.raises(ParameterError, match=words):
            parse_protocols(bad)


# --------------------------------------------------------------------------- the truth stays unread


def test_threshold_watershed_and_seed_users_never_read_the_truth(tmp_path, data):
    """With a truth of random labels their segmentations are the same bytes; only the scores change."""
    runs = {}
    for name in ("truth", "random"):
        runs[name] = run_study(data["raw"], tmp_path / name, truth=data[name], protocols="S,gWS,cWS,ML1", users=2,
                               seed=4, variants=["raw"], scheduler="synchronous", **FAST)
    real, fake = (_segmentations(tmp_path / n) for n in ("truth", "random"))
    assert real.keys() == fake.keys() and len(real) == 12
    for key in real:
        np.testing.assert_array_equal(real[key], fake[key], err_msg=key)
    assert [u["decisions"] for u in runs["truth"]["users"]] == [u["decisions"] for u in runs["random"]["users"]]
    good = [u["accuracy"] for r in runs["truth"]["results"] for u in r["users"]]
    chance = [u["accuracy"] for r in runs["random"]["results"] for u in r["users"]]
    assert min(good) > 0.7 and max(chance) < 0.6  # the truth was used, to score them (chance: about 0.5)


# --------------------------------------------------------------------------- determinism and resuming


def test_same_seed_same_bytes_on_any_scheduler_and_worker_count(tmp_path, data):
    kw = {"truth": data["truth"], "protocols": "S2,MLX25", "users": 2, "seed": 11, **FAST}
    one = run_study(data["raw"], tmp_path / "sync", scheduler="synchronous", **kw)
    two = run_study(data["raw"], tmp_path / "threads", scheduler="threads", workers=2, **kw)
    assert one == two
    assert (tmp_path / "sync/study.json").read_bytes() == (tmp_path / "threads/study.json").read_bytes()
    assert (tmp_path / "sync/study.csv").read_bytes() == (tmp_path / "threads/study.csv").read_bytes()
    a, b = _segmentations(tmp_path / "sync"), _segmentations(tmp_path / "threads")
    assert a.keys() == b.keys() and len(a) == 8
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the users differ from each other, and another seed gives other users: the test could fail
    assert a["segmentations/raw/MLX25/u1.zarr"].tolist() != a["segmentations/raw/MLX25/u2.zarr"].tolist()
    other = run_study(data["raw"], tmp_path / "seed", scheduler="synchronous", **{**kw, "seed": 12, "protocols": "S2"})
    assert [u["decisions"] for u in other["users"]] != [u["decisions"] for u in one["users"]]


def test_same_bytes_on_a_two_worker_local_cluster(tmp_path, data):
    distributed = pytest.importorskip("distributed")
    kw = {"protocols": "S2,gWS", "users": 2, "seed": 2, "variants": ["raw"], **FAST}
    ref = run_study(data["raw"], tmp_path / "sync", scheduler="synchronous", **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
        got = run_study(data["raw"], tmp_path / "cluster", scheduler=lc.scheduler_address, workers=2, **kw)
    assert got == ref
    a, b = _segmentations(tmp_path / "sync"), _segmentations(tmp_path / "cluster")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_killed_study_resumes_to_the_same_report(tmp_path, data):
    """First a real kill (the process exits mid-run, leaving whatever it held), then kills inside this process at
    random moments; every rerun goes on from where the last stopped, to the bytes of an uninterrupted study."""
    kw = {"truth": data["truth"], "protocols": "S3,ML1,MLX10", "users": 2, "seed": 5, "variants": ["raw"], **FAST}
    run_study(data["raw"], tmp_path / "ref", scheduler="synchronous", **kw)
    argv = ["study", data["raw"], tmp_path / "killed", "--truth", data["truth"], "--protocols", kw["protocols"],
            "--users", "2", "--seed", "5", "--raw-only", "--features", FAST["features"], "--trees", "3", "--device", "cpu",
            "--no-figures", "--scheduler", "synchronous", "-q"]
    died = subprocess.run([sys.executable, "-m", "tests.killer", "block:marked", "6", *map(str, argv)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert died.returncode == 137, died.stderr
    assert (tmp_path / "killed/gpuseg-study.json").exists() and not (tmp_path / "killed/study.json").exists()
    rng = np.random.default_rng(7)
    kills, done = 0, False
    try:
        while not done:
            killer.arm(str(rng.choice(["block:written", "block:marked", "commit:start"])), int(rng.integers(2, 6)))
            try:
                run_study(data["raw"], tmp_path / "killed", scheduler="synchronous", **kw)
                done = True
            except killer.Killed:
                kills += 1
    finally:
        faults.hook = None
    assert kills >= 3  # killed in the middle several times, each rerun going further
    assert (tmp_path / "killed/study.json").read_bytes() == (tmp_path / "ref/study.json").read_bytes()
    assert (tmp_path / "killed/study.csv").read_bytes() == (tmp_path / "ref/study.csv").read_bytes()
    a, b = _segmentations(tmp_path / "ref"), _segmentations(tmp_path / "killed")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not [p.name for p in (tmp_path / "killed").rglob(".*")]  # no partial output, lock or staged file left
    # a study made before probabilities were kept: on resume only that chain predicts again, to the same bytes
    kept = tmp_path / "killed/work/raw/ML1/u1" / pr.PROBABILITIES
    before = _snapshot(kept)
    segmentations = _snapshot(tmp_path / "killed/segmentations")
    shutil.rmtree(kept)
    run_study(data["raw"], tmp_path / "killed", scheduler="synchronous", **kw)
    assert _snapshot(kept).keys() == before.keys() and _snapshot(tmp_path / "killed/segmentations") == segmentations
    np.testing.assert_array_equal(io.open_array(kept)[:], io.open_array(tmp_path / "ref/work/raw/ML1/u1" / pr.PROBABILITIES)[:])
    assert (tmp_path / "killed/study.json").read_bytes() == (tmp_path / "ref/study.json").read_bytes()
    assert not [p.name for p in (tmp_path / "killed").rglob(".*")]


def test_forest_users_report_an_interval_and_mlx_its_central_slice_result(tmp_path, data):
    out = tmp_path / "out"
    report = run_study(data["raw"], out, truth=data["truth"], protocols="S2,ML1,MLX25", users=3, seed=6,
                       variants=["raw"], scheduler="synchronous", **FAST)
    truth = float(np.mean(data["truth-array"] == 1))
    rows = list(csv.DictReader((out / "study.csv").read_text().splitlines()))
    assert tuple(rows[0]) == COLUMNS
    for res in report["results"]:
        work = out / "work/raw" / res["protocol"]
        if res["protocol"] == "S2":  # no forest: no probabilities, no interval
            assert "interval_check" not in res and not work.exists()
            continue
        fractions = [u["active_fraction"] for u in res["users"]]
        inside = 0
        for user in res["users"]:
            interval = active_fraction_interval(work / user["user"] / pr.PROBABILITIES, scheduler="synchronous")
            assert user["interval"] == interval.to_dict()
            assert interval.low <= user["active_fraction"] <= interval.high  # the labels lie between none and all
            inside += sum(interval.low <= f <= interval.high for f in fractions) - 1
            row = next(r for r in rows if r["protocol"] == res["protocol"] and r["user"] == user["user"])
            assert (float(row["interval_low"]), float(row["interval_high"])) == (interval.low, interval.high)
        check = res["interval_check"]
        assert (check["others_inside"], check["others_compared"]) == (inside, 6)
        assert check["truth_inside"] == sum(u["interval"]["low"] <= truth <= u["interval"]["high"] for u in res["users"])
        central = res.get("central_slice")
        if res["protocol"] == "ML1":
            assert central is None
            continue
        for user in res["users"]:  # the annotation volumes name their classes: label images, as napari shows them
            scribbles = work / user["user"] / "scribbles-1.zarr"
            assert io.open_array(scribbles).attrs["class_names"] == list(pr.CLASS_NAMES)
            assert type(ome.validate(scribbles)).__name__ == "ImageLabel"
        first = [io.open_array(work / u["user"] / pr.FIRST_PREDICTION, mode="r")[:] for u in res["users"]]
        assert [u["active_fraction"] for u in central["users"]] == pytest.approx([float(np.mean(f == 1)) for f in first])
        errors = [abs(float(np.mean(f == 1)) - truth) for f in first]
        assert central["mean_abs_error"] == pytest.approx(np.mean(errors))
        assert central["error_ratio"] == pytest.approx(np.mean([abs(f - truth) for f in fractions]) / np.mean(errors))
        assert central["active_fraction_std"] == pytest.approx(np.std([np.mean(f == 1) for f in first], ddof=1))
    page = html.page(report, [])
    assert "MLX after the central slice alone" in page and "interval one forest user can report" in page


def test_without_a_truth_annotators_judge_by_their_own_eye(tmp_path, data):
    report = run_study(data["raw"], tmp_path / "out", protocols="MLX50", users=2, seed=1, variants=["raw"],
                       scheduler="synchronous", **FAST)
    grey = io.open_array(data["raw"], mode="r")
    for user, seen in zip(report["results"][0]["users"], report["users"]):
        assert user["did"]["judgement"] == "own threshold" and user["accuracy"] is None
        (z,) = user["did"]["central"]["slices"]
        painted = io.open_array(tmp_path / "out/work/raw/MLX50" / user["user"] / "scribbles-1.zarr", mode="r")[z]
        judged = own_judgement(grey[z], seen["decisions"]["raw"]["threshold"])
        labelled = painted > 0
        assert labelled.mean() == pytest.approx(user["did"]["central"]["coverage"][0]) and 0.3 < labelled.mean() <= 0.5
        assert np.mean(painted[labelled] == judged[labelled]) > 0.85  # their eye, less their mislabelled strokes


# --------------------------------------------------------------------------- the command and its bad input


def test_the_command_prints_the_table_and_resumes(tmp_path, data, capsys):
    out = tmp_path / "out"
    argv = ["study", data["raw"], out, "--truth", data["truth"], "--protocols", "S,cWS", "--users", "3", "--seed", "1",
            "--raw-only", "--scheduler", "synchronous", "-q"]
    assert run_cli(*argv) == 0
    text = capsys.readouterr().out
    assert "raw       S1" in text and "u3" in text and "study.html" in text
    page = (out / "study.html").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["differences-raw.png", "histogram-raw.png", "spread-raw.png"]  # no MLX: no coverage curve
    assert all(f"figures/{f}" in page for f in figures) and page.count(">S3</td>") == 1
    report = json.loads((out / "study.json").read_text())
    truth = data["truth-array"]
    for res in report["results"]:  # every number is the users' own segmentations, checked from their voxels
        segs = [io.open_array(out / u["path"], mode="r")[:] for u in res["users"]]
        fractions = [float(np.mean(s == 1)) for s in segs]
        assert [u["active_fraction"] for u in res["users"]] == pytest.approx(fractions)
        assert res["active_fraction_std"] == pytest.approx(np.std(fractions, ddof=1))
        pairs = [100 * np.mean(segs[i] != segs[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
        assert res["mean_pairwise_percent"] == pytest.approx(np.mean(pairs))
        errors = [f - float(np.mean(truth == 1)) for f in fractions]
        assert [u["active_fraction_error"] for u in res["users"]] == pytest.approx(errors)
    assert [report["truth_fractions"]["fractions"][str(p)] for p in (1, 2, 3)] == pytest.approx(
        [float(np.mean(truth == p)) for p in (1, 2, 3)])  # three-phase where the truth has three phases
    last = list(csv.reader((out / "study.csv").read_text().splitlines()))[-1]
    assert last[:3] == ["", "truth", "truth"] and float(last[4]) == pytest.approx(float(np.mean(truth == 1)))
    before = _snapshot(out)
    assert run_cli(*argv) == 0  # a rerun of a complete study reuses everything, and says the same
    assert capsys.readouterr().out == text
    assert _snapshot(out) == before


@pytest.mark.parametrize("extra, words", [
    (["--protocols", "S,XYZ"], ["XYZ", "MLX<percent>"]),
    (["--users", "1"], ["--users 1", "at least 2"]),
    (["--protocols", "MLX0"], ["coverage"]),
    (["--protocols", "MLX120"], ["coverage", "(0, 100]"]),
    (["--truth", "{small}"], ["shape", "differs"]),
    (["--truth", "{no-active}"], ["labelled 1", "active material"]),
    (["--protocols", "S2,ML1", "--trees", "0"], ["--trees", "positive"]),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, data, capsys, extra, words):
    out = tmp_path / "out"
    code = run_cli("study", data["raw"], out, *[e.format(**data) for e in extra], "--raw-only", "-q")
    one_line_error(capsys, code, *words)
    assert not out.exists()


def test_an_output_folder_holding_another_study_is_refused_untouched(tmp_path, data, capsys):
    out = tmp_path / "out"
    base = ["study", data["raw"], out, "--protocols", "S2", "--users", "2", "--raw-only", "--scheduler", "synchronous",
            "--no-figures", "-q"]
    assert run_cli(*base, "--seed", "1") == 0
    capsys.readouterr()
    before = _snapshot(out)
    one_line_error(capsys, run_cli(*base, "--seed", "2"), "another study", "seed")
    one_line_error(capsys, run_cli(*base[:4], "S3", *base[5:], "--seed", "1"), "another study", "protocols")
    one_line_error(capsys, run_cli("study", data["truth"], out, *base[3:], "--seed", "1"), "another study", "tomogram")
    assert _snapshot(out) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    one_line_error(capsys, run_cli(*base[:2], other, *base[3:], "--seed", "1"), "no study manifest")
    inside = Path(data["raw"]).parent / "study"
    one_line_error(capsys, run_cli(*base[:2], inside, *base[3:]), "zarr store")
    assert not inside.exists()
    assert os.listdir(other) == ["thesis.txt"] and (other / "thesis.txt").read_text() == "keep me"


def test_a_yaml_config_with_options_laid_over_it(tmp_path, data, capsys):
    config = tmp_path / "study.yaml"
    config.write_text(f"tomogram: {data['raw']}\noutdir: {tmp_path / 'out'}\nprotocols: [S2, gWS]\nusers: 2\n"
                      "seed: 3\nvariants: [filtered]\nfigures: false\ncompute: {scheduler: synchronous}\n")
    assert run_cli("study", "--config", config, "--seed", "4", "-q") == 0
    report = json.loads((tmp_path / "out/study.json").read_text())
    assert report["parameters"]["seed"] == 4 and report["parameters"]["variants"] == ["filtered"]
    assert [r["protocol"] for r in report["results"]] == ["S2", "gWS"]
    assert not (tmp_path / "out/study.html").exists()
    capsys.readouterr()
    config.write_text("tomogram: x.zarr/raw\nouts: y\n")
    one_line_error(capsys, run_cli("study", "--config", config), "outs", "unknown")
    config.write_text("users: 1\n")
    one_line_error(capsys, run_cli("study", "--config", config, data["raw"], tmp_path / "new"), "users", ">= 2")
    one_line_error(capsys, run_cli("study", "-q"), "TOMOGRAM and OUTDIR")
    assert not (tmp_path / "new").exists()


def test_a_tomogram_in_another_format_gives_the_same_study(tmp_path, data):
    np.save(tmp_path / "raw.npy", io.open_array(data["raw"], mode="r")[:])
    kw = {"protocols": "S2,gWS", "users": 2, "seed": 9, "variants": ["raw"], "scheduler": "synchronous", "chunks": 12, **FAST}
    from_zarr = run_study(data["raw"], tmp_path / "a", **kw)
    from_npy = run_study(tmp_path / "raw.npy", tmp_path / "b", **kw)
    assert from_npy["results"][0]["users"] == from_zarr["results"][0]["users"]
    assert (tmp_path / "b/raw.zarr").is_dir()  # read once into zarr, then every chain works on that
    a, b = _segmentations(tmp_path / "a"), _segmentations(tmp_path / "b")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
