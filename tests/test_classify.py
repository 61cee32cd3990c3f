"""Pixel classification: training around scribbles only, blockwise prediction against scikit-learn, iterations, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
from sklearn.ensemble import RandomForestClassifier

from gpuseg import classify, io
from gpuseg import features as feat
from gpuseg.classify import forest as fo
from gpuseg.classify import model_file, predictor, samples
from gpuseg.classify import scribbles as scribble_io
from gpuseg.classify.scribbles import random_scribbles
from tests.conftest import one_line_error, run_cli
from tests.killer import ROOT

SPEC = feat.parse_features("gaussian:1.0,gradient:1.0,hessian:1.6")  # halo 6
SHAPE = (30, 34, 38)


def _volume(shape=SHAPE, seed=0):
    """Two phases (smooth blobs) with noise: truth 1/2, grey image float32."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 3)
    truth = np.where(field > 0, 1, 2).astype(np.uint8)
    image = (np.where(truth == 1, 150.0, 90.0) + rng.normal(0, 25, shape)).astype(np.float32)
    return image, truth


def _scribbles(truth, slices, fraction=0.1, seed=1):
    rng = np.random.default_rng(seed)
    out = np.zeros_like(truth)
    for z in slices:
        mask = rng.random(truth.shape[1:]) < fraction
        out[z][mask] = truth[z][mask]
    return out


@pytest.fixture(scope="module")
def data():
    image, truth = _volume()
    whole = feat.compute_block(image, SPEC)  # reference: features of the whole array
    return image, truth, whole


@pytest.fixture(scope="module")
def reference(data):
    """scikit-learn trained on the whole-array features of the scribbled voxels, and its flat copy."""
    _, truth, whole = data
    scribbles = _scribbles(truth, [15])
    z, y, x = np.nonzero(scribbles)
    clf = RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1).fit(whole[:, z, y, x].T, scribbles[z, y, x])
    X = whole.reshape(SPEC.channels, -1).T
    return clf, fo.flatten(clf, spec=SPEC.to_dict()), X


@pytest.mark.parametrize("block", [4, 16, (7, 40, 13), 64])
def test_gather_equals_whole_array_features(data, block):
    image, truth, whole = data
    scribbles = _scribbles(truth, [0, 9, 29], fraction=0.05)
    s = scribble_io.read(scribbles, SHAPE)
    X = samples.gather(image, s, SPEC, block=block, device="cpu", scheduler="threads", workers=2)
    z, y, x = s.coords().T
    np.testing.assert_allclose(X, whole[:, z, y, x].T, rtol=1e-5, atol=1e-4)


def test_training_computes_features_only_near_the_labels(data, monkeypatch):
    image, truth, _ = data
    seen = []
    original = feat.compute_block

    def spy(block, spec, inner=None):
        seen.append(block.shape)
        return original(block, spec, inner=inner)

    monkeypatch.setattr(feat, "compute_block", spy)
    scribbles = _scribbles(truth, [15])
    classify.train(image, scribbles, features=SPEC, trees=3, compare_size=8, device="cpu")
    halo = SPEC.halo[0]
    gathered = seen[:-1]  # the last call is the 8³ comparison crop
    assert all(shape[0] <= 1 + 2 * halo for shape in gathered)
    assert sum(np.prod(s) for s in gathered) <= (1 + 2 * halo) * SHAPE[1] * SHAPE[2]  # one slab, not the volume
    assert seen[-1] == tuple(8 + 2 * halo for _ in range(3))


def _assert_labels_match(labels, proba_ref, classes):
    expected = classes[proba_ref.argmax(axis=1)]
    top2 = np.sort(proba_ref, axis=1)[:, -2:]
    differ = labels.ravel() != expected
    assert np.all(top2[differ, 1] - top2[differ, 0] < 1e-9)  # only exact ties may differ


