"""The prediction of one z slice, fast enough to follow a painter's strokes (the napari widget's live preview).

Three steps, each reusing what the block engine and :func:`gpuseg.classify.train` use:

* **Features of a slice**, computed once per slice and kept (:class:`SlicePreview` caches them within a memory
  budget): the region ``(z, all y, all x)`` read with the feature set's halo and clipped to the volume, filtered
  by :func:`gpuseg.classify.samples.region_features` — how the engine reads and filters any block that holds the
  slice, so the values equal the full volume's features on that slice (the kernels never reach past the halo).
* **A forest trained on the painted voxels only**, their feature vectors taken from the cached slices, in the
  order of their flat index as :func:`gpuseg.classify.train` orders them, through the same
  :func:`gpuseg.classify.forest.train`: the forest equals ``classify.train(image, scribbles, trees=N)``'s.
* **The slice predicted** by :func:`gpuseg.classify.pixel.classify_rows`, as every block of ``gpuseg predict``:
  the labels equal :func:`gpuseg.classify.predict`'s on that slice for the
  same forest (on the CPU; a GPU run's float32 sums may break ties otherwise).

Examples
--------
>>> import numpy as np
>>> from gpuseg import classify
>>> rng = np.random.default_rng(0)
>>> truth = (np.indices((24, 24, 24)).sum(axis=0) > 34).astype(np.uint8) + 1
>>> image = (truth * 60.0 + rng.normal(0, 10, truth.shape)).astype(np.float32)
>>> scribbles = np.zeros_like(truth); scribbles[12, ::3, ::3] = truth[12, ::3, ::3]
>>> preview = SlicePreview(image, "gaussian:1.0,gaussian:1.6", device="cpu")
>>> forest = preview.train(scribbles, trees=5)
>>> shown = preview.predict(12, forest)
>>> whole = classify.predict(image, forest, device="cpu")
>>> bool(np.array_equal(shown.labels, whole.labels[12])), bool(np.array_equal(shown.uncertainty, whole.uncertainty[12]))
(True, True)
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import InputError
from . import forest as fo
from . import samples
from .pixel import check_fits, classify_rows, feature_spec
from .scribbles import check_classes

PREVIEW_TREES = 20
"""Trees of a live forest when none are asked for: trained and predicted on a 512² slice within about a second."""
CACHE_BYTES = 512 << 20
"""Host memory the cached slices' feature stacks may take together (20 channels of 512²: 21 MiB a slice)."""


@dataclasses.dataclass(frozen=True)
class SlicePrediction:
    """One slice's prediction.

    Attributes
    ----------
    z : int
        The slice.
    labels : (y, x) uint8
        Class values.
    uncertainty : (y, x) float32
        ``1 − (p₁ − p₂)``: 0 = sure, 1 = a tie (as ``gpuseg predict --uncertainty``).
    probabilities : (K, y, x) float32
        Per-class probabilities, in the order of ``forest.classes``.
    """

    z: int
    labels: np.ndarray
    uncertainty: np.ndarray
    probabilities: np.ndarray


def painted_slices(labels: Any) -> list[int]:
    """The z slices of an annotation volume holding at least one labelled voxel.

    Examples
    --------
    >>> a = np.zeros((4, 3, 3), np.uint8); a[1, 0, 0] = 2; a[3, 2, 1] = 1
    >>> painted_slices(a)
    [1, 3]
    """
    return np.flatnonzero(np.asarray(labels).any(axis=(1, 2))).tolist()


