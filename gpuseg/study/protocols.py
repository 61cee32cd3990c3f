"""The reference study's protocols (its Table 2), each a chain of engine runs by one simulated user.

============  ==========================================================================================
name          what the user does (:mod:`gpuseg.study.users` says how they decide)
============  ==========================================================================================
S1, S2, S3    threshold at their grey value −10 / 0 / +10 (``S`` in a list stands for all three)
gWS, cWS      seeded watershed, a small (gWS) or large (cWS) grey window around their value omitted
ML1           random forest trained on their thresholded seeds of the first slice
ML2           … of six equally spaced slices
ML3           … of the entire volume (seeds subsampled to at most :data:`MAX_SEEDS` voxels)
MLX<p>        the central slice painted to p % coverage, train, predict; then corrections painted on
              six more equally spaced slices where the prediction is wrong; retrain, predict.
              Any p in (0, 100]: the study's MLX10, MLX25, MLX35, MLX50, MLX65 and more.
============  ==========================================================================================

S1/S2/S3 are three protocols, each with its own spread across users, as the study reports
them; ``S`` is shorthand. Every protocol runs on the raw tomogram and on the Gaussian-filtered
one (σ :data:`FILTER_SIGMA`, kernel size factor :data:`FILTER_TRUNCATE`, as the study): the
*variants* ``raw`` and ``filtered``.

"Thresholded seeds" (ML1–ML3) are the voxels outside the user's gWS window: above it active
material (1), below it the rest (2), as the watershed's seeds. ML2's six slices are
``linspace(0, depth − 1, 8)[1:-1]``, the MLX corrections' six slices those of
:func:`gpuseg.classify.scribbles.study_slices` other than the central one. The seed cap and the
choice of the gWS window for seeds are this project's assumptions.

Each chain writes its intermediates (scribble volumes, model files, the first prediction
:data:`FIRST_PREDICTION`, the final prediction's probabilities :data:`PROBABILITIES`) under its work
folder and its result, a uint8 segmentation (1 active material, 2 rest), with the engine's public
functions; a step whose output exists is skipped, so a killed chain resumes.

Examples
--------
>>> [p.name for p in parse_protocols("S,gWS,MLX25")]
['S1', 'S2', 'S3', 'gWS', 'MLX25']
>>> parse_protocols(["MLX12.5"])[0].coverage
0.125
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import classify
from ..classify.scribbles import study_slices
from ..engine import outputs
from ..errors import ParameterError
from ..io import create_array, iter_slabs, open_array
from ..io.slices import read_slices
from ..segment import threshold, watershed
from .annotator import ACTIVE, REST, own_judgement, two_phase
from .streams import user_rng
from .users import User

CLASS_NAMES = ("active", "rest")
"""Names of the two classes every study forest and annotation volume holds (1 active material, 2 the rest)."""
FILTER_SIGMA = 1.1
FILTER_TRUNCATE = 2.0
VARIANTS = ("raw", "filtered")
MAX_SEEDS = 1 << 20
"""Seed voxels a thresholded-seed protocol trains on at most (a random subset beyond): their features
(voxels × channels float32) are held in memory for training."""
VALID = "S (= S1,S2,S3), S1, S2, S3, gWS, cWS, ML1, ML2, ML3, MLX<percent> with percent in (0, 100], e.g. MLX10"
STUDY_MLX = (10, 25, 35, 50, 65)
FIRST_PREDICTION = "prediction-1.zarr"
"""An MLX chain's prediction after the central slice alone (before the corrections), in its work folder."""
PROBABILITIES = "probabilities.zarr"
"""A forest chain's per-class probabilities (uint8) of its final prediction, in its work folder: what the
user's interval (:mod:`gpuseg.study.uncertainty`) is computed from."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One protocol of the study.

    Attributes
    ----------
    name : str
    kind : {"threshold", "watershed", "seeds", "scribbles"}
    offset : float
        Grey levels added to the user's threshold (S1 −10, S2 0, S3 +10).
    window : {"", "small", "large"}
        The omitted window (gWS small, cWS large).
    slices : {"", "first", "six", "all"}
        Where thresholded seeds are taken (ML1, ML2, ML3).
    coverage : float
        Share of each slice an MLX annotator paints, in (0, 1].
    """

    name: str
    kind: str
    offset: float = 0.0
    window: str = ""
    slices: str = ""
    coverage: float = 0.0

    @property
    def reads_truth(self) -> bool:
        """Whether a person doing it looks at what is right (only painting does)."""
        return self.kind == "scribbles"

    @property
    def forest(self) -> bool:
        """Whether its segmentation is a random forest's prediction (with probabilities)."""
        return self.kind in ("seeds", "scribbles")


