"""Random-forest pixel classification (ilastik's method): train on scribbles, predict every voxel, block by block.

Training computes features only around labelled voxels: the labelled voxels are grouped
by block, each group's bounding box grown by the features' halo is read and filtered, and
the feature vectors of the labelled voxels are kept — never a feature stack of the volume.
Several annotations train iteratively (the study's protocol: central slice first, then
corrections on six more slices): after each, the forest predicts a central crop and the
percentage of its voxels whose label changed since the previous iteration is reported.

Prediction runs :func:`classify_block` on every halo'd block: features of the padded
block, cropped to the core, through the forest (scikit-learn's traversal on the CPU, the
CUDA kernel of :mod:`gpuseg.forest_gpu` on the GPU), to labels (uint8 class values,
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
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, blockwise, cluster
from .. import features as feat
from .. import forest as fo
from ..errors import InputError, OutputError, ParameterError
from ..io import convert, ilastik, metadata, staging, zarrio
from ..io.paths import parse
from . import annotations, samples

log = logging.getLogger("gpuseg")

PROB_DTYPES = ("uint8", "float16")
MAX_BLOCK_BYTES = 2**28  # per work block: its feature stack and class probabilities stay under 256 MiB
COMPARE_SIZE = 64


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
def _readable(image, scratch_beside: str | None, progress: bool):
    """``image`` as something sliceable: arrays as they are, paths through zarr."""
    if not isinstance(image, (str, os.PathLike)):
        yield np.asarray(image) if not hasattr(image, "__cuda_array_interface__") else image
        return
    beside = scratch_beside or os.fspath(image)
    with staging.zarr_input(image, beside + ".train", progress=progress) as arr:
        yield arr


def train(
    image: Any,
    labels: Any,
    *,
    features: Any = "default",
    twod: bool = False,
    mode: str = "ilastik",
    ilp: str | None = None,
    trees: int = 100,
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
    trees, random_state : forest size and seed.
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
    if model is not None:
        zarrio.check_writable(model, overwrite)
    spec = feature_spec(features, twod=twod, mode=mode, ilp=ilp)
    sources = list(labels) if isinstance(labels, (list, tuple)) else [labels]
    if not sources:
        raise ParameterError("train needs at least one annotation")
    if class_names is None:
        project = ilp or next((os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))
                               and os.fspath(s).lower().endswith(".ilp")), None)
        class_names = ilastik.label_names(project) if project else None
    with _readable(image, os.fspath(model) if model else None, progress) as arr:
        shape = tuple(arr.shape)
        name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else "image"
        if len(shape) != 3:
            raise InputError(f"{name}: expected a 3-D volume (z, y, x), found shape {shape}")
        check_fits(spec, shape, name)
        scribbles = annotations.read(sources, shape)
        for i in range(len(sources)):  # every iteration must see two classes, before any features are computed
            annotations.check_classes(scribbles.merged(i + 1), scribbles.names[: i + 1])
        _class_names(np.unique(scribbles.merged()).tolist(), class_names, ", ".join(scribbles.names))
        X = samples.gather(arr, scribbles, spec, block=chunks or samples.GATHER_BLOCK, device=device,
                           scheduler=scheduler, workers=workers, progress=progress)
        region = convert.central_region(shape, [min(compare_size, n) for n in shape])
        X_compare = samples.region_features(arr, region, spec, device)
    forest, previous, counts, changed = None, None, [], []
    for i in range(len(sources)):
        merged = scribbles.merged(i + 1)
        keep = merged > 0
        classes = np.unique(merged[keep]).tolist()
        names = _class_names(classes, class_names, ", ".join(scribbles.names[: i + 1]))
        forest = fo.train(X[keep], merged[keep], trees=trees, random_state=random_state, workers=workers,
                          class_names=names, spec=spec.to_dict())
        counts.append(int(keep.sum()))
        current = fo.predict(X_compare, forest)
        if previous is not None:
            changed.append(float(np.mean(current != previous) * 100))
            log.debug("iteration %d (%s): %.2f %% of the central %s crop changed label", i + 1, scribbles.names[i],
                      changed[-1], "x".join(str(s.stop - s.start) for s in region))
        previous = current
    forest = forest.replace(info={**forest.info, "annotations": list(scribbles.names), "changed_percent": changed})
    if model is not None:
        fo.save(forest, model)
    return TrainResult(forest, counts, changed, region, os.fspath(model) if model else None)


# --------------------------------------------------------------------------- prediction


@functools.lru_cache(maxsize=4)
def _load_checked(path: str, sha: str) -> fo.Forest:
    forest = fo.load(path)
    if forest.info.get("sha256", sha) != sha:
        raise InputError(f"{path}: the model file changed during the run; run again")
    return forest


def _forest_of(model: Any) -> fo.Forest:
    if isinstance(model, fo.Forest):
        return model
    return _load_checked(model["path"], model["sha256"])


def _to_dtype(xp, p, dtype: str):
    if dtype == "uint8":
        return xp.rint(xp.clip(p, 0, 1) * 255).astype(xp.uint8)
    return p.astype(xp.float16)


def classify_block(image, *, model, spec, prob_dtype: str = "uint8", side=None, stack: bool = False, block=None):
    """Labels of one padded block's core (and, as asked, probabilities and uncertainty).

    ``side`` maps ``"probabilities"`` / ``"uncertainty"`` to zarr paths written at
    ``block.core`` (out of core); ``stack`` returns ``[labels, p_1 … p_K, uncertainty]``
    as float32 channels instead (in memory).
    """
    forest = _forest_of(model)
    spec = feat.FeatureSpec.from_dict(spec) if isinstance(spec, dict) else spec
    be = backend.for_array(image)
    xp = be.xp
    inner = block.inner if block is not None else None
    stackf = xp.ascontiguousarray(feat.compute_block(image, spec, inner=inner))
    core = stackf.shape[1:]
    X = stackf.reshape(spec.channels, -1).T
    k = forest.n_classes
    if be.name == "gpu":
        from .. import forest_gpu

        proba = xp.empty((k, X.shape[0]), xp.float32)
        forest_gpu.predict_proba(X, forest, out=proba.T)
    else:
        proba = fo.predict_proba(X, forest).T
    del stackf, X
    labels = xp.asarray(forest.classes.astype(np.uint8))[xp.argmax(proba, axis=0)].reshape(core)
    side = side or {}
    uncertainty = None
    if stack or "uncertainty" in side:  # a partition over every voxel: only when asked for
        top2 = xp.partition(proba, k - 2, axis=0)[k - 2 :]
        uncertainty = (1 - (top2[1] - top2[0])).reshape(core)
    proba = proba.reshape((k, *core))
    if stack:
        return xp.concatenate([labels[None].astype(xp.float32), proba.astype(xp.float32),
                               uncertainty[None].astype(xp.float32)])
    for key, value in side.items():
        data = proba if key == "probabilities" else uncertainty
        arr = zarrio.open_array(value, mode="r+")
        arr[(Ellipsis, *block.core)] = backend.to_host(_to_dtype(xp, data, prob_dtype))
    return labels


classify_block.takes_block = True


def predict(
    image: Any,
    model: Any,
    output: str | os.PathLike | None = None,
    *,
    probabilities: str | os.PathLike | None = None,
    prob_dtype: str = "uint8",
    uncertainty: str | os.PathLike | None = None,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
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
    device, chunks, scheduler, workers, overwrite, progress : as for every block operation.

    Returns
    -------
    Prediction or str
        In memory: a :class:`Prediction` (probabilities float32, uncertainty float32); else the output path.
    """
    if prob_dtype not in PROB_DTYPES:
        raise ParameterError(f"probability dtype {prob_dtype!r}: use one of {', '.join(PROB_DTYPES)}")
    where = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "model"
    forest = model if isinstance(model, fo.Forest) else fo.load(model)
    spec = spec_of(forest, where)
    k = forest.n_classes
    if not isinstance(image, (str, os.PathLike)) and output is None:
        check_fits(spec, image.shape, "image")
        out = blockwise.apply(classify_block, image, halo=spec.halo, chunks=chunks, device=device, dtype=np.float32,
                              channels=(k + 2,), model=forest, spec=spec, stack=True)
        xp = backend.for_array(out).xp
        return Prediction(out[0].astype(xp.uint8), out[1 : k + 1], out[k + 1])
    if output is None:
        raise ParameterError("predict on a path needs an output path for the labels")
    ref = {"path": os.path.abspath(where), "sha256": forest.info["sha256"]} if isinstance(model, (str, os.PathLike)) else forest
    extras = {"probabilities": probabilities, "uncertainty": uncertainty}
    if probabilities is not None and parse(probabilities).kind != "zarr":
        raise OutputError(f"{probabilities}: probabilities are 4-D (class, z, y, x); write them to zarr (name.zarr[/array])")
    if uncertainty is not None and prob_dtype == "float16" and parse(uncertainty).kind != "zarr":
        raise OutputError(f"{uncertainty}: float16 is not written to TIFF; write it to zarr, or use --prob-dtype uint8")
    for path in (output, *[p for p in extras.values() if p is not None]):
        if not overwrite and (zarrio.exists(path) or Path(os.fspath(path)).exists()):
            raise OutputError(f"{path}: already exists; pass --overwrite to replace it, or choose another output")
    with contextlib.ExitStack() as es:
        target = es.enter_context(staging.zarr_output(output, overwrite, progress))
        src = es.enter_context(staging.zarr_input(image, output, chunks, progress))
        check_fits(spec, src.shape, os.fspath(image))
        chunk_shape = zarrio.normalize_chunks(chunks or src.chunks, src.shape)
        attrs = metadata.provenance(source=image, model=where, classes=forest.classes.tolist(),
                                    class_names=list(forest.class_names), **metadata.inherit(src.attrs.asdict()))
        side_targets = {key: es.enter_context(staging.zarr_output(p, overwrite, progress))
                        for key, p in extras.items() if p is not None}
        identity = {"input": os.fspath(image), "model": ref["sha256"] if isinstance(ref, dict) else id(ref),
                    "prob_dtype": prob_dtype, "chunks": chunk_shape}
        side = {key: _open_side(t, key, k, src.shape, chunk_shape, prob_dtype, identity, attrs)
                for key, t in side_targets.items()}
        blockwise.run(
            classify_block, [src], target, shape=src.shape, dtype=np.uint8, halo=spec.halo, chunks=chunk_shape,
            max_block_voxels=_block_voxels(src.shape, chunk_shape, spec.channels, k, workers),
            bytes_per_voxel=feat.device_bytes_per_voxel(spec.channels) + 8 * k,  # + probabilities, labels
            kwargs={"model": ref, "spec": spec.to_dict(), "prob_dtype": prob_dtype, "side": side},
            identity=identity, attrs=attrs, device=device, scheduler=scheduler, workers=workers,
            overwrite=overwrite, progress=progress, desc="classify",
        )
        for key, partial in side.items():
            _finish_side(partial, side_targets[key], overwrite)
    return os.fspath(output)