@pytest.mark.parametrize("chunks", [None, 5, (7, 13, 38), 16])
def test_blockwise_prediction_equals_sklearn_on_the_whole_array(reference, data, chunks):
    clf, forest, X = reference
    image = data[0]
    expected = clf.predict_proba(X)
    result = classify.predict(image, forest, chunks=chunks, device="cpu")
    k = forest.n_classes
    np.testing.assert_allclose(result.probabilities.reshape(k, -1).T, expected, atol=1e-6)
    _assert_labels_match(result.labels, expected, clf.classes_)
    assert result.labels.dtype == np.uint8
    top2 = np.sort(expected, axis=1)[:, -2:]
    np.testing.assert_allclose(result.uncertainty.ravel(), 1 - (top2[:, 1] - top2[:, 0]), atol=1e-6)


@pytest.mark.parametrize("prob_dtype", ["uint8", "float16"])
def test_out_of_core_prediction_writes_labels_probabilities_uncertainty(tmp_path, reference, data, prob_dtype):
    clf, forest, X = reference
    image = data[0]
    io.create_array(tmp_path / "v.zarr/raw", SHAPE, np.float32, (10, 10, 10), {"voxel_size_nm": [400.0] * 3})[:] = image
    model = model_file.save(forest.replace(class_names=("a", "b")), tmp_path / "m.npz")
    out = tmp_path / "out.zarr"
    unc_path = tmp_path / ("u.tif" if prob_dtype == "uint8" else "u.zarr")  # TIFF output, and float16 zarr
    classify.predict(tmp_path / "v.zarr/raw", model, f"{out}/labels", probabilities=f"{out}/p", uncertainty=unc_path,
                     prob_dtype=prob_dtype, chunks=(8, 12, 16), device="cpu", workers=2)
    expected = clf.predict_proba(X)
    labels = io.open_array(f"{out}/labels")
    _assert_labels_match(labels[:], expected, clf.classes_)
    assert labels.attrs["voxel_size_nm"] == [400.0] * 3 and labels.attrs["class_names"] == ["a", "b"]
    proba = io.open_array(f"{out}/p")[:]
    unc = tifffile.imread(unc_path) if prob_dtype == "uint8" else io.open_array(unc_path)[:]
    assert proba.shape == (2, *SHAPE) and proba.dtype == unc.dtype == np.dtype(prob_dtype)
    top2 = np.sort(expected, axis=1)[:, -2:]
    if prob_dtype == "uint8":
        assert np.abs(proba.reshape(2, -1).T.astype(int) - np.rint(expected * 255)).max() <= 1
        assert np.abs(unc.ravel().astype(int) - np.rint((1 - (top2[:, 1] - top2[:, 0])) * 255)).max() <= 1
    else:
        np.testing.assert_allclose(proba.reshape(2, -1).T, expected, atol=1e-3)
        np.testing.assert_allclose(unc.ravel(), 1 - (top2[:, 1] - top2[:, 0]), atol=1e-3)
    assert not list(tmp_path.glob(".*")) and not list(out.glob(".*"))  # no partial outputs left


def test_train_iterations_report_the_change_on_the_central_crop(tmp_path, data):
    image, truth, _ = data
    first = _scribbles(truth, [15])
    second = _scribbles(truth, [3, 27], seed=2)
    second[15][first[15] > 0] = 3 - first[15][first[15] > 0]  # corrections override the first annotation
    result = classify.train(image, [first, second], features=SPEC, trees=9, compare_size=16, device="cpu",
                            model=tmp_path / "m.npz")
    merged = np.where(second > 0, second, first)
    assert result.samples == [int((first > 0).sum()), int((merged > 0).sum())]
    # reference: the same two forests trained directly, compared on the same crop
    whole = feat.compute_block(image, SPEC)
    crop = whole[(slice(None), *result.region)].reshape(SPEC.channels, -1).T
    preds = []
    for labels in (first, merged):
        z, y, x = np.nonzero(labels)
        preds.append(predictor.predict(crop, fo.train(whole[:, z, y, x].T, labels[z, y, x], trees=9, random_state=0)))
    assert result.changed == pytest.approx([np.mean(preds[0] != preds[1]) * 100], abs=1e-9)
    assert result.changed[0] > 0
    assert model_file.load(tmp_path / "m.npz").info["changed_percent"] == result.changed


