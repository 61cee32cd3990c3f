"""The live preview's core (gpuseg.classify.preview), without Qt: each result against the full-volume reference."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg import classify, features
from gpuseg.classify.preview import SlicePreview, painted_slices
from gpuseg.classify.scribbles import random_scribbles
from gpuseg.errors import InputError

SPEC = "gaussian:1.0,gradient:1.6,hessian:1.6"


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(3)
    zz, yy, xx = np.indices((26, 40, 36))
    truth = (1 + ((zz - 13) ** 2 + (yy - 20) ** 2 + (xx - 18) ** 2 < 100) + (yy > 30)).astype(np.uint8)
    image = (truth * 50.0 + rng.normal(0, 12, truth.shape)).astype(np.float32)
    return image, truth, random_scribbles(truth, 0.15, seed=1)


@pytest.mark.parametrize("twod", [False, True])
def test_slice_features_equal_the_volume_features_on_that_slice(volume, twod):
    image = volume[0]
    preview = SlicePreview(image, SPEC, twod=twod, device="cpu")
    whole = features.compute(image, features.parse_features(SPEC, twod=twod), device="cpu")
    for z in (0, 1, 13, image.shape[0] - 1):  # the volume's faces clip the halo as the engine clips it
        rows = preview.features(z)
        assert np.array_equal(rows, whole[:, z].reshape(whole.shape[0], -1).T), z


def test_live_forest_equals_trains_and_preview_equals_predict(volume):
    image, _, scribbles = volume
    preview = SlicePreview(image, SPEC, device="cpu", cache_bytes=1)  # keeps one slice: painted rows are reused
    forest = preview.train(scribbles, trees=7)
    reference = classify.train(image, scribbles, features=SPEC, trees=7, device="cpu").forest
    assert forest.digest() == reference.digest()
    again = preview.train(scribbles, painted_slices(scribbles), trees=7)  # from the kept rows, not the stacks
    assert again.digest() == reference.digest()
    whole = classify.predict(image, reference, device="cpu")
    for z in (0, 12, image.shape[0] - 1):
        shown = preview.predict(z, forest)
        assert np.array_equal(shown.labels, whole.labels[z])
        assert np.array_equal(shown.uncertainty, whole.uncertainty[z])
        assert np.array_equal(shown.probabilities, whole.probabilities[:, z])


def test_cache_stays_within_its_budget(volume):
    image = volume[0]
    per_slice = features.parse_features(SPEC).channels * image.shape[1] * image.shape[2] * 4
    preview = SlicePreview(image, SPEC, device="cpu", cache_bytes=2 * per_slice)
    for z in range(5):
        preview.features(z)
    assert [z for z in range(5) if preview.cached(z)] == [3, 4]


def test_bad_input_is_an_input_error(volume):
    image, truth, scribbles = volume
    preview = SlicePreview(image, SPEC, device="cpu")
    one_class = np.where(scribbles == 1, 1, 0).astype(np.uint8)
    with pytest.raises(InputError, match="only class 1 is labelled"):
        preview.train(one_class)
    with pytest.raises(InputError, match="no labelled voxels"):
        preview.train(np.zeros_like(scribbles))
    with pytest.raises(InputError, match="differs from"):
        preview.train(scribbles[:, :20])
    with pytest.raises(InputError, match="outside"):
        preview.features(image.shape[0])
    other = SlicePreview(image, "gaussian:1.0", device="cpu").train(scribbles, trees=2)
    with pytest.raises(InputError, match="other features"):
        preview.predict(3, other)
    with pytest.raises(InputError, match="3-D"):
        SlicePreview(image[0], SPEC)
    with pytest.raises(InputError, match="too few"):
        SlicePreview(image[:4], "gaussian:3.5")