def _block_voxels(shape, chunk_shape, channels: int, classes: int, workers: int | None) -> int:
    """Work-block size: under :data:`MAX_BLOCK_BYTES` of features and probabilities, and at least one block per worker."""
    budget = MAX_BLOCK_BYTES // (4 * channels + 8 * classes + 16)
    share = -(-int(np.prod(shape)) // (workers or cluster.default_workers()))
    return max(int(np.prod(chunk_shape)), min(budget, share))


def _side_partial(target: str) -> str:
    p = Path(target.rstrip("/"))
    return str(p.with_name(f".{p.name}.partial.zarr"))


def _open_side(target: str, key: str, k: int, shape, chunks, dtype: str, identity: dict, attrs: dict) -> str:
    """An unfinished side output (probabilities or uncertainty), reused by a rerun of the same prediction."""
    partial = _side_partial(target)
    fp = blockwise.fingerprint(key=key, **identity)
    if zarrio.exists(partial):
        if zarrio.open_array(partial).attrs.get("gpuseg_side") == fp:
            return partial
        import shutil

        shutil.rmtree(partial)
    lead = (k,) if key == "probabilities" else ()
    zarrio.create_array(partial, (*lead, *shape), dtype, (*lead, *chunks), {**attrs, "gpuseg_side": fp})
    return partial


def _finish_side(partial: str, target: str, overwrite: bool) -> None:
    import shutil

    dest = Path(target.rstrip("/"))
    if dest.exists():
        if not overwrite:
            raise OutputError(f"{target}: appeared while computing; the result is kept at {partial}")
        shutil.rmtree(dest)
    Path(partial).rename(dest)
