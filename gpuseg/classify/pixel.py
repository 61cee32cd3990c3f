"""Random-forest pixel classification (ilastik's method): train on scribbles, predict every voxel, block by block.

Training computes features only around labelled voxels: the labelled voxels are grouped
by block, each group's bounding box grown by the features' halo is read and filtered, and
the feature vectors of the labelled voxels are kept — never a feature stack of the volume.
Several annotations train iteratively (the study's protocol: central slice first, then
corrections on six more slices): after each, the forest predicts a central crop and the
percentage of its voxels whose label changed since the previous iteration is reported.

Prediction runs :func:`classify_block` on every halo'd block: features of the padded
block, cropped to the core, through the forest (:mod:`gpuseg.classify.predictor`:
scikit-learn's traversal on the CPU, the CUDA kernel on the GPU), to labels (uint8 class values,
argmax), optionally per-class probabilities (uint8 0–255 or float16) and an uncertainty
``1 − (p₁ − p₂)`` (ilastik's margin uncertainty: 0 = sure, 1 = a tie).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> truth = (np.indices((24, 24, 24)).sum(axis=0) > 34).astype(np.uint8) + 1
>>> image = (truth * 60.0 + rng.normal(0, 10, truth.shape)).astype(np.float32)
>>> scribbles = np.zeros_like(truth); scribbles[12, ::3, ::3] = truth[12, ::3, ::3]
>>> result = train(image, scribbles, features="gaussian:1.0,gaussian:1.6", trees=10, device="cpu")
>>> labels = predict(image, result.forest, device="cpu").labels
>>> bool((labels == truth).mean() > 0.95)
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from typing_extensions import Unpack

from .. import backend, validate
from .. import features as feat
from ..engine import Operation, Result, RunOptions, is_path, outputs, process, staging
from ..errors import InputError, OutputError, ParameterError
from ..io import ilastik
from ..io.paths import parse
from ..volumes import central_region
from . import forest as fo
from . import model_file, predictor, samples, sizing
from .defaults import COMPARE_SIZE, GROWN_TREES, MAX_TREES, PROB_DTYPES
from .scribbles import check_classes
from .scribbles import read as read_scribbles

log = logging.getLogger("gpuseg")

SIZING_SAMPLE = 1 << 16
"""Unlabelled voxels of the central crop the forest is sized on (a random sample of the 64³ crop's): at
99.9 % agreement their binomial standard error is 0.012 %, far inside the margin, at a quarter of the time."""
SIZING_BLOCK = 16
"""Edge of the blocks whose disagreements count as one cluster in the agreement's standard error
(the ``default`` features reach σ = 10: neighbouring voxels flip together)."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    forest : Forest
        The forest of the last iteration (trained on all annotations).
    samples : list of int
        Labelled voxels trained on, per iteration.
    changed : list of float
        Per iteration after the first: percentage of the comparison region's voxels whose
        predicted label changed from the previous iteration.
    region : tuple of slice
        The comparison region: a central crop of ``compare_size`` voxels per axis.
    model : str or None
        The model file written.
    """

    forest: fo.Forest
    samples: list[int]
    changed: list[float]
    region: tuple[slice, ...]
    model: str | None = None


@dataclasses.dataclass(frozen=True)
class Prediction:
    """In-memory prediction: labels (z, y, x) uint8, probabilities (K, z, y, x), uncertainty (z, y, x)."""

    labels: Any
    probabilities: Any
    uncertainty: Any


# --------------------------------------------------------------------------- feature specification


def feature_spec(features: Any = "default", *, twod: bool = False, mode: str = "ilastik", ilp: str | None = None):
    """A ``FeatureSpec`` from a spec, a text (``default``, ``ilastik-full``, a list) or an ilastik project."""
    if ilp is not None:
        sel = ilastik.feature_selection(ilp)
        spec = feat.from_selection_matrix(sel.matrix, sel.scales, feature_ids=sel.feature_ids,
                                          compute_in_2d=sel.compute_in_2d or None, mode=mode)
        return dataclasses.replace(spec, twod=True) if twod and not spec.twod else spec
    if isinstance(features, feat.FeatureSpec):
        return features
    return feat.parse_features(str(features), mode=mode, twod=twod)


def check_fits(spec, shape: Sequence[int], name: str) -> None:
    """Raise unless the features' kernels fit in a volume of ``shape`` (e.g. a 3-D model on a 2-D image)."""
    for axis, (n, h) in enumerate(zip(shape, spec.halo)):
        if h and n <= h:
            if axis == 0:
                raise InputError(f"{name}: {n} slice(s) are too few for 3-D features reaching {h} slices; "
                                 "use 2-D features (--2d, or a model trained with --2d)")
            raise InputError(f"{name}: {n} voxels along axis {'zyx'[axis]} are too few for features reaching {h}; use smaller scales")


def spec_of(forest: fo.Forest, where: str):
    """The feature specification stored with ``forest``, checked against the forest."""
    try:
        spec = feat.FeatureSpec.from_dict(dict(forest.features))
    except (InputError, ParameterError, TypeError) as exc:
        raise InputError(f"{where}: the model's feature specification is unreadable ({exc}); train it again") from None
    if spec.channels != forest.n_features:
        raise InputError(f"{where}: the model's features give {spec.channels} channels but its forest takes "
                         f"{forest.n_features}; train it again")
    return spec


# --------------------------------------------------------------------------- training


def _class_names(classes: Sequence[int], names: Sequence[str] | None, where: str) -> list[str]:
    if not names:
        return [str(c) for c in classes]
    unknown = [c for c in classes if c > len(names)]
    if unknown:
        raise InputError(f"{where}: label value(s) {unknown} have no class name (names: {', '.join(names)}); "
                         "name every class or relabel")
    return [names[c - 1] for c in classes]


@contextlib.contextmanager
def _readable(image, scratch_beside: str | None, progress: bool, scheduler: str | None = None):
    """``image`` as something sliceable: arrays as they are, paths as the engine reads them (whole in
    memory when small, else through zarr: :func:`gpuseg.engine.staging.open_input`)."""
    if not isinstance(image, (str, os.PathLike)):
        yield np.asarray(image) if not hasattr(image, "__cuda_array_interface__") else image
        return
    beside = scratch_beside or os.fspath(image)
    with staging.open_input(image, beside + ".train", progress=progress, scheduler=scheduler) as arr:
        yield arr


def train(
    image: Any,
    labels: Any,
    *,
    features: Any = "default",
    twod: bool = False,
    mode: str = "ilastik",
    ilp: str | None = None,
    trees: int | None = None,
    full_forest: bool = False,
    random_state: int = 0,
    class_names: Sequence[str] | None = None,
    model: str | os.PathLike | None = None,
    compare_size: int = COMPARE_SIZE,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> TrainResult:
    """Train a random forest on scribbles, iteratively over several annotations, and save it.

    Parameters
    ----------
    image : array or path
        The tomogram.
    labels : array, path, or a sequence of them
        Annotations (0 = unlabelled; volumes of the tomogram's shape, or ``.ilp`` projects).
        With several, iteration *i* trains on the first *i* merged (later ones override).
    features : str or FeatureSpec
        ``default``, ``ilastik-full`` or a list such as ``gaussian:1.0,hessian:3.5``.
    twod, mode : see :func:`gpuseg.features.parse_features`.
    ilp : path, optional
        Take the feature selection (and class names) from this ilastik project.
    trees : int, optional
        Grow and keep exactly this many trees. By default :data:`GROWN_TREES` are grown and the
        forest is sized by the data: the fewest first trees (and a cut depth, where that saves
        node visits) whose labels agree with the grown forest's on 99.9 % of the unlabelled
        voxels of the central crop (:func:`gpuseg.classify.sizing.size`).
    full_forest : bool
        Keep every tree grown (no sizing).
    random_state : int
        Seed of the forest.
    class_names : sequence of str, optional
        Name of class value 1, 2, …; default: the project's label names, else the values.
    model : path, optional
        Where to write the model file (``.npz``).
    compare_size : int
        Edge of the central crop on which iterations are compared.
    device, chunks, scheduler, workers, progress
        Where and how features are computed (``chunks``: grouping block, default 64³);
        ``workers`` also sets scikit-learn's training threads.

    Returns
    -------
    TrainResult
    """
    if trees is not None:
        trees = validate.integer("--trees", trees, at_least=1, at_most=MAX_TREES)
    validate.integer("--seed", random_state, at_least=0, at_most=2**32 - 1)
    explicit_names = class_names is not None
    spec = feature_spec(features, twod=twod, mode=mode, ilp=ilp)
    sources = list(labels) if isinstance(labels, (list, tuple)) else [labels]
    if not sources:
        raise ParameterError("train needs at least one annotation")
    if model is not None:
        outputs.check_distinct(model, [p for p in (image, *sources, ilp) if is_path(p)])
        outputs.check_new(model, overwrite)
    if class_names is None:
        project = ilp or next((os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))
                               and os.fspath(s).lower().endswith(".ilp")), None)
        class_names = ilastik.label_names(project) if project else None
    with _readable(image, os.fspath(model) if model else None, progress, scheduler) as arr:
        shape = tuple(arr.shape)
        name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else "image"
        if len(shape) != 3:
            raise InputError(f"{name}: expected a 3-D volume (z, y, x), found shape {shape}")
        check_fits(spec, shape, name)
        scribbles = read_scribbles(sources, shape)
        for i in range(len(sources)):  # every iteration must see two classes, before any features are computed
            check_classes(scribbles.merged(i + 1), scribbles.names[: i + 1])
        present = np.unique(scribbles.merged()).tolist()
        if explicit_names and class_names is not None and len(class_names) > max(present):
            raise ParameterError(f"--class-names gives {len(class_names)} names but the scribbles hold class values "
                                 f"{', '.join(map(str, (c for c in present if c)))}; name classes 1..{max(present)}")
        _class_names(present, class_names, ", ".join(scribbles.names))
        X = samples.gather(arr, scribbles, spec, block=chunks or samples.GATHER_BLOCK, device=device,
                           scheduler=scheduler, workers=workers, progress=progress, name=name)
        region = central_region(shape, [min(compare_size, n) for n in shape])
        X_compare = samples.region_features(arr, region, spec, device, name)
    compare = len(sources) > 1  # the change between iterations is measured on the whole crop
    forest, previous, current, counts, changed = None, None, None, [], []
    for i in range(len(sources)):
        merged = scribbles.merged(i + 1)
        keep = merged > 0
        classes = np.unique(merged[keep]).tolist()
        names = _class_names(classes, class_names, ", ".join(scribbles.names[: i + 1]))
        forest = fo.train(X[keep], merged[keep], trees=trees or GROWN_TREES, random_state=random_state,
                          workers=workers, class_names=names, spec=spec.to_dict())
        counts.append(int(keep.sum()))
        if not compare:  # one iteration: nothing to compare; the sizing predicts the crop's voxels it samples
            continue
        current = predictor.predict(X_compare, forest)
        if previous is not None:
            changed.append(float(np.mean(current != previous) * 100))
            log.debug("iteration %d (%s): %.2f %% of the central %s crop changed label", i + 1, scribbles.names[i],
                      changed[-1], "x".join(str(s.stop - s.start) for s in region))
        previous = current
    assert forest is not None  # sources is not empty (checked above)
    forest, sizing = _size(forest, trees, full_forest, X_compare, current, region, scribbles)
    forest = forest.replace(info={**forest.info, "annotations": list(scribbles.names), "changed_percent": changed,
                                  "size": sizing})
    if model is not None:
        model_file.save(forest, model)
    return TrainResult(forest, counts, changed, region, os.fspath(model) if model else None)