def test_annotations_merge_in_order_and_check_classes():
    a = np.zeros((2, 4, 4), np.uint8)
    b = a.copy()
    a[0, 0, :2] = 1
    b[0, 0, 1:3] = 2
    s = scribble_io.read([a, b], a.shape)
    assert s.merged().tolist() == [1, 2, 2]
    assert s.merged(1).tolist() == [1, 1, 0]
    with pytest.raises(Exception, match="only class 1"):
        scribble_io.check_classes(s.merged(1), s.names)


# --------------------------------------------------------------------------- CLI and errors


@pytest.fixture
def files(tmp_path, data):
    image, truth, _ = data
    io.create_array(tmp_path / "v.zarr/raw", SHAPE, np.float32, (16, 16, 16))[:] = image
    tifffile.imwrite(tmp_path / "s1.tif", _scribbles(truth, [15]))
    tifffile.imwrite(tmp_path / "s2.tif", _scribbles(truth, [4, 25], seed=3))
    return tmp_path



def test_cli_train_then_predict(files, capsys):
    model = files / "m.npz"
    code = run_cli("train", files / "v.zarr/raw", "--labels", files / "s1.tif", "--labels", files / "s2.tif",
                   "--model", model, "--features", "gaussian:1.0,gradient:1.0,hessian:1.6", "--trees", "5",
                   "--class-names", "active", "pore", "--device", "cpu", "-q")
    out = capsys.readouterr().out
    assert code == 0 and "iteration 2" in out and "changed on" in out and "active" in out
    code = run_cli("predict", files / "v.zarr/raw", "--model", model, files / "o.zarr/labels",
                   "--probabilities", files / "o.zarr/p", "--device", "cpu", "--chunks", "16", "-q")
    assert code == 0
    assert io.open_array(files / "o.zarr/labels").shape == SHAPE
    # an existing output is refused, and stays
    code = run_cli("predict", files / "v.zarr/raw", "--model", model, files / "o.zarr/labels", "--device", "cpu", "-q")
    one_line_error(capsys, code, "already exists")


def test_cli_annotation_shape_mismatch(files, capsys):
    tifffile.imwrite(files / "bad.tif", np.ones((30, 34, 37), np.uint8))
    code = run_cli("train", files / "v.zarr/raw", "--labels", files / "bad.tif", "--model", files / "m.npz", "-q")
    one_line_error(capsys, code, "bad.tif", "differs from the tomogram")
    assert not (files / "m.npz").exists()


@pytest.mark.parametrize("values, words", [((0,), "no labelled voxels"), ((2,), "only class 2")])
def test_cli_annotations_with_one_class_or_none(files, capsys, values, words):
    lab = np.zeros(SHAPE, np.uint8)
    lab[10, :5, :5] = values[0]
    tifffile.imwrite(files / "one.tif", lab)
    code = run_cli("train", files / "v.zarr/raw", "--labels", files / "one.tif", "--model", files / "m.npz", "-q")
    one_line_error(capsys, code, "one.tif", words)


def test_cli_label_values_without_a_class_name(files, capsys):
    code = run_cli("train", files / "v.zarr/raw", "--labels", files / "s1.tif", "--model", files / "m.npz",
                   "--class-names", "active", "--features", "gaussian:1.0", "-q")
    one_line_error(capsys, code, "label value(s) [2]", "no class name")


def test_cli_3d_model_on_a_2d_input(files, capsys, data):
    image = data[0]
    model = files / "m.npz"
    assert run_cli("train", files / "v.zarr/raw", "--labels", files / "s1.tif", "--model", model,
                   "--features", "gaussian:1.0,hessian:1.6", "--trees", "3", "--device", "cpu", "-q") == 0
    np.save(files / "slice.npy", image[15:16])  # one slice of a volume (a 2-D image is refused as such)
    code = run_cli("predict", files / "slice.npy", "--model", model, files / "p.zarr", "--device", "cpu", "-q")
    one_line_error(capsys, code, "slice.npy", "--2d")
    assert not (files / "p.zarr").exists()


def test_cli_corrupt_model(files, capsys):
    (files / "m.npz").write_bytes(b"PK\x03\x04 truncated")
    code = run_cli("predict", files / "v.zarr/raw", "--model", files / "m.npz", files / "p.zarr", "-q")
    one_line_error(capsys, code, "m.npz")


