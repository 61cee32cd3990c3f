"""A forest sized by the data: fewest trees (and a cut depth if it pays) that agree with the grown forest.

Phantoms (64³ nmc-1 and nmc-2, the study's scribbles): the forest ``train`` keeps by default is checked
against the grown 100-tree forest on held-out voxels — unlabelled voxels outside the central crop the
choice was made on. Also: the size record in the model file, ``--trees`` / ``--full-forest``, old model
files, the scikit-learn version guard, and bad tree counts (one line, exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from sklearn.ensemble import RandomForestClassifier

from gpuseg import classify, phantom
from gpuseg import features as feat
from gpuseg.classify import cpu, layout, model_file, sizing
from gpuseg.classify import forest as fo
from gpuseg.classify.scribbles import random_scribbles
from gpuseg.errors import InputError, ParameterError
from gpuseg.volumes import central_region
from tests.conftest import one_line_error, run_cli

SHAPE = (64, 64, 64)
CROP = 40  # the sizing sample: unlabelled voxels of the central 40³; held out: the unlabelled voxels outside it


def _labels(forest: fo.Forest, X: np.ndarray) -> np.ndarray:
    return forest.classes[np.argmax(cpu.predict_proba(X, forest), axis=1)]


@pytest.fixture(scope="module", params=["nmc-1", "nmc-2"])
def phantom_forests(request):
    """(preset, grown forest, data-sized forest, held-out features, held-out truth) of one phantom."""
    raw, truth = phantom.make(request.param, SHAPE, seed=0)
    scribbles = random_scribbles(truth)
    kw = dict(features="default", compare_size=CROP, device="cpu", workers=2)
    grown = classify.train(raw, scribbles, full_forest=True, **kw).forest
    sized = classify.train(raw, scribbles, **kw).forest
    spec = classify.spec_of(grown, "model")
    X = feat.compute_block(raw.astype(np.float32), spec).reshape(spec.channels, -1).T
    crop = np.zeros(SHAPE, bool)
    crop[central_region(SHAPE, CROP)] = True
    held = ~crop.ravel() & (scribbles.ravel() == 0)
    return request.param, grown, sized, scribbles, np.ascontiguousarray(X[held]), truth.ravel()[held]


def test_sized_forest_agrees_with_the_grown_one_on_held_out_voxels(phantom_forests):
    preset, grown, sized, scribbles, X, truth = phantom_forests
    size = sized.info["size"]
    assert size["method"] == "agreement" and size["trees"] == sized.n_trees and size["grown_trees"] == 100
    assert grown.n_trees == 100 and grown.info["size"]["method"] == "full"
    # the sample: the crop's unlabelled voxels only
    crop = np.zeros(SHAPE, bool)
    crop[central_region(SHAPE, CROP)] = True
    assert size["sample"] == int(np.sum(crop & (scribbles == 0)))
    assert size["agreement"] - size["z"] * size["stderr"] >= 0.999
    # the kept trees are the grown forest's first ones (cut where that paid)
    expected = grown.first(sized.n_trees)
    if size["depth"] < size["grown_depth"]:
        expected = fo.truncate(expected, size["depth"])
    for name in fo.ARRAYS:
        np.testing.assert_array_equal(getattr(sized, name), getattr(expected, name))
    full, kept = _labels(grown, X), _labels(sized, X)
    agreement = np.mean(full == kept)
    assert agreement >= 0.999, (preset, sized.n_trees, agreement)
    # accuracy (active material vs the rest) is unchanged within the 0.1 % that may differ
    accuracy = [np.mean((labels == 1) == (truth == 1)) for labels in (full, kept)]
    assert abs(accuracy[0] - accuracy[1]) <= 0.001, accuracy
    assert size["visits"] <= size["grown_visits"]


def test_the_data_allow_a_smaller_forest(phantom_forests):
    """Fewer than the 100 trees grown are kept where the data allow it (both phantoms here).

    Not many fewer: on these noisy three-class phantoms 0.5-1 % of the voxels sit near a tie of
    the grown forest's vote, and dropping trees flips them, so 99.9 % agreement keeps most trees
    (see docs/classify.md, "Forest size").
    """
    _, grown, sized, *_ = phantom_forests
    assert sized.n_trees < grown.n_trees
    assert sized.info["size"]["visits"] < sized.info["size"]["grown_visits"]


# --------------------------------------------------------------------------- the pieces


def _data(n=2000, c=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, c)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.6 * X[:, 1] ** 2 + rng.normal(0, 0.7, n), [0.0, 1.0]).astype(np.uint8) + 1
    return X, y


def test_truncated_trees_answer_like_the_node_at_that_depth():
    """A tree cut at depth d answers with the (normalised) distribution of the node at depth d on each path."""
    X, y = _data()
    clf = RandomForestClassifier(n_estimators=6, random_state=0, n_jobs=1).fit(X, y)
    forest = fo.flatten(clf, spec={})
    for depth in (1, 3, 6):
        cut = fo.truncate(forest, depth)
        assert fo.max_depth(cut) == depth and cut.n_trees == forest.n_trees and model_file.validate(cut) == ""
        expected = np.zeros((len(X), 3))
        for est in clf.estimators_:
            path = est.decision_path(X).toarray().astype(bool)
            node_depth = np.zeros(est.tree_.node_count, int)
            for i in range(est.tree_.node_count):
                for child in (est.tree_.children_left[i], est.tree_.children_right[i]):
                    if child >= 0:
                        node_depth[child] = node_depth[i] + 1
            node = np.argmax(np.where(path & (node_depth <= depth), node_depth, -1), axis=1)
            value = est.tree_.value[node, 0, :]
            expected += value / value.sum(axis=1, keepdims=True)
        expected /= len(clf.estimators_)
        np.testing.assert_allclose(cpu.predict_proba(X, cut), expected, atol=1e-12)
        np.testing.assert_allclose(layout.predict_proba_reference(X, cut), expected, atol=1e-12)
    assert fo.truncate(forest, fo.max_depth(forest)) is forest


def test_curves_equal_direct_predictions_of_each_prefix_and_cut():
    X, y = _data()
    forest = fo.train(X[:600], y[:600], trees=12, workers=1)
    c = sizing.curves(forest, X, depths=[3], score=lambda labels: float(np.mean(labels == y)))
    full = _labels(forest, X)
    for k in (1, 5, 12):
        for j, cut in enumerate(c.depths):
            f = forest.first(k) if j == 0 else fo.truncate(forest.first(k), cut)
            labels = _labels(f, X)
            assert c.agreement[j, k - 1] == pytest.approx(np.mean(labels == full), abs=1e-12)
            assert c.score is not None and c.score[j, k - 1] == pytest.approx(np.mean(labels == y), abs=1e-12)
    assert c.agreement[0, -1] == 1


def test_a_cut_depth_is_kept_where_it_saves_node_visits():
    """One clean split plus 3 % flipped labels: grown trees chase the flips deep, cut ones do not need to."""
    rng = np.random.default_rng(0)
    X = rng.random((1000, 3), dtype=np.float32)
    y = np.where(X[:, 0] > 0.5, 2, 1).astype(np.uint8)
    flip = rng.random(len(y)) < 0.03
    y[flip] = 3 - y[flip]
    forest = fo.train(X, y, trees=30, workers=1)
    grown = fo.max_depth(forest)
    kept, s = sizing.size(forest, rng.random((40000, 3), dtype=np.float32), depths=[round(grown * 0.75), grown // 2])
    assert s.depth < s.grown_depth and s.trees < 30 and s.visits < (1 - sizing.DEPTH_GAIN) * s.grown_visits
    expected = fo.truncate(forest.first(s.trees), s.depth)
    for name in fo.ARRAYS:
        np.testing.assert_array_equal(getattr(kept, name), getattr(expected, name))
    held = rng.random((40000, 3), dtype=np.float32)
    assert np.mean(_labels(kept, held) == _labels(forest, held)) >= 0.999
    assert fo.max_depth(kept) == s.depth


def test_smallest_takes_the_first_prefix_from_which_all_agree():
    a = np.array([0.99, 0.9992, 0.9985, 0.9991, 0.9995, 1.0])
    assert sizing.smallest(a) == 4  # 0.9992 at k = 2 is followed by a dip
    assert sizing.smallest(a, stderr=np.full(6, 2e-4)) == 5  # 0.9995 - 2.33 * 2e-4 < 0.999: only the last two
    assert sizing.smallest(np.array([0.5, 0.9])) == 0


# --------------------------------------------------------------------------- CLI, model file


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("size")
    raw, truth = phantom.make("nmc-2", (32, 32, 32), seed=1)
    tifffile.imwrite(folder / "raw.tif", raw)
    tifffile.imwrite(folder / "s.tif", random_scribbles(truth, 0.3, seed=1))
    return folder


def _train(small, *extra):
    return run_cli("train", small / "raw.tif", "--labels", small / "s.tif", "--features", "gaussian:1.0,hessian:1.6",
                   "--device", "cpu", "--workers", "2", "--overwrite", "-q", *map(str, extra))


def test_cli_sizes_by_default_and_says_so(small, capsys):
    assert _train(small, "--model", small / "m.npz") == 0
    out = capsys.readouterr().out
    forest = model_file.load(small / "m.npz")
    size = forest.info["size"]
    assert size["method"] == "agreement" and size["trees"] == forest.n_trees <= 100
    assert {"agreement", "sample", "stderr", "grown_trees", "depth", "grown_depth", "visits"} <= set(size)
    line = (f"kept {forest.n_trees} of 100 trees (labels agree with all 100 on {100 * size['agreement']:.2f} % of "
            "the central 32³ crop")
    assert line in out, out
    with np.load(small / "m.npz") as npz:
        assert json.loads(npz["header"].tobytes())["n_trees"] == forest.n_trees


@pytest.mark.parametrize("extra, trees, method", [(("--trees", "7"), 7, "fixed"), (("--full-forest",), 100, "full")])
def test_cli_trees_fixes_the_forest_and_full_forest_keeps_all(small, capsys, extra, trees, method):
    assert _train(small, "--model", small / f"{method}.npz", *extra) == 0
    forest = model_file.load(small / f"{method}.npz")
    assert forest.n_trees == trees and forest.info["size"]["method"] == method
    out = capsys.readouterr().out
    assert ("as --trees asked" if method == "fixed" else "kept all 100 trees grown (--full-forest)") in out



@pytest.mark.parametrize("value, words", [("0", "0 trees"), ("-1", "-1 trees"), ("2.5", "'2.5' is not a whole number")])
def test_cli_bad_tree_counts(small, capsys, value, words):
    code = _train(small, "--model", small / "bad.npz", "--trees", value)
    one_line_error(capsys, code, "--trees", words)
    assert not (small / "bad.npz").exists()


def test_cli_trees_and_full_forest_exclude_each_other(small, capsys):
    code = _train(small, "--model", small / "bad.npz", "--trees", "5", "--full-forest")
    one_line_error(capsys, code, "--full-forest")


@pytest.mark.parametrize("trees", [0, -1, 2.5, True, 10**6])
def test_api_bad_tree_counts(trees):
    with pytest.raises(ParameterError, match="--trees"):
        classify.train(np.zeros((8, 8, 8), np.float32), np.ones((8, 8, 8), np.uint8), trees=trees)


@pytest.mark.parametrize("k", [0, -1, 13, 2.5])
def test_asking_a_forest_for_trees_it_does_not_hold(k):
    X, y = _data(n=300)
    forest = fo.train(X, y, trees=12, workers=1)
    with pytest.raises(ParameterError, match="holds 12"):
        forest.first(k)


def _rewrite_header(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    change(header)
    header["sha256"] = model_file._digest(header, arrays)  # a crafted file: its checksum matches
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("where", ["size", "header"])
def test_model_asking_for_more_trees_than_it_holds(small, capsys, where):
    spec = classify.feature_spec("gaussian:1.0,hessian:1.6")
    X, y = _data(n=300, c=spec.channels)
    forest = fo.train(X, y, trees=4, workers=1, spec=spec.to_dict())
    path = model_file.save(forest.replace(info={**forest.info, "size": {"method": "agreement", "trees": 4}}),
                           small / f"more-{where}.npz")

    def more(header):
        if where == "size":
            header["info"]["size"]["trees"] = 9
        else:
            header["n_trees"] = 9

    _rewrite_header(Path(path), more)
    with pytest.raises(InputError, match="asks for 9 trees but the file holds 4"):
        model_file.load(path)
    code = run_cli("predict", small / "raw.tif", "--model", path, small / f"p-{where}.zarr", "--device", "cpu", "-q")
    one_line_error(capsys, code, f"more-{where}.npz", "asks for 9 trees")


def test_a_model_file_from_before_sizing_loads_and_predicts(small, tmp_path):
    """Files written before this change: the same format version, no ``size`` record in the info."""
    spec = classify.feature_spec("gaussian:1.0,hessian:1.6")
    X, y = _data(n=400, c=spec.channels)
    forest = fo.train(X, y, trees=5, workers=1, spec=spec.to_dict())
    old = forest.replace(info={**forest.info, "annotations": ["s.tif"], "changed_percent": []})
    assert "size" not in old.info
    path = model_file.save(old, tmp_path / "old.npz")
    with np.load(path) as npz:
        header = json.loads(npz["header"].tobytes())
    assert header["format_version"] == 1 and "size" not in header["info"]
    loaded = model_file.load(path)
    np.testing.assert_array_equal(cpu.predict_proba(X, loaded), cpu.predict_proba(X, forest))
    raw = tifffile.imread(small / "raw.tif")
    assert classify.predict(raw, path, device="cpu").labels.shape == raw.shape
    from gpuseg.cli.classify import size_summary

    assert size_summary(loaded.info.get("size", {}), loaded.n_trees) == "5 trees"