def _size(forest: fo.Forest, trees: int | None, full_forest: bool, X_compare: Any, current: Any,
          region: tuple[slice, ...], scribbles: Any) -> tuple[fo.Forest, dict[str, Any]]:
    """The forest to keep, and how its size was chosen (stored as the model's ``info["size"]``).

    ``current``: the grown forest's labels of the whole crop, when the iterations were compared (None:
    only the voxels sampled here are predicted, a quarter of a 64³ crop's).
    """
    crop = tuple(s.stop - s.start for s in region)
    where = f"central {crop[0]}³ crop" if len(set(crop)) == 1 else f"central {'x'.join(map(str, crop))} crop"
    base = {"grown_trees": forest.n_trees, "region": where}
    if trees is not None or full_forest:
        return forest, {**base, "method": "fixed" if trees is not None else "full", "trees": forest.n_trees}
    coords = scribbles.coords()
    lo = np.array([s.start for s in region])
    inside = np.all((coords >= lo) & (coords < lo + np.array(crop)), axis=1)
    unlabelled = np.ones(int(np.prod(crop)), bool)
    unlabelled[np.ravel_multi_index(tuple((coords[inside] - lo).T), crop)] = False
    if not unlabelled.any():
        return forest, {**base, "method": "full", "trees": forest.n_trees,
                        "why": "every voxel of the crop is labelled: no sample to size the forest on"}
    blocks = np.indices(crop).reshape(3, -1) // SIZING_BLOCK
    groups = np.ravel_multi_index(tuple(blocks), tuple(-(-n // SIZING_BLOCK) for n in crop))
    rows = np.flatnonzero(unlabelled)
    if len(rows) > SIZING_SAMPLE:  # a random sample of them: the cost of sizing stays that of a small crop
        rows = np.sort(np.random.default_rng(0).choice(rows, SIZING_SAMPLE, replace=False))
    if current is None:  # on the features' device, as the whole crop would be predicted
        labels = backend.to_host(predictor.predict(X_compare[backend.for_array(X_compare).xp.asarray(rows)], forest))
    else:
        labels = backend.to_host(current)[rows]
    kept, record = sizing.size(forest, backend.to_host(X_compare)[rows], labels, groups=groups[rows])
    log.debug("kept %d of %d trees, depth %d of %d: %.4f agreement on %d voxels", record.trees,
              record.grown_trees, record.depth, record.grown_depth, record.agreement, record.sample)
    return kept, {**base, "method": "agreement", **record.to_dict()}


# --------------------------------------------------------------------------- prediction


_LOADED: dict[tuple[str, str], fo.Forest] = {}  # (path, sha256) → forest: each process loads a model file once


def _load_checked(path: str, sha: str | None = None) -> fo.Forest:
    """The forest in the model file at ``path`` (``sha``: the file the run started with), loaded once per process.

    ``predict`` loads the file to plan the run; its blocks, in the same process (threads) or in workers, find it
    here rather than parse the file again.
    """
    found = _LOADED.get((path, sha)) if sha is not None else None
    if found is not None:
        return found
    forest = model_file.load(path)
    actual = forest.info.get("sha256", sha)
    if sha is not None and actual != sha:
        raise InputError(f"{path}: the model file changed during the run; run again")
    if len(_LOADED) >= 4:  # a long-lived worker sees many models over time: keep the latest few
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[(path, actual)] = forest
    return forest


def _forest_of(model: Any) -> fo.Forest:
    if isinstance(model, fo.Forest):
        return model
    return _load_checked(model["path"], model["sha256"])


def _to_dtype(xp: Any, p: Any, dtype: str) -> Any:
    if dtype == "uint8":
        return xp.rint(xp.clip(p, 0, 1) * 255).astype(xp.uint8)
    return p.astype(xp.dtype(dtype))


def top_two(proba: Any) -> tuple[Any, Any, Any]:
    """Index of the largest, the largest and the second largest of ``proba`` (K, N) along K.

    Two max passes instead of a partition: with K of 2 or 3 classes a partition sorts every
    column. Ties take the first index, as ``argmax`` does.

    Examples
    --------
    >>> p = np.array([[0.2, 0.5], [0.7, 0.5], [0.1, 0.0]], np.float32)
    >>> [a.tolist() for a in top_two(p)]
    [[1, 0], [0.699999988079071, 0.5], [0.20000000298023224, 0.5]]
    """
    xp = backend.for_array(proba).xp
    best = xp.argmax(proba, axis=0)
    first = xp.max(proba, axis=0)
    rows = xp.arange(proba.shape[0]).reshape(-1, 1)
    second = xp.max(xp.where(rows == best[None], -xp.inf, proba), axis=0)
    return best, first, second


def classify_block(image: Any, *, model: Any, spec: Any, prob_dtype: str = "uint8",
                   want: Sequence[str] = ("labels",), block: Any = None, **_: Any) -> dict[str, Any]:
    """Labels, and as ``want`` asks, probabilities and uncertainty of one padded block's core.

    Probabilities ``(K, z, y, x)`` and the uncertainty ``1 − (p₁ − p₂)`` come in ``prob_dtype``
    (uint8 0–255, float16, or float32 in memory); labels are the class values (uint8).
    """
    spec = feat.FeatureSpec.from_dict(spec) if isinstance(spec, dict) else spec
    xp = backend.for_array(image).xp
    inner = block.inner if block is not None else None
    stackf = xp.ascontiguousarray(feat.compute_block(image, spec, inner=inner))
    return classify_rows(stackf.reshape(spec.channels, -1).T, _forest_of(model), stackf.shape[1:], prob_dtype, want)


def classify_rows(X: Any, forest: fo.Forest, core: Sequence[int], prob_dtype: str = "uint8",
                  want: Sequence[str] = ("labels",)) -> dict[str, Any]:
    """Labels, and as ``want`` asks, probabilities and uncertainty of feature rows ``X`` ``(N, channels)``, the
    voxels of a region of shape ``core`` in C order (a block's, or a slice's in the napari preview)."""
    xp = backend.for_array(X).xp
    k = forest.n_classes
    proba = xp.empty((k, X.shape[0]), predictor.proba_dtype(X))  # channel-major (K, N), written in place
    predictor.predict_proba(X, forest, out=proba.T)
    core = tuple(core)
    if "uncertainty" in want:  # the two largest of every voxel: only when asked for
        best, first, second = top_two(proba)
        out = {"uncertainty": _to_dtype(xp, (1 - (first - second)).reshape(core), prob_dtype)}
    else:
        best, out = xp.argmax(proba, axis=0), {}
    out["labels"] = xp.asarray(forest.classes.astype(np.uint8))[best].reshape(core)
    if "probabilities" in want:
        out["probabilities"] = _to_dtype(xp, proba.reshape((k, *core)), prob_dtype)
    return {name: out[name] for name in want}


PREDICT = Operation(
    "classify", classify_block, halo=lambda p: feat.FeatureSpec.from_dict(p["spec"]).halo,
    results={"labels": Result(np.uint8),
             "probabilities": Result(lambda p, _: p["prob_dtype"], lambda p: (p["n_classes"],)),
             "uncertainty": Result(lambda p, _: p["prob_dtype"], named=False)},
    device_bytes_per_voxel=lambda p: feat.device_bytes_per_voxel(p["channels"]) + 8 * p["n_classes"],
    host_bytes_per_voxel=lambda p: 4 * p["channels"] + 8 * p["n_classes"] + 16, takes_block=True,
)


def predict(
    image: Any,
    model: Any,
    output: str | os.PathLike | None = None,
    *,
    probabilities: str | os.PathLike | None = None,
    prob_dtype: str = "uint8",
    uncertainty: str | os.PathLike | None = None,
    **options: Unpack[RunOptions],
):
    """Classify every voxel of ``image`` with a trained forest, block by block.

    Parameters
    ----------
    image : array or path
    model : Forest or path to a model file
    output : path, optional
        Labels (uint8 class values); required for a path ``image``. With an array
        ``image`` and no output, all results are returned in memory.
    probabilities : path, optional
        Per-class probabilities ``(K, z, y, x)``, ``prob_dtype`` uint8 (0–255) or float16.
    uncertainty : path, optional
        ``1 − (p₁ − p₂)`` in the same dtype.
    **options
        device, chunks, scheduler, workers, overwrite, progress (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    Prediction or str
        In memory: a :class:`Prediction` (probabilities float32, uncertainty float32); else the output path.
    """
    if prob_dtype not in PROB_DTYPES:
        raise ParameterError(f"probability dtype {prob_dtype!r}: use one of {', '.join(PROB_DTYPES)}")
    where = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "model"
    forest = model if isinstance(model, fo.Forest) else _load_checked(os.path.abspath(where))
    spec = spec_of(forest, where)
    ref = {"path": os.path.abspath(where), "sha256": forest.info["sha256"]} if isinstance(model, (str, os.PathLike)) else forest
    params = {"model": ref, "spec": spec.to_dict(), "prob_dtype": prob_dtype, "n_classes": forest.n_classes,
              "channels": spec.channels}
    if not is_path(image) and output is None:
        check_fits(spec, image.shape, "image")
        result = process(PREDICT, {**params, "prob_dtype": "float32"}, image,
                         want=("labels", "probabilities", "uncertainty"), **options)
        return Prediction(result["labels"], result["probabilities"], result["uncertainty"])
    if output is None:
        raise ParameterError("predict on a path needs an output path for the labels")
    if uncertainty is not None and prob_dtype == "float16" and parse(uncertainty).kind != "zarr":
        raise OutputError(f"{uncertainty}: float16 is not written to TIFF; write it to zarr, or use --prob-dtype uint8")
    name = os.fspath(image)
    process(PREDICT, params, image, output, extra={"probabilities": probabilities, "uncertainty": uncertainty},
            check=lambda src: check_fits(spec, src.shape, name),
            attrs={"model": where, "classes": forest.classes.tolist(), "class_names": list(forest.class_names)}, **options)
    return os.fspath(output)