class SlicePreview:
    """Features of the slices of one image, cached; forests trained on painted voxels; slices predicted.

    Parameters
    ----------
    image : array-like (z, y, x)
        The tomogram (numpy, zarr or dask: only the slabs around the slices asked for are read).
    features : str or FeatureSpec
        As :func:`gpuseg.classify.train` takes them.
    twod, mode : see :func:`gpuseg.features.parse_features`.
    device : {"auto", "cpu", "gpu"}
        Where the features are computed (the forest always runs on the CPU).
    cache_bytes : int
        Memory the cached feature stacks may take; the least recently used slice goes first.
    name : str
        What errors call the image.

    Raises
    ------
    InputError
        The image is not 3-D, or too small for the features.
    """

    def __init__(self, image: Any, features: Any = "default", *, twod: bool = False, mode: str = "ilastik",
                 device: str = "auto", cache_bytes: int = CACHE_BYTES, name: str = "the image"):
        if len(image.shape) != 3:
            raise InputError(f"{name}: expected a 3-D volume (z, y, x), found shape {tuple(image.shape)}")
        self.image, self.name = image, name
        self.shape = tuple(int(n) for n in image.shape)
        self.spec = feature_spec(features, twod=twod, mode=mode)
        check_fits(self.spec, self.shape, name)
        self.device = backend.resolve(device).name  # decided once, not per slice
        self.cache_bytes = int(cache_bytes)
        self._stacks: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        # z -> (flat indices in the slice, their feature rows): the painted voxels of slices no longer cached
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ features

    def features(self, z: int) -> np.ndarray:
        """The feature rows ``(y·x, C)`` float32 of slice ``z`` (computed on first use, then cached)."""
        z = self._check_slice(z)
        if z in self._stacks:
            self._stacks.move_to_end(z)
            return self._stacks[z]
        region = (slice(z, z + 1), slice(0, self.shape[1]), slice(0, self.shape[2]))
        rows = samples.region_features(self.image, region, self.spec, self.device, self.name)
        self._stacks[z] = rows
        while len(self._stacks) > 1 and sum(s.nbytes for s in self._stacks.values()) > self.cache_bytes:
            self._stacks.popitem(last=False)
        return rows

    def cached(self, z: int) -> bool:
        """Whether slice ``z``'s features are in memory (a preview of it needs no filtering)."""
        return z in self._stacks

    def _check_slice(self, z: int) -> int:
        z = int(z)
        if not 0 <= z < self.shape[0]:
            raise InputError(f"{self.name}: slice {z} is outside its {self.shape[0]} slices")
        return z

    # ------------------------------------------------------------------ training

    def samples(self, labels: Any, slices: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Feature vectors ``(N, C)`` and class values ``(N,)`` of the painted voxels, in flat-index order.

        Parameters
        ----------
        labels : array-like (z, y, x)
            The annotation volume (0 = unlabelled), of the image's shape.
        slices : iterable of int, optional
            The slices holding painted voxels (default: found by scanning ``labels``).
        """
        if tuple(labels.shape) != self.shape:
            raise InputError(f"the scribbles' shape {tuple(labels.shape)} differs from {self.name}'s {self.shape}; "
                             "paint on a labels layer of the image's shape")
        if np.dtype(labels.dtype).kind not in "iub":
            raise InputError(f"the scribbles hold {labels.dtype} values: paint integer class values 1..255")
        chosen = painted_slices(labels) if slices is None else sorted({self._check_slice(z) for z in slices})
        features, values = [], []
        for z in chosen:
            plane = np.asarray(labels[z]).reshape(-1)
            index = np.flatnonzero(plane)
            if not len(index):
                self._rows.pop(z, None)
                continue
            if plane[index].max() > 255 or plane[index].min() < 0:
                raise InputError(f"slice {z} of the scribbles holds values beyond 1..255: paint class values 1..255")
            features.append(self._rows_at(z, index))
            values.append(plane[index].astype(np.uint8))
        if not features:
            return np.zeros((0, self.spec.channels), np.float32), np.zeros(0, np.uint8)
        return np.concatenate(features), np.concatenate(values)

    def _rows_at(self, z: int, index: np.ndarray) -> np.ndarray:
        """Feature rows of the voxels ``index`` (flat, sorted) of slice ``z``: from the cached stack, else from
        the rows kept for the slice's earlier painted voxels when they hold them all, else from a new stack."""
        kept = self._rows.get(z)
        if z not in self._stacks and kept is not None:
            where = np.searchsorted(kept[0], index)
            if np.all(where < len(kept[0])) and np.array_equal(kept[0][np.minimum(where, len(kept[0]) - 1)], index):
                return kept[1][where]
        rows = self.features(z)[index]
        self._rows[z] = (index, rows)
        return rows

    def train(self, labels: Any, slices: Iterable[int] | None = None, *, trees: int = PREVIEW_TREES,
              random_state: int = 0, workers: int | None = None,
              class_names: Sequence[str] | None = None) -> fo.Forest:
        """A forest of ``trees`` trees trained on the painted voxels of ``labels``.

        The same samples in the same order as :func:`gpuseg.classify.train` takes from the same annotation
        volume, through the same :func:`gpuseg.classify.forest.train`: with ``trees=N`` both give one forest.

        Raises
        ------
        InputError
            Fewer than two classes painted, or scribbles of another shape than the image.
        """
        return self.fit(*self.samples(labels, slices), trees=trees, random_state=random_state, workers=workers,
                        class_names=class_names)

    def fit(self, X: np.ndarray, y: np.ndarray, *, trees: int = PREVIEW_TREES, random_state: int = 0,
            workers: int | None = None, class_names: Sequence[str] | None = None) -> fo.Forest:
        """A forest trained on samples from :meth:`samples` (:meth:`train` in two steps, to look at them between).

        Raises
        ------
        InputError
            Fewer than two classes.
        """
        check_classes(y, ["the scribbles"])
        return fo.train(X, y, trees=trees, random_state=random_state, workers=workers, class_names=class_names,
                        spec=self.spec.to_dict())

    # ------------------------------------------------------------------ prediction

    def predict(self, z: int, forest: fo.Forest) -> SlicePrediction:
        """Labels, uncertainty and probabilities of slice ``z`` by ``forest`` (trained on this preview's features).

        Raises
        ------
        InputError
            The forest was trained on other features.
        """
        if forest.n_features != self.spec.channels or (forest.features and dict(forest.features) != self.spec.to_dict()):
            raise InputError(f"the model was trained on other features ({forest.n_features} channels) than the "
                             f"preview computes ({self.spec.channels}); choose the model's features")
        found = classify_rows(self.features(z), forest, self.shape[1:], "float32",
                              want=("labels", "probabilities", "uncertainty"))  # as every block of gpuseg predict
        return SlicePrediction(z=int(z), **found)