@pytest.mark.parametrize("features, words", [
    ({"items": [["no_such_feature", 1.0]], "mode": "ilastik", "twod": False}, "feature specification is unreadable"),
    ({"items": [["gaussian_smoothing", 1.0]], "mode": "ilastik", "twod": False}, "give 1 channels but its forest takes 5"),
])
def test_cli_model_whose_features_do_not_fit_its_forest(files, capsys, reference, features, words):
    _, forest, _ = reference
    model_file.save(forest.replace(features=features), files / "m.npz")  # a valid file, checksum and all
    code = run_cli("predict", files / "v.zarr/raw", "--model", files / "m.npz", files / "p.zarr", "-q")
    one_line_error(capsys, code, "m.npz", words)


def test_twod_model_predicts_slices_like_2d_features(files, data):
    image, truth, _ = data
    scribbles = _scribbles(truth, [15])
    result = classify.train(image, scribbles, features="gaussian:1.0,hessian:1.6", twod=True, trees=5, device="cpu")
    spec = classify.spec_of(result.forest, "model")
    assert spec.twod and spec.halo[0] == 0
    one = classify.predict(image[14:17], result.forest, device="cpu").labels  # a 3-slice stack works in 2-D
    whole = classify.predict(image, result.forest, chunks=(1, 34, 38), device="cpu").labels
    np.testing.assert_array_equal(one, whole[14:17])


# --------------------------------------------------------------------------- accuracy


def test_accuracy_on_the_nmc1_phantom_beats_otsu():
    """Scribbles on 7 slices (10 % of each) on three independent low-SNR nmc-1 phantoms.

    The goal (accuracy ≥ 97 %, |fraction − true| ≤ 0.01) is checked on the mean over the three
    realizations, each of which must also stay within 1 % of it and beat Otsu by far. Measured
    (64³, default features, 100 trees): seeds 0–4 give 97.8, 97.3, 96.7, 97.4, 97.4 %; seed 2 alone
    misses (96.7 %, fraction +0.012), also with the 61 ilastik-full channels: that is this phantom's
    noise limit, not a training shortfall.
    """
    from skimage.filters import threshold_otsu

    from gpuseg import phantom

    accuracies, deviations = [], []
    for seed in range(3):
        raw, truth = phantom.make("nmc-1", (64, 64, 64), seed=seed)
        result = classify.train(raw, random_scribbles(truth, seed=seed), features="default", trees=100, device="cpu")
        active = classify.predict(raw, result.forest, chunks=32, device="cpu").labels == 1
        true_active = truth == 1
        accuracies.append(np.mean(active == true_active))
        deviations.append(abs(active.mean() - true_active.mean()))
        otsu = raw > threshold_otsu(raw)  # the active material is the brightest phase
        assert accuracies[-1] > np.mean(otsu == true_active) + 0.1
        assert accuracies[-1] >= 0.96
    assert np.mean(accuracies) >= 0.97, accuracies
    assert np.mean(deviations) <= 0.01, deviations


