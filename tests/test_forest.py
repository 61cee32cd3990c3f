"""The flat forest, its CPU and GPU predictors against scikit-learn, and the model file's safety."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from gpuseg.classify import forest as fo
from gpuseg.classify import gpu, layout, model_file, predictor
from gpuseg.errors import InputError, ParameterError


def _data(n=3000, c=8, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, c)).astype(np.float32)
    score = X[:, 0] + 0.7 * X[:, 1] ** 2 + rng.normal(0, 0.6, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])).astype(np.uint8) + 1
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    clf = RandomForestClassifier(n_estimators=25, random_state=0, n_jobs=1).fit(X, y)
    return clf, fo.flatten(clf), X


def _at_thresholds(clf, X, shift):
    """Rows whose split feature sits exactly at (or one float32 step around) a threshold of every split."""
    rows = []
    for est in clf.estimators_:
        inner = est.tree_.children_left != -1
        t32 = est.tree_.threshold[inner].astype(np.float32)  # rounded to nearest: the hard cases
        if shift:
            t32 = np.nextafter(t32, np.float32(np.inf * shift))
        block = np.repeat(X[:1], inner.sum(), axis=0)
        block[np.arange(inner.sum()), est.tree_.feature[inner]] = t32
        rows.append(block)
    return np.concatenate(rows)


def test_cpu_predictor_equals_sklearn(fitted):
    """The packed walk adds the same float64 leaf distributions in the same order: equal to the last bit."""
    clf, forest, _ = fitted
    X, _ = _data(n=5000, seed=1)
    np.testing.assert_array_equal(predictor.predict_proba(X, forest), clf.predict_proba(X))
    np.testing.assert_array_equal(predictor.predict(X, forest), clf.predict(X))


@pytest.mark.parametrize("shift", [0, 1, -1])
def test_thresholds_compare_like_sklearn_at_the_split_values(fitted, shift):
    clf, forest, X = fitted
    edge = _at_thresholds(clf, X, shift)
    expected = clf.predict_proba(edge)
    np.testing.assert_array_equal(predictor.predict_proba(edge, forest), expected)
    np.testing.assert_array_equal(layout.predict_proba_reference(edge, forest), expected)


def test_nearest_rounded_thresholds_would_differ(fitted):
    """The float32 floor matters: thresholds rounded to nearest send some edge rows the other way."""
    clf, forest, X = fitted
    edge = _at_thresholds(clf, X, 0)
    raw = np.concatenate([e.tree_.threshold for e in clf.estimators_])
    nearest = forest.replace(threshold=raw.astype(np.float32))
    assert not np.allclose(predictor.predict_proba(edge, nearest), clf.predict_proba(edge), atol=1e-12)
    assert np.all(forest.threshold.astype(np.float64) <= np.where(forest.feature >= 0, raw, np.inf))


def test_float32_floor_is_largest_float32_not_above():
    t = np.random.default_rng(2).normal(size=10000)
    f = fo.float32_floor(t)
    assert f.dtype == np.float32
    assert np.all(f.astype(np.float64) <= t)
    assert np.all(np.nextafter(f, np.float32(np.inf)).astype(np.float64) > t)


def test_kernel_reference_equals_sklearn(fitted):
    clf, forest, _ = fitted
    X, _ = _data(n=4000, seed=3)
    proba = layout.predict_proba_reference(X, forest)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, clf.predict_proba(X))


def test_packing_is_breadth_first_with_adjacent_children_and_leaves_inside(fitted):
    _, forest, _ = fitted
    packed = layout.pack(forest)
    assert packed.nodes.shape == (forest.n_nodes, 2) and packed.nodes.dtype == np.int32
    order = layout.breadth_first(forest)
    np.testing.assert_array_equal(np.sort(order), np.arange(forest.n_nodes))  # every node once
    word0, word1 = packed.nodes[:, 0], packed.nodes[:, 1]
    leaf = word1 == 0
    np.testing.assert_array_equal(leaf, forest.feature[order] < 0)
    inner = np.flatnonzero(~leaf)
    left = inner + (word1[inner] >> packed.feature_bits)
    # children right after their parent, side by side, and the same children as the flat arrays'
    assert np.all(left > inner)
    np.testing.assert_array_equal(order[left], forest.left[order[inner]])
    np.testing.assert_array_equal(order[left + 1], forest.right[order[inner]])
    np.testing.assert_array_equal(word1[inner] & packed.feature_mask, forest.feature[order[inner]])
    np.testing.assert_array_equal(word0[inner].view(np.float32), forest.threshold[order[inner]])
    np.testing.assert_array_equal(order[packed.roots], forest.tree_start[:-1])  # each tree starts at its root
    # a leaf is a NaN: pure ones carry their class, mixed ones (sign bit) their row of the table
    assert np.isnan(word0[leaf].view(np.float32)).all()
    value = forest.value[order[leaf]]
    pure = word0[leaf] >= 0
    np.testing.assert_array_equal(np.argmax(value[pure], axis=1), word0[leaf][pure] & layout.PAYLOAD)
    assert np.all(value[pure].max(axis=1) == 1.0)
    np.testing.assert_array_equal(packed.leaf_values[word0[leaf][~pure] & layout.PAYLOAD], value[~pure])


def test_mixed_leaves_of_a_cut_forest_walk_like_the_reference(fitted):
    """A forest cut at depth 4 has leaves of mixed classes: the table path of the kernels."""
    _, forest, _ = fitted
    cut = fo.truncate(forest, 4)
    packed = layout.pack(cut)
    assert len(packed.leaf_values) > cut.n_trees  # most of its leaves are mixed
    X, _ = _data(n=2000, seed=4)
    expected = np.zeros((len(X), 3))
    for t in range(cut.n_trees):  # one tree at a time, by the flat arrays' own pointers
        node = np.full(len(X), cut.tree_start[t])
        while np.any(cut.feature[node] >= 0):
            inner = cut.feature[node] >= 0
            f = np.where(inner, cut.feature[node], 0)
            go_left = X[np.arange(len(X)), f] <= cut.threshold[node]
            node = np.where(inner, np.where(go_left, cut.left[node], cut.right[node]), node)
        expected += cut.value[node]
    expected /= cut.n_trees
    np.testing.assert_array_equal(layout.predict_proba_reference(X, cut), expected)
    np.testing.assert_array_equal(predictor.predict_proba(X, cut), expected)


def test_a_tree_too_deep_for_its_offsets_is_refused():
    """Offsets share word 1 with the feature index: a forest whose child offsets do not fit is one error line."""
    X, y = _data(n=300, c=2)
    forest = fo.train(X, y, trees=1)
    wide = forest.replace(n_features=2**30)  # 30 feature bits leave one bit of offset
    with pytest.raises(ParameterError, match="too large to pack"):
        layout.pack(wide)


def test_train_is_reproducible_and_checks_classes():
    X, y = _data(n=500)
    a, b = fo.train(X, y, trees=7, random_state=4), fo.train(X, y, trees=7, random_state=4)
    for name in fo.ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    with pytest.raises(ParameterError, match="two classes"):
        fo.train(X, np.ones(len(X), np.uint8), trees=3)
    with pytest.raises(ParameterError, match="features of shape"):
        predictor.predict_proba(X[:, :3], a)


# --------------------------------------------------------------------------- model file


@pytest.fixture
def model(tmp_path, fitted):
    _, forest, _ = fitted
    forest = forest.replace(class_names=("active", "cbd", "pore"), features={"items": [["gaussian_smoothing", 1.0]], "mode": "plain", "twod": False})
    path = tmp_path / "m.npz"
    model_file.save(forest, path)
    return path, forest


def test_model_roundtrip(model, fitted):
    path, forest = model
    loaded = model_file.load(path)
    for name in fo.ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(forest, name))
        assert getattr(loaded, name).dtype == fo.ARRAYS[name]
    assert loaded.class_names == ("active", "cbd", "pore")
    assert loaded.features == forest.features
    assert set(loaded.info["versions"]) == {"gpuseg", "scikit-learn", "numpy"}
    clf, _, X = fitted
    np.testing.assert_allclose(predictor.predict_proba(X, loaded), clf.predict_proba(X), atol=1e-12)


def test_same_forest_same_bytes(model, tmp_path):
    """A model file is reproducible: no clock in the archive (np.savez would stamp the time)."""
    import time

    path, forest = model
    time.sleep(2.1)  # zip timestamps have 2 s resolution
    model_file.save(forest, tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.9, 0.999])
def test_truncated_model_is_refused(model, keep):
    path, _ = model
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="m.npz"):
        model_file.load(path)


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.95])
def test_flipped_byte_is_refused(model, where):
    path, _ = model
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="m.npz"):
        model_file.load(path)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path, **arrays)


def test_tampered_arrays_with_intact_zip_fail_the_checksum(model):
    path, forest = model
    _rewrite(path, threshold=forest.threshold + np.float32(0.5))
    with pytest.raises(InputError, match="checksum"):
        model_file.load(path)


def test_crafted_forest_with_valid_checksum_is_refused(model):
    """A loop (child pointing back to its parent) would hang a predictor: refused even with a matching SHA-256."""
    path, forest = model
    left = forest.left.copy()
    left[0] = 0
    bad = forest.replace(left=left)
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes())
    header["sha256"] = model_file._digest(header, bad.arrays())
    _rewrite(path, left=left, header=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(InputError, match="child index"):
        model_file.load(path)


def test_pickled_object_array_is_refused(model, monkeypatch):
    path, _ = model
    import pickle

    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["classes"] = np.array([{"evil": 1}, 2, 3], dtype=object)
    np.savez(path, **arrays)
    with zipfile.ZipFile(path) as z:  # the file really holds a pickle
        assert b"evil" in z.read("classes.npy")
    with pytest.raises(InputError, match="pickled objects"):
        model_file.load(path)
    assert calls == []


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04garbage"])
def test_garbage_model_is_refused(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match="junk.npz"):
        model_file.load(path)


def test_missing_model_and_foreign_npz(tmp_path):
    with pytest.raises(InputError, match="no such model"):
        model_file.load(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a gpuseg model"):
        model_file.load(tmp_path / "other.npz")


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_gpu_predictor_equals_sklearn(fitted):
    import cupy

    clf, forest, _ = fitted
    X, _ = _data(n=20000, seed=5)
    expected = clf.predict_proba(X)
    proba = gpu.predict_proba(cupy.asarray(X), forest).get()
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    labels = forest.classes[proba.argmax(axis=1)]
    top2 = np.sort(expected, axis=1)[:, -2:]
    differ = labels != clf.predict(X)
    assert np.all(top2[differ, 1] - top2[differ, 0] < 1e-6)  # only exact ties may differ


@pytest.mark.gpu
def test_gpu_predictor_reads_channel_major_views_and_writes_strided(fitted):
    import cupy

    clf, forest, _ = fitted
    X, _ = _data(n=7777, seed=6)
    channel_major = cupy.asarray(np.ascontiguousarray(X.T))  # (C, N), as feature blocks come
    out = cupy.zeros((forest.n_classes, len(X)), cupy.float32)
    gpu.predict_proba(channel_major.T, forest, out=out.T)
    np.testing.assert_allclose(out.get().T, clf.predict_proba(X), atol=1e-6)
    edge = _at_thresholds(clf, X, 0)
    np.testing.assert_allclose(gpu.predict_proba(cupy.asarray(edge), forest).get(), clf.predict_proba(edge), atol=1e-6)


@pytest.mark.gpu
def test_predict_dispatches_cupy_to_the_gpu(fitted):
    import cupy

    clf, forest, X = fitted
    labels = predictor.predict(cupy.asarray(X), forest)
    assert isinstance(labels, cupy.ndarray)
    assert np.mean(labels.get() == clf.predict(X)) > 0.999
