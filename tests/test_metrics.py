"""compare(): every number equals numpy on the whole arrays, under any scheduler, a LocalCluster included."""

import csv
import itertools
import json

import numpy as np
import pytest

from gpuseg import io, metrics
from gpuseg.errors import InputError
from tests.conftest import run_cli
from tests.segdata import spheres

SHAPE = (30, 26, 28)


@pytest.fixture(scope="module")
def users():
    """Three 'users' thresholding a phantom at S1/S2/S3-like levels, some voxels unassigned, and the truth."""
    raw, truth = spheres(SHAPE, seed=4)
    segs = [np.where(raw > t, 1, 2).astype(np.uint8) for t in (115, 125, 135)]
    segs[1][:, :2] = 0  # one user left a border unassigned
    truth = truth.copy()
    truth[-1] = 0  # and the truth has an unassigned slice
    return segs, truth


def numpy_report(segs, truth, phases=2):
    """The definitions of gpuseg.metrics, written directly in numpy on whole arrays."""
    keys = [str(p) for p in range(1, phases + 1)]
    frac = [{k: np.count_nonzero(s == int(k)) / np.count_nonzero(s != 0) for k in keys} for s in segs]
    out = {"fractions": frac,
           "std": {k: float(np.std([f[k] for f in frac], ddof=1)) for k in keys}, "pairs": []}
    for a, b in itertools.combinations(segs, 2):
        both = (a != 0) & (b != 0)
        out["pairs"].append((int(np.count_nonzero(both & (a != b))), int(np.count_nonzero(both))))
    out["pair_percent"] = [100.0 * d / n for d, n in out["pairs"]]
    tr = truth != 0
    tfrac = {k: np.count_nonzero(truth == int(k)) / np.count_nonzero(tr) for k in keys}
    out["truth"] = tfrac
    out["accuracy"] = [np.count_nonzero(tr & (s == truth)) / np.count_nonzero(tr) for s in segs]
    out["dice"] = [{k: 2 * np.count_nonzero(tr & (s == int(k)) & (truth == int(k)))
                    / (np.count_nonzero(truth == int(k)) + np.count_nonzero(tr & (s == int(k)))) for k in keys} for s in segs]
    out["iou"] = [{k: np.count_nonzero(tr & (s == int(k)) & (truth == int(k)))
                   / np.count_nonzero(tr & ((s == int(k)) | (truth == int(k)))) for k in keys} for s in segs]
    out["confusion"] = [[[int(np.count_nonzero((truth == t) & (s == v))) for v in range(phases + 1)]
                         for t in range(phases + 1)] for s in segs]
    out["deviation"] = [{k: f[k] - tfrac[k] for k in keys} for f in frac]
    return out


def check(report, ref):
    for s, f in zip(report["segmentations"], ref["fractions"]):
        assert s["fractions"] == f  # same integer counts, same division: identical floats
    assert report["fraction_std"] == pytest.approx(ref["std"], rel=1e-12, abs=0)
    assert report["active_fraction_std"] == report["fraction_std"]["1"]
    assert [(p["differing"], p["compared"]) for p in report["pairs"]] == ref["pairs"]
    assert [p["percent"] for p in report["pairs"]] == ref["pair_percent"]
    assert report["mean_pairwise_percent"] == pytest.approx(np.mean(ref["pair_percent"]), rel=1e-15)
    assert report["truth"]["fractions"] == ref["truth"]
    for s, acc, dice, iou, conf, dev in zip(report["segmentations"], ref["accuracy"], ref["dice"], ref["iou"],
                                            ref["confusion"], ref["deviation"]):
        assert s["accuracy"] == acc and s["confusion"] == conf
        assert s["dice"] == pytest.approx(dice, rel=1e-15) and s["iou"] == pytest.approx(iou, rel=1e-15)
        assert s["fraction_deviation"] == dev and s["active_fraction_deviation"] == dev["1"]
        assert s["relative_fraction_deviation"]["1"] == pytest.approx(dev["1"] / ref["truth"]["1"], rel=1e-15)


@pytest.mark.parametrize("chunks", [4, (7, 26, 5), 64])
def test_in_memory_equals_numpy(users, chunks):
    segs, truth = users
    report = metrics.compare(segs, truth, chunks=chunks, scheduler="threads")
    assert report["phases"] == [1, 2] and report["voxels"] == truth.size
    check(report, numpy_report(segs, truth))
    json.dumps(report)  # JSON-ready