def test_accuracy_on_a_ct_simulation_of_the_real_geometry(nmc_geometry):
    """The same protocol on a simulated CT (nmc-1 noise) of the real NMC-1 geometry, central 64³.

    Measured: 96.0 % (seed 0) and 96.1 % (seed 1) active-material accuracy, fraction +0.008 / +0.013,
    Otsu 73-74 %: below the issue's 97 % / 0.01 goal; this test guards what is reached today.
    """
    from skimage.filters import threshold_otsu

    from gpuseg import phantom

    geometry = tifffile.imread(nmc_geometry)
    corner = [(s - 64) // 2 for s in geometry.shape]
    labels = geometry[tuple(slice(c, c + 64) for c in corner)]
    raw, truth = phantom.make("nmc-1", labels=labels, label_map={0: 3, 1: 1, 2: 2}, seed=0)
    result = classify.train(raw, random_scribbles(truth, seed=0), features="default", trees=100, device="cpu")
    active = classify.predict(raw, result.forest, chunks=32, device="cpu").labels == 1
    accuracy = np.mean(active == (truth == 1))
    assert accuracy >= 0.955
    assert abs(active.mean() - np.mean(truth == 1)) <= 0.015
    assert accuracy > np.mean((raw > threshold_otsu(raw)) == (truth == 1)) + 0.1


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("chunks", [None, 5, (7, 13, 38)])
def test_gpu_prediction_equals_sklearn(reference, data, chunks):
    clf, forest, X = reference
    expected = clf.predict_proba(X)
    result = classify.predict(data[0], forest, chunks=chunks, device="gpu")
    # GPU features differ from the CPU's in the last float32 bits: compare with a loose bound, labels nearly all
    np.testing.assert_allclose(result.probabilities.reshape(forest.n_classes, -1).T, expected, atol=0.02)
    assert np.mean(result.labels.ravel() == clf.predict(X)) > 0.999


@pytest.mark.gpu
def test_gpu_out_of_core_prediction_equals_cpu(tmp_path, reference, data):
    _, forest, _ = reference
    io.create_array(tmp_path / "v.zarr/raw", SHAPE, np.float32, (10, 10, 10))[:] = data[0]
    model = model_file.save(forest, tmp_path / "m.npz")
    for device in ("cpu", "gpu"):
        classify.predict(tmp_path / "v.zarr/raw", model, tmp_path / f"{device}.zarr/labels",
                         probabilities=tmp_path / f"{device}.zarr/p", chunks=(8, 12, 16), device=device)
    cpu, gpu = (io.open_array(tmp_path / f"{d}.zarr/labels")[:] for d in ("cpu", "gpu"))
    assert np.mean(cpu == gpu) > 0.999
    pc, pg = (io.open_array(tmp_path / f"{d}.zarr/p")[:].astype(int) for d in ("cpu", "gpu"))
    assert np.abs(pc - pg).max() <= 8 and np.mean(pc == pg) > 0.99


@pytest.mark.gpu
def test_gpu_training_gathers_the_same_features(data):
    image, truth, whole = data
    s = scribble_io.read(_scribbles(truth, [2, 20]), SHAPE)
    X = samples.gather(image, s, SPEC, block=16, device="gpu")
    z, y, x = s.coords().T
    np.testing.assert_allclose(X, whole[:, z, y, x].T, rtol=1e-4, atol=1e-3)


def test_killed_prediction_resumes_to_the_same_bytes(tmp_path, reference, data):
    import subprocess
    import sys

    _, forest, _ = reference
    io.create_array(tmp_path / "v.zarr/raw", (20, 24, 24), np.float32, (10, 12, 12))[:] = data[0][:20, :24, :24]
    model = model_file.save(forest, tmp_path / "m.npz")
    # one work block per chunk (8 blocks), so that the crash comes half-way
    argv = ["predict", str(tmp_path / "v.zarr/raw"), "--model", str(model), "--device", "cpu", "--scheduler",
            "synchronous", "-q"]

    def run(out, crash=None):
        killer = [sys.executable, "-m", "tests.killer", "block:written", str(crash or 10**9), "--one-block-per-chunk"]
        return subprocess.run([*killer, *argv, f"{out}/labels", "--probabilities", f"{out}/p", "--uncertainty",
                               f"{out}/u"], capture_output=True, cwd=ROOT).returncode

    assert run(tmp_path / "a.zarr", crash=5) == 137
    assert not (tmp_path / "a.zarr/labels").exists()
    assert len(list((tmp_path / "a.zarr").glob(".labels.partial.zarr/.gpuseg-done/*"))) == 4  # resumes from here
    assert len(list((tmp_path / "a.zarr").glob(".p.partial.zarr/.gpuseg-done/*"))) == 4
    assert run(tmp_path / "a.zarr") == 0
    assert run(tmp_path / "b.zarr") == 0
    for name in ("labels", "p", "u"):
        np.testing.assert_array_equal(io.open_array(tmp_path / f"a.zarr/{name}")[:], io.open_array(tmp_path / f"b.zarr/{name}")[:])
    assert not list((tmp_path / "a.zarr").glob(".*"))
