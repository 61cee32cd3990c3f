"""Run a whole study: every simulated user × protocol × variant, resumable, then the report.

Layout of the output folder::

    OUTDIR/gpuseg-study.json                      the manifest: parameters and input signatures
    OUTDIR/raw.zarr                               a tomogram given as TIFF, HDF5 or .npy, read into zarr once
    OUTDIR/filtered.zarr                          the Gaussian-filtered tomogram (σ 1.1, kernel factor 2)
    OUTDIR/segmentations/VARIANT/PROTOCOL/uK.zarr each user's segmentation (uint8: 1 active, 2 rest)
    OUTDIR/work/VARIANT/PROTOCOL/uK/              scribbles, model files, first predictions
    OUTDIR/study.json, OUTDIR/study.csv           the report (:mod:`gpuseg.study.report`)

The manifest is written before any work. A rerun into the same folder with the same
parameters and inputs continues where the last one stopped (every step whose output exists
is skipped; the engine resumes a half-written one); with other parameters or other inputs it is
refused, and a folder holding anything else is refused too, so nothing is ever overwritten.

The study is one dask graph on the scheduler given (``synchronous``, ``threads``, ``processes``,
``local`` or a cluster's address): one task per user × protocol × variant, each running that user's
whole chain of engine runs synchronously inside it, so as many chains run at once as the scheduler
has workers, and a chain's memory is that of one block at a time. What comes before (reading the
tomogram, filtering it, its histograms, the truth's fractions) and after (the comparison of the
users) are engine runs parallel on the same scheduler. Every random choice is keyed by the seed and
the user (:func:`gpuseg.study.users.user_rng`), and no chain depends on how the others are
scheduled, so the same seed gives the same bytes on any scheduler and worker count.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dask

from .. import filters, metrics, validate, volumes
from ..engine import cluster, outputs
from ..engine.cluster import check_scheduler
from ..engine.identity import input_signature
from ..errors import InputError, OutputError, ParameterError
from ..io import info, parse
from ..io.volume import check_volume
from ..segment import threshold
from . import protocols as pr
from . import report as rp
from .users import User

log = logging.getLogger("gpuseg")

MANIFEST = "gpuseg-study.json"
FORMAT = "gpuseg-study"
DEFAULT_PROTOCOLS = "S,gWS,cWS,ML1,ML2,ML3,MLX10,MLX25"
MAX_USERS = 100


@dataclasses.dataclass(frozen=True)
class Study:
    """A checked study: what runs, on what, into which folder."""

    tomogram: str
    outdir: str
    truth: str | None
    protocols: tuple[pr.Protocol, ...]
    users: tuple[User, ...]
    seed: int
    variants: tuple[str, ...]
    features: str
    trees: int | None
    chunks: int | tuple[int, ...] | None
    shape: tuple[int, int, int]

    def parameters(self) -> dict[str, Any]:
        """What defines the study's bytes (the manifest's parameters; workers and scheduler do not)."""
        return {"protocols": [p.name for p in self.protocols], "users": len(self.users), "seed": self.seed,
                "variants": list(self.variants), "features": self.features, "trees": self.trees,
                "chunks": self.chunks if not isinstance(self.chunks, tuple) else list(self.chunks),
                "filter": {"sigma": pr.FILTER_SIGMA, "truncate": pr.FILTER_TRUNCATE}}

    def image(self, variant: str) -> str:
        """The grey volume a variant's users work on: the tomogram (a zarr copy of one in another format), or
        its filtered copy."""
        if variant == "filtered":
            return os.path.join(self.outdir, "filtered.zarr")
        return self.tomogram if parse(self.tomogram).kind == "zarr" else os.path.join(self.outdir, "raw.zarr")

    def segmentation(self, variant: str, protocol: pr.Protocol, user: User) -> str:
        return os.path.join(self.outdir, "segmentations", variant, protocol.name, f"{user.name}.zarr")

    def work(self, variant: str, protocol: pr.Protocol, user: User) -> str:
        return os.path.join(self.outdir, "work", variant, protocol.name, user.name)


def plan(
    tomogram: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    truth: str | os.PathLike[str] | None = None,
    protocols: str | Iterable[str] = DEFAULT_PROTOCOLS,
    users: int = 3,
    seed: int = 0,
    variants: Sequence[str] = pr.VARIANTS,
    features: str = "default",
    trees: int | None = None,
    chunks: int | Sequence[int] | None = None,
) -> Study:
    """Check every parameter and input (headers only) and the output folder; nothing is written.

    Raises
    ------
    ParameterError
        An unknown protocol or variant, fewer than 2 users, an MLX coverage outside (0, 100] %.
    InputError
        A tomogram that is not a 3-D volume, a truth of another shape or of non-integer labels.
    OutputError
        ``outdir`` is an input, or holds another study or other files.
    """
    parsed = tuple(pr.parse_protocols(protocols))
    n = validate.integer("--users", users, at_least=1, at_most=MAX_USERS)
    if n < 2:
        raise ParameterError(f"--users {n}: a spread across users needs at least 2; use --users 2 or more (the study had 3)")
    seed = validate.integer("--seed", seed, at_least=0, at_most=2**32 - 1)
    unknown = [v for v in variants if v not in pr.VARIANTS]
    if unknown or not variants:
        raise ParameterError(f"variants {', '.join(unknown) or 'none'}: use raw, filtered or both")
    if trees is not None:
        validate.integer("--trees", trees, at_least=1, at_most=5000)
    head = info(tomogram)
    check_volume(head)
    shape = (int(head.shape[0]), int(head.shape[1]), int(head.shape[2]))
    if truth is not None:
        t = info(truth)
        if tuple(t.shape) != shape:
            raise InputError(f"{truth}: shape {tuple(t.shape)} differs from the tomogram's {shape}; give the truth of this tomogram")
        if t.dtype.kind not in "ui":
            raise InputError(f"{truth}: dtype {t.dtype} is not a label volume; the truth holds integer labels (1 active material)")
    out = os.fspath(outdir)
    if parse(out).kind == "zarr":
        raise OutputError(f"{out}: is (or lies inside) a zarr store; give a plain folder for the study")
    outputs.check_distinct(out, [p for p in (tomogram, truth) if p is not None])
    ordered = tuple(v for v in pr.VARIANTS if v in variants)
    study = Study(os.fspath(tomogram), out, os.fspath(truth) if truth is not None else None, parsed,
                  tuple(User.draw(seed, i) for i in range(n)), seed, ordered, str(features), trees,
                  tuple(int(c) for c in chunks) if isinstance(chunks, Sequence) else chunks, shape)
    _check_outdir(study)
    return study


def manifest(study: Study) -> dict[str, Any]:
    """The manifest's content: parameters and the inputs' signatures."""
    return {"format": FORMAT, "version": 1, "parameters": study.parameters(),
            "tomogram": input_signature(study.tomogram),
            "truth": input_signature(study.truth) if study.truth is not None else None}


def _check_outdir(study: Study) -> None:
    """Refuse a folder holding another study, or anything that is not a study of ours."""
    folder = Path(study.outdir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file; give a folder for the study")
    if not folder.exists() or not any(not p.name.startswith(".") for p in folder.iterdir()):  # hidden: a killed
        # first run's staged manifest or lock
        outputs.check_new(os.path.join(study.outdir, MANIFEST), overwrite=False)  # its place is writable
        return
    path = folder / MANIFEST
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        raise OutputError(f"{folder}: holds other files and no study manifest; choose an empty or new folder") from None
    want = manifest(study)
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise OutputError(f"{folder}: {MANIFEST} is not a gpuseg study manifest; choose another output folder")
    changed = [k for k in ("parameters", "tomogram", "truth") if found.get(k) != want[k]]
    if changed:
        what = ", ".join(sorted(k for k, v in want["parameters"].items() if found.get("parameters", {}).get(k) != v)) \
            if changed == ["parameters"] else " and ".join(changed)
        raise OutputError(f"{folder}: holds another study (different {what}); choose another output folder to keep both")


def _run_chain(key: tuple[str, str, str], protocol: pr.Protocol, user: User, chain: pr.Chain) -> dict[str, Any]:
    """One task of the study's graph: a user's whole chain of ``protocol`` on one variant (its engine runs
    synchronous inside the task), skipping the steps already done."""
    log.info("%s %s %s", *key)
    return pr.run(protocol, user, chain)


def _check_truth(study: Study, compute: dict[str, Any]) -> dict[str, Any] | None:
    """The truth's phase fractions (one pass); refuse a truth with no active material (label 1)."""
    if study.truth is None:
        return None
    found = metrics.compare([study.truth], names=["truth"], chunks=study.chunks, **compute)
    seg = found["segmentations"][0]
    if not seg["counts"].get("1"):
        raise InputError(f"{study.truth}: no voxel is labelled 1 (active material); label active material 1, "
                         "the rest 2 (or CBD 2, pore 3)")
    return {"counts": seg["counts"], "fractions": seg["fractions"], "phase_names": found.get("phase_names", {})}