_FIXED = {
    **{f"S{i + 1}": Protocol(f"S{i + 1}", "threshold", offset=o)
       for i, o in enumerate(threshold.study_thresholds(0).values())},
    "gWS": Protocol("gWS", "watershed", window="small"),
    "cWS": Protocol("cWS", "watershed", window="large"),
    "ML1": Protocol("ML1", "seeds", window="small", slices="first"),
    "ML2": Protocol("ML2", "seeds", window="small", slices="six"),
    "ML3": Protocol("ML3", "seeds", window="small", slices="all"),
}


def parse_protocols(names: str | Iterable[str]) -> list[Protocol]:
    """Protocols from names (a comma-separated text or a sequence), in order, each once.

    Raises
    ------
    ParameterError
        An unknown name, or an MLX coverage outside (0, 100] %.

    Examples
    --------
    >>> parse_protocols("ML4")
    Traceback (most recent call last):
    ...
    gpuseg.errors.ParameterError: unknown protocol 'ML4'; use S (= S1,S2,S3), S1, S2, S3, gWS, cWS, ML1, ML2, ML3, MLX<percent> with percent in (0, 100], e.g. MLX10
    """
    words = names.split(",") if isinstance(names, str) else [w for n in names for w in str(n).split(",")]
    found: dict[str, Protocol] = {}
    for word in (w.strip() for w in words):
        if not word:
            continue
        for p in _parse_one(word):
            found.setdefault(p.name, p)
    if not found:
        raise ParameterError(f"no protocol given; use {VALID}")
    return list(found.values())


def _parse_one(word: str) -> list[Protocol]:
    if word == "S":
        return [_FIXED["S1"], _FIXED["S2"], _FIXED["S3"]]
    if word in _FIXED:
        return [_FIXED[word]]
    match = re.fullmatch(r"MLX(\d+(?:\.\d+)?)", word)
    if match is None:
        raise ParameterError(f"unknown protocol {word!r}; use {VALID}")
    percent = float(match.group(1))
    if not 0 < percent <= 100:
        raise ParameterError(f"{word}: coverage {percent:g} % lies outside (0, 100]; use e.g. MLX10 or MLX65")
    return [Protocol(f"MLX{match.group(1)}", "scribbles", coverage=percent / 100)]


# --------------------------------------------------------------------------- one chain


@dataclasses.dataclass(frozen=True)
class Chain:
    """Where one user × protocol × variant runs: its input, its work folder, its output and how to compute.

    Attributes
    ----------
    image : path of the variant's grey volume.
    variant : ``raw`` or ``filtered``.
    shape : (z, y, x).
    hist : the variant's histogram ``(counts, centers)``: all a threshold or watershed user reads.
    work : folder for the chain's intermediates.
    output : the segmentation's path (zarr).
    truth : path, optional
        Read only by painting protocols, one slice at a time, as the annotator's judgement.
    features, trees : the forest's features and trees (None: the engine's sizing).
    options : device, chunks, scheduler, workers, progress for every engine run.
    """

    image: str
    variant: str
    shape: tuple[int, int, int]
    hist: tuple[np.ndarray, np.ndarray]
    work: str
    output: str
    truth: str | None = None
    features: str = "default"
    trees: int | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def decisions(user: User, chain: Chain) -> dict[str, Any]:
    """What ``user`` reads off the histogram of ``chain``'s variant: their threshold and both windows."""
    counts, centers = chain.hist
    t = user.threshold.choose(counts, centers, chain.variant)
    return {"threshold": t, "gWS": list(user.watershed.window(t, counts, centers, "small")),
            "cWS": list(user.watershed.window(t, counts, centers, "large"))}