@pytest.fixture
def stored(tmp_path, users):
    segs, truth = users
    paths = []
    for i, s in enumerate(segs):
        io.create_array(tmp_path / f"u{i}.zarr", SHAPE, np.uint8, (9, 9, 9), {"phases": 2})[:] = s
        paths.append(str(tmp_path / f"u{i}.zarr"))
    io.create_array(tmp_path / "truth.zarr/labels", SHAPE, np.uint8, (16, 16, 16))[:] = truth  # other chunks
    return paths, str(tmp_path / "truth.zarr/labels")


def test_local_cluster_of_two_processes(users, stored):
    segs, truth = users
    paths, truth_path = stored
    report = metrics.compare(paths, truth_path, scheduler="local", workers=2)
    check(report, numpy_report(segs, truth))
    assert [s["name"] for s in report["segmentations"]] == paths
    assert report == metrics.compare(paths, truth_path, scheduler="synchronous")


def test_cli_json_csv_plots_difference(tmp_path, users, stored, capsys):
    segs, truth = users
    paths, truth_path = stored
    out = tmp_path / "r"
    assert run_cli("compare", *paths, "--truth", truth_path, "--names", "A", "B", "C", "--json", f"{out}.json",
                   "--csv", f"{out}.csv", "--plot", f"{out}.png", "--slices", f"{out}-slices.png",
                   "--difference", tmp_path / "diff.zarr", "--scheduler", "processes", "--workers", "2", "-q") == 0
    assert "mean pairwise difference" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    ref = numpy_report(segs, truth)
    assert [s["path"] for s in report["segmentations"]] == paths and [s["name"] for s in report["segmentations"]] == ["A", "B", "C"]
    assert [s["fractions"]["1"] for s in report["segmentations"]] == [f["1"] for f in ref["fractions"]]
    assert report["active_fraction_std"] == pytest.approx(ref["std"]["1"], rel=1e-12)
    assert [p["percent"] for p in report["pairs"]] == ref["pair_percent"]
    assert [s["accuracy"] for s in report["segmentations"]] == ref["accuracy"]
    assert [s["active_fraction_deviation"] for s in report["segmentations"]] == [d["1"] for d in ref["deviation"]]
    with open(f"{out}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    acc = {r["item"]: float(r["value"]) for r in rows if r["metric"] == "accuracy"}
    assert acc == dict(zip("ABC", ref["accuracy"]))
    fractions = [r for r in rows if r["item"] == "A" and r["metric"] == "fraction"]
    assert [(r["phase"], r["phase_name"]) for r in fractions] == [(p, n) for p, n in report["phase_names"].items()]
    assert all(r["phase_name"] for r in fractions) and float(fractions[0]["value"]) == report["segmentations"][0]["fractions"]["1"]
    assert run_cli("variability", f"{out}.json", f"{out}.json", "--methods", "S", "S again", "--output", tmp_path / "f3.png") == 0
    assert run_cli("variability", f"{out}.csv", "--output", tmp_path / "f3b.png") == 2
    assert "not a report of gpuseg compare" in capsys.readouterr().err
    for name in ("r.png", "r-slices.png", "f3.png"):
        assert (tmp_path / name).stat().st_size > 5000
    for (i, a), (j, b) in itertools.combinations(enumerate(segs), 2):
        d = io.open_array(tmp_path / f"diff.zarr/{i + 1}-{j + 1}")[:]
        both = (a != 0) & (b != 0)
        assert d.dtype == np.int8 and np.array_equal(d, np.where(both, (a == 1).astype(int) - (b == 1), 0))
        assert np.count_nonzero(d) == report["pairs"][[(0, 1), (0, 2), (1, 2)].index((i, j))]["differing"]


def test_three_phases_without_truth():
    rng = np.random.default_rng(2)
    segs = [rng.integers(0, 4, (10, 11, 12)).astype(np.uint8) for _ in range(3)]
    report = metrics.compare(segs, chunks=5, scheduler="synchronous")
    assert report["phases"] == [1, 2, 3] and "truth" not in report
    for s, seg in zip(report["segmentations"], segs):
        assert s["counts"] == {str(v): int(np.count_nonzero(seg == v)) for v in range(4)}
    assert report["fraction_std"]["3"] == pytest.approx(
        np.std([np.count_nonzero(s == 3) / np.count_nonzero(s) for s in segs], ddof=1), rel=1e-12)


def test_bad_input(tmp_path, users, stored, capsys):
    segs, truth = users
    paths, _ = stored
    with pytest.raises(InputError, match="differs"):
        metrics.compare([segs[0], segs[1][:, :, :-1]])
    with pytest.raises(InputError, match="labels must be integers"):
        metrics.compare([segs[0], segs[1].astype(np.float32)])
    bad = segs[0].copy()
    bad[0, 0, 0] = 7
    with pytest.raises(InputError, match="outside 0..3"):
        metrics.compare([segs[0], bad])
    with pytest.raises(InputError, match="outside 0..2"):
        metrics.compare([segs[0], np.where(segs[0] == 2, 3, segs[0]).astype(np.uint8)], phases=2)
    np.save(tmp_path / "small.npy", segs[0][:-1])
    neg = segs[0].astype(np.int8)
    neg[3, 4, 5] = -1
    np.save(tmp_path / "neg.npy", neg)
    np.save(tmp_path / "float.npy", segs[0].astype(np.float32))
    for other, message in (("small.npy", "differs from"), ("neg.npy", "outside 0..2"), ("float.npy", "not a segmentation")):
        assert run_cli("compare", paths[0], tmp_path / other, "--json", tmp_path / "x.json", "-q") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
        assert not (tmp_path / "x.json").exists()


@pytest.mark.gpu
def test_gpu_counts_equal_cpu(users):
    segs, truth = users
    cpu = metrics.compare(segs, truth, chunks=8, device="cpu")
    assert metrics.compare(segs, truth, chunks=8, device="gpu") == cpu


def test_two_phase_merges_carbon_binder_and_pore(users, tmp_path, capsys):
    """A three-phase truth (1 active, 2 CBD, 3 pore) against two-phase users: non-active = CBD + pore."""
    segs, truth = users
    rng = np.random.default_rng(1)
    three = np.where((truth == 2) & (rng.random(truth.shape) < 0.3), 3, truth).astype(np.uint8)
    merged = np.where(three >= 2, 2, three).astype(np.uint8)
    got = metrics.compare(segs, three, two_phase=True, chunks=7, scheduler="synchronous")
    ref = metrics.compare(segs, merged, chunks=7, scheduler="synchronous")
    assert json.dumps(got["segmentations"], sort_keys=True) == json.dumps(ref["segmentations"], sort_keys=True)
    assert [s["accuracy"] for s in got["segmentations"]] == numpy_report(segs, merged)["accuracy"]
    paths = []
    for i, s in enumerate([*segs, three]):
        paths.append(tmp_path / f"v.zarr/s{i}")
        io.create_array(paths[-1], s.shape, np.uint8, (16, 16, 16), {"phases": 2 if i < 3 else 3})[:] = s
    # two-phase users declare 2 phases, so without --two-phase the truth's pore label is out of range
    assert run_cli("compare", *paths[:3], "--truth", paths[3], "--phases", "2", "-q") == 2
    assert "outside 0..2" in capsys.readouterr().err
    assert run_cli("compare", *paths[:3], "--truth", paths[3], "--two-phase", "--json", tmp_path / "r.json",
                   "--device", "cpu", "-q") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["accuracy"] for s in report["segmentations"]] == [s["accuracy"] for s in got["segmentations"]]


def test_compare_names_phases_from_the_segmentations(tmp_path, capsys):
    """The table heads each phase with the name the segmentations store (else the convention)."""
    from gpuseg import volumes
    from tests.conftest import run_cli

    seg = np.random.default_rng(0).integers(1, 3, (6, 8, 8), dtype=np.uint8)
    volumes.save(seg, tmp_path / "s.zarr/a", attrs={"classes": [1, 2], "class_names": ["NMC", "binder+pore"]})
    volumes.save(seg[::-1].copy(), tmp_path / "s.zarr/b")
    assert run_cli("compare", tmp_path / "s.zarr/a", tmp_path / "s.zarr/b", "--json", tmp_path / "r.json", "-q") == 0
    head = capsys.readouterr().out.splitlines()[1].split()
    assert head == ["segmentation", "NMC", "binder+pore"]
    assert json.loads((tmp_path / "r.json").read_text())["phase_names"] == {"1": "NMC", "2": "binder+pore"}
    assert metrics.compare([seg, seg], scheduler="synchronous")["phase_names"] == {"1": "active", "2": "non-active"}