def run_study(
    tomogram: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    truth: str | os.PathLike[str] | None = None,
    protocols: str | Iterable[str] = DEFAULT_PROTOCOLS,
    users: int = 3,
    seed: int = 0,
    variants: Sequence[str] = pr.VARIANTS,
    features: str = "default",
    trees: int | None = None,
    figures: bool = True,
    device: str = "auto",
    chunks: int | Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the study's protocols with simulated users on ``tomogram`` into ``outdir``; its report.

    Parameters
    ----------
    tomogram : path
        Grey-value volume (any format gpuseg reads).
    outdir : path
        A new or empty folder, or one holding this very study (it resumes).
    truth : path, optional
        Labels (1 active material; 2 rest, or 2 CBD and 3 pore): scores each user, and is the
        annotators' judgement (the only place it is read).
    protocols : names
        See :func:`gpuseg.study.protocols.parse_protocols`.
    users : int
        Simulated users (at least 2).
    seed : int
        The study's seed: the same seed gives the same users, segmentations and report.
    variants : ``raw`` and/or ``filtered``.
    features, trees : the random forest's features and tree count (None: sized by the data).
    figures : bool
        Also draw the figures (``OUTDIR/figures``) and the one-page ``study.html``.
    device, chunks, scheduler, workers, progress : as every engine run (:class:`gpuseg.engine.RunOptions`).

    Returns
    -------
    dict
        The report (also written as ``study.json``, ``study.csv`` and, with ``figures``, ``study.html``).
    """
    study = plan(tomogram, outdir, truth=truth, protocols=protocols, users=users, seed=seed, variants=variants,
                 features=features, trees=trees, chunks=chunks)
    check_scheduler(scheduler)
    compute: dict[str, Any] = {"device": device, "scheduler": scheduler, "workers": workers, "progress": progress}
    truth_info = _check_truth(study, {k: v for k, v in compute.items() if k != "device"})
    target = os.path.join(study.outdir, MANIFEST)
    if not os.path.exists(target):
        with outputs.staged(target, overwrite=False) as tmp:
            Path(tmp).write_text(json.dumps(manifest(study), indent=2, sort_keys=True))
    options: dict[str, Any] = {**compute, "chunks": study.chunks}
    if not outputs.exists(study.image("raw")):  # a TIFF, HDF5 or .npy tomogram: read once into chunked zarr
        volumes.ingest(study.tomogram, study.image("raw"), chunks=study.chunks, progress=progress)
    if "filtered" in study.variants and not outputs.exists(study.image("filtered")):
        log.info("filtering %s (sigma %g, kernel factor %g)", study.tomogram, pr.FILTER_SIGMA, pr.FILTER_TRUNCATE)
        filters.gaussian(study.image("raw"), pr.FILTER_SIGMA, truncate=pr.FILTER_TRUNCATE,
                         output=study.image("filtered"), **options)
    seen: dict[str, dict[str, dict[str, Any]]] = {u.name: {} for u in study.users}
    hists = {}
    chains = []
    in_task = {**options, "scheduler": "synchronous", "workers": 1, "progress": False}  # a chain is one task
    for variant in study.variants:
        image = study.image(variant)
        hist = hists[variant] = threshold.histogram(image, chunks=study.chunks, device="cpu", scheduler=scheduler,
                                                    workers=workers, progress=progress)
        for protocol in study.protocols:
            for user in study.users:
                chain = pr.Chain(image, variant, study.shape, hist, study.work(variant, protocol, user),
                                 study.segmentation(variant, protocol, user),
                                 truth=study.truth if protocol.reads_truth else None,
                                 features=study.features, trees=study.trees, options=in_task)
                seen[user.name][variant] = pr.decisions(user, chain)
                chains.append(((variant, protocol.name, user.name), protocol, user, chain))
    with cluster.session(scheduler, workers) as chain_session:
        tasks = [dask.delayed(_run_chain, pure=False)(key, protocol, user, chain,
                                                      dask_key_name=f"study-chain-{'-'.join(key)}")
                 for key, protocol, user, chain in chains]
        results = chain_session.compute(tasks, progress=progress, desc="user chains", unit="chains")
    done = {key: result for (key, *_), result in zip(chains, results)}
    report = rp.build(study, done, seen, truth_info, compute)
    rp.write(study.outdir, report)
    if figures:
        from . import figures as fg
        from . import html

        made = fg.write_all(report, study.outdir, {v: study.image(v) for v in study.variants}, study.truth, hists)
        html.write(study.outdir, report, made)
    return report