def run(protocol: Protocol, user: User, chain: Chain) -> dict[str, Any]:
    """Run one user's chain of ``protocol`` (skipping steps already done); what they decided and did.

    Returns
    -------
    dict
        JSON-ready: ``threshold`` or ``window``, and for the forest protocols the annotations'
        slices, labelled voxels, coverage, strokes.
    """
    seen = decisions(user, chain)
    opts = dict(chain.options)
    if protocol.kind == "threshold":
        value = seen["threshold"] + protocol.offset
        if not outputs.exists(chain.output):
            threshold.apply_thresholds(chain.image, value, output=chain.output, method=f"study {protocol.name}", **opts)
        return {"threshold": value}
    window = seen["gWS" if protocol.window == "small" else "cWS"]
    if protocol.kind == "watershed":
        if not outputs.exists(chain.output):
            watershed.watershed(chain.image, window[0], window[1], output=chain.output, **opts)
        return {"window": window}
    if protocol.kind == "seeds":
        return {"window": window, **_seeded_forest(protocol, user, chain, window)}
    return _painted_forest(protocol, user, chain, seen["threshold"])


def _slice(path: str, z: int) -> np.ndarray:
    """One z slice of a volume (only it is read)."""
    return read_slices(path, axes=(0,), indices=(int(z),)).images[0]


def _write_scribbles(target: str, shape: Sequence[int], slices: Iterable[tuple[int, np.ndarray]],
                     attrs: Mapping[str, Any]) -> None:
    """An annotation volume (uint8, 0 unlabelled) holding ``slices``, written slice by slice and committed whole;
    ``attrs`` are stored once every slice is written."""
    if outputs.exists(target):
        return
    chunks = (1, min(int(shape[1]), 1024), min(int(shape[2]), 1024))
    with outputs.staged(target, overwrite=False) as stage:
        arr = create_array(stage, shape, np.uint8, chunks, {"classes": [ACTIVE, REST], "class_names": list(CLASS_NAMES)})
        for z, labels in slices:
            if labels.any():
                arr[int(z)] = labels
        arr.attrs.update(dict(attrs))  # after the slices: what painting them recorded


def _forest_seed(user: User, chain: Chain, protocol: Protocol) -> int:
    return int(user_rng(user.threshold.seed, user.index, "forest", protocol.name, chain.variant).integers(0, 2**31))


def _train_predict(user: User, chain: Chain, protocol: Protocol, labels: Sequence[str], step: int, output: str,
                   probabilities: str | None = None) -> None:
    """Train on ``labels`` (the iterations so far) into ``model-<step>.npz`` and predict into ``output`` (and
    ``probabilities``, uint8)."""
    model = os.path.join(chain.work, f"model-{step}.npz")
    opts = dict(chain.options)
    if not os.path.exists(model):
        classify.train(chain.image, list(labels), features=chain.features, trees=chain.trees,
                       random_state=_forest_seed(user, chain, protocol), class_names=list(CLASS_NAMES), model=model,
                       device=opts.get("device", "auto"), chunks=opts.get("chunks"), scheduler=opts.get("scheduler"),
                       workers=opts.get("workers"), progress=bool(opts.get("progress")))
    if not outputs.exists(output):
        classify.predict(chain.image, model, output, probabilities=probabilities, **opts)
    elif probabilities is not None and not outputs.exists(probabilities):
        # A study made before probabilities were kept, or a kill between the two commits: predict again for them
        # (the same model gives the same labels, written to a scratch beside them; the output stays as it is).
        classify.predict(chain.image, model, outputs.scratch(probabilities, "labels"), probabilities=probabilities,
                         **opts)
    if probabilities is not None:
        outputs.remove(outputs.scratch(probabilities, "labels"))


def _seed_planes(protocol: Protocol, depth: int) -> list[int]:
    if protocol.slices == "first":
        return [0]
    if protocol.slices == "six":
        return sorted(set(np.linspace(0, depth - 1, 8).round().astype(int)[1:-1].tolist()))
    return list(range(depth))


def _seeded_forest(protocol: Protocol, user: User, chain: Chain, window: Sequence[float]) -> dict[str, Any]:
    """ML1–ML3: the user's thresholded seeds on the protocol's slices, a forest trained on them, its prediction."""
    depth, ny, nx = chain.shape
    planes = _seed_planes(protocol, depth)
    rate = min(1.0, MAX_SEEDS / (len(planes) * ny * nx))
    target = os.path.join(chain.work, "seeds.zarr")
    if not outputs.exists(target):
        def greys() -> Iterable[tuple[int, np.ndarray]]:
            if len(planes) < depth:  # a few slices: only they are read
                yield from ((z, _slice(chain.image, z)) for z in planes)
                return
            for z0, slab in iter_slabs(chain.image, 16):
                yield from ((z0 + dz, grey) for dz, grey in enumerate(slab))

        def seeds() -> Iterable[tuple[int, np.ndarray]]:
            for z, grey in greys():
                labels = np.asarray(watershed.seeds(grey, window[0], window[1]))
                if rate < 1:
                    keep = user_rng(user.threshold.seed, user.index, protocol.name, chain.variant, f"z={z}")
                    labels = np.where(keep.random(labels.shape) < rate, labels, 0).astype(np.uint8)
                yield z, labels

        _write_scribbles(target, chain.shape, seeds(), {"protocol": protocol.name, "slices": planes, "rate": rate})
    _train_predict(user, chain, protocol, [target], 1, chain.output, os.path.join(chain.work, PROBABILITIES))
    return {"slices": planes if len(planes) < depth else "all", "seed_rate": rate}


def _judgement(chain: Chain, z: int, own_threshold: float) -> np.ndarray:
    """What the annotator judges right on slice ``z``: the truth slice (two phases), else their own eye."""
    if chain.truth is not None:
        return two_phase(_slice(chain.truth, z))
    return own_judgement(_slice(chain.image, z), own_threshold)


def _paint(protocol: Protocol, user: User, chain: Chain, target: str, planes: Sequence[int], own_threshold: float,
           prediction: str | None = None) -> dict[str, Any]:
    """Paint ``planes`` (corrections where ``prediction`` is wrong) into ``target``; what was painted."""
    if outputs.exists(target):
        return dict(open_array(target).attrs.asdict())
    done: dict[str, Any] = {"slices": [int(z) for z in planes], "coverage": [], "strokes": 0, "mislabelled_strokes": 0}

    def painted() -> Iterable[tuple[int, np.ndarray]]:
        for z in planes:
            judged = _judgement(chain, z, own_threshold)
            wrong = None if prediction is None else (_slice(prediction, z) != judged) & (judged > 0)
            stroke = user.annotator.paint(judged, protocol.coverage, wrong=wrong,
                                          stream=f"{protocol.name} {chain.variant} {'fix' if wrong is not None else ''}z={z}")
            done["coverage"].append(stroke.coverage)
            done["strokes"] += stroke.strokes
            done["mislabelled_strokes"] += stroke.mislabelled
            yield int(z), stroke.labels

    done["protocol"] = protocol.name
    _write_scribbles(target, chain.shape, painted(), done)  # one slice at a time: painted, then written
    return done


def _painted_forest(protocol: Protocol, user: User, chain: Chain, own_threshold: float) -> dict[str, Any]:
    """MLX<p>: central slice painted, train, predict; corrections on six more slices, retrain, predict."""
    planes = study_slices(chain.shape[0]).tolist()
    central = planes[len(planes) // 2]
    first = os.path.join(chain.work, "scribbles-1.zarr")
    second = os.path.join(chain.work, "scribbles-2.zarr")
    prediction = os.path.join(chain.work, FIRST_PREDICTION)
    painted = _paint(protocol, user, chain, first, [central], own_threshold)
    if not outputs.exists(chain.output):
        _train_predict(user, chain, protocol, [first], 1, prediction)
    corrected = _paint(protocol, user, chain, second, [z for z in planes if z != central], own_threshold, prediction)
    _train_predict(user, chain, protocol, [first, second], 2, chain.output, os.path.join(chain.work, PROBABILITIES))
    return {"judgement": "truth" if chain.truth is not None else "own threshold",
            "central": _record(painted), "corrections": _record(corrected)}


def _record(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in ("slices", "coverage", "strokes", "mislabelled_strokes") if k in attrs}
