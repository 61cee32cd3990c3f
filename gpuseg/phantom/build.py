"""Make phantoms: in memory (:func:`make`) or out of core into a zarr group (:func:`generate`).

Both run the same block functions on global voxel positions, so for the same preset,
shape and seed they give the same bytes, and :func:`generate` gives the same bytes
whatever the chunking, scheduler or number of workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..engine import Operation, Result, cluster, outputs, run, staging
from ..engine.blocks import iter_blocks
from ..engine.identity import fingerprint, input_signature
from ..errors import InputError, OutputError, ParameterError
from ..io import metadata, zarrio
from . import ct, microstructure, presets
from .region import Region

ATTRS_KEY = "phantom"
PHASES = ("active", "cbd", "pore")
TRUTH_ATTRS = {"phase_names": {str(k): v for k, v in metadata.PHASE_NAMES[3].items()}}
"""The truth's labels named, which also makes it an OME-Zarr label image (picked, not averaged, levels)."""


def _shape(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        values = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ParameterError(f"shape {shape!r} must be three positive integers (z y x)")
    return values


def _pairs(label_map: Mapping[int, int] | None) -> list[list[int]]:
    """``label_map`` as sorted ``[value, phase]`` pairs, checked."""
    pairs = sorted([int(k), int(v)] for k, v in (label_map or {}).items())
    for src, dst in pairs:
        if not (0 <= src <= 65535 and 0 <= dst <= 3):
            raise ParameterError(f"label map {src}:{dst}: map values 0..65535 to phases 0..3 (1 active, 2 CBD, 3 pore)")
    return pairs


def _check_labels(dtype, name: str) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        raise InputError(f"{name}: a label volume must be 8- or 16-bit integers, not {dtype}; convert it first")


def _fractions(counts: Sequence[int]) -> dict[str, float]:
    total = sum(counts)
    return {name: c / total for name, c in zip(PHASES, counts)}


def _record(params, model, seed, shape, counts, extra=None) -> dict[str, Any]:
    return {
        "preset": params["preset"], "seed": int(seed), "shape": list(shape), "parameters": dict(params),
        "fractions": _fractions(counts), "voxel_counts": dict(zip(PHASES, (int(c) for c in counts))),
        "zero_grey": model["zero_grey"], "gain": model["gain"], "noise_std_grey": model["noise_std"] * model["gain"],
        "definitions": {"SNR": "(mean raw of active interior - zero_grey) / std of raw in active interior",
                        "CNR": "|mean raw of active interior - mean raw of pore interior| / std of raw in active interior"},
        **(extra or {}),
    }


def make(
    preset: str | Mapping[str, Any],
    shape: Sequence[int] | None = None,
    seed: int = 0,
    snr: float | None = None,
    *,
    labels: np.ndarray | None = None,
    label_map: Mapping[int, int] | None = None,
    device: str = "cpu",
    return_info: bool = False,
    **overrides: Any,
):
    """A phantom tomogram and its truth, in memory (small volumes).

    Parameters
    ----------
    preset : str or dict
        A name in :data:`gpuseg.phantom.PRESETS`, or a full parameter dict.
    shape : (z, y, x)
        Voxels; ignored when ``labels`` is given.
    seed : int
    snr : float, optional
        Noise level instead of the preset's (the noise sweep); CNR scales with it.
    labels : array, optional
        A label volume to use as truth (a real geometry) instead of generating one.
    label_map : dict, optional
        ``labels`` value → phase (1 active, 2 CBD, 3 pore, 0 outside); default identity.
    device : {"cpu", "gpu", "auto"}
    return_info : bool
        Also return the metadata :func:`generate` stores (fractions, every parameter).
    **overrides
        Any preset parameter, e.g. ``psf_sigma=0.5``.

    Returns
    -------
    raw : ndarray
        uint8 or uint16 tomogram.
    truth : ndarray
        uint8 labels: 1 active material, 2 carbon-binder, 3 pore.

    Examples
    --------
    >>> raw, truth = make("nmc-2", (24, 24, 24), seed=1)
    >>> raw.shape, raw.dtype.name, truth.dtype.name
    ((24, 24, 24), 'uint8', 'uint8')
    >>> abs(float((truth == 1).mean()) - 0.50) < 0.02
    True
    """
    params = presets.resolve(preset, snr, **overrides)
    model = ct.forward_params(params)
    be = backend.resolve(device)
    if labels is None:
        shape = _shape(shape if shape is not None else ())
        geom = microstructure.geometry(params)
        truth, counts = microstructure.labels_in_memory(geom, seed, shape, device=be.name)
        extra = {"geometry": geom}
    else:
        labels = np.asarray(labels)
        _check_labels(labels.dtype, "labels")
        truth = backend.to_host(ct.map_labels_block(labels, pairs=_pairs(label_map)))
        shape = _shape(truth.shape)
        counts = [int((truth == k).sum()) for k in (1, 2, 3)]
        extra = {"label_map": {str(k): v for k, v in (label_map or {}).items()}}
    region = be.asarray(Region(shape)[...])
    raw = backend.to_host(ct.ct_block(be.asarray(truth), region, model=model, seed=seed, shape=shape))
    if return_info:
        return raw, truth, _record(params, model, seed, shape, counts, extra)
    return raw, truth


def _histogram_group(regions: Sequence[np.ndarray], geom, seed, device) -> np.ndarray:
    be = backend.resolve(device)
    total: np.ndarray | None = None
    for r in regions:
        h = microstructure.histogram_block(be.asarray(r), geom=geom, seed=seed)
        total = h if total is None else total + h
    assert total is not None  # _grouped never makes an empty group
    return total


def _count_group(array, slices) -> np.ndarray:
    counts = np.zeros(4, np.int64)
    for s in slices:
        counts += np.bincount(np.asarray(zarrio.read(array, s)).ravel(), minlength=256)[:4]
    return counts


def _grouped(items: list, workers: int | None) -> list[list]:
    """Split work into about four groups per worker (a sum's grouping never changes it)."""
    n = max(1, min(len(items), 4 * (workers or cluster.default_workers())))
    size = math.ceil(len(items) / n)
    return [items[i:i + size] for i in range(0, len(items), size)]


class PhantomGroup:
    """A phantom's zarr group, whose ``raw`` and ``truth`` open as arrays: each is an OME-Zarr image
    (``raw`` grey values, ``truth`` labels; :mod:`gpuseg.io.ome`), given here as its full-resolution level,
    or a plain array where the phantom was written without OME-Zarr. Anything else is the group's."""

    def __init__(self, group: Any):
        self.group = group

    def __getitem__(self, name: str) -> Any:
        import zarr

        from ..io import ome

        found = self.group[name]
        if isinstance(found, zarr.Group) and ome.is_image(found.attrs.asdict()):
            return ome.resolve(found, 0)
        return found

    def __contains__(self, name: str) -> bool:
        return name in self.group

    def __getattr__(self, name: str) -> Any:
        return getattr(self.group, name)


def generate(
    output: str | os.PathLike,
    preset: str | Mapping[str, Any],
    shape: Sequence[int] | None = None,
    seed: int = 0,
    snr: float | None = None,
    chunks: int | Sequence[int] | None = None,
    device: str = "auto",
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    *,
    labels: str | os.PathLike | None = None,
    label_map: Mapping[int, int] | None = None,
    **overrides: Any,
):
    """Write a phantom, out of core, as a zarr group holding ``raw`` and ``truth``.

    Parameters are those of :func:`make`, with ``labels`` a path (any supported format),
    and ``chunks``, ``device``, ``scheduler``, ``workers``, ``overwrite``, ``progress``
    as in :func:`gpuseg.engine.run.run`. Memory is bounded by the block; a killed run resumes.

    Returns
    -------
    PhantomGroup
        The zarr group, with ``raw`` and ``truth`` (OME-Zarr images: a grey one and a label one, at
        ``PATH/raw`` and ``PATH/truth``; ``group["raw"]`` is the full-resolution array) and attributes
        ``phantom`` (true fractions, every parameter, ``zero_grey``, ...) and ``voxel_size_nm``.
    """
    import dask
    import zarr

    output = os.fspath(output).rstrip("/")
    loc = zarrio.parse(output)
    if loc.kind != "zarr" or loc.inner:
        raise OutputError(f"{output}: a phantom is a zarr group; name the output like phantom.zarr")
    params = presets.resolve(preset, snr, **overrides)
    model = ct.forward_params(params)
    identity = {"params": params, "seed": int(seed),
                "labels": input_signature(labels) if labels else None,
                "label_map": {str(k): int(v) for k, v in (label_map or {}).items()}, "chunks": chunks}
    if labels is not None:  # fail before writing anything
        from ..io import info as volume_info

        header = volume_info(labels)
        if len(header.shape) != 3:
            raise InputError(f"{labels}: a label volume must be 3-D (z y x); it has shape {header.shape}")
        _check_labels(header.dtype, os.fspath(labels))
        shape = _shape(header.shape)
        chunk_shape = zarrio.normalize_chunks(chunks or header.chunks, shape)
    else:
        shape = _shape(shape if shape is not None else ())
        chunk_shape = zarrio.normalize_chunks(chunks, shape)
    final = output
    with outputs.GroupOutput(final, fingerprint=fingerprint(**identity), overwrite=overwrite) as out:
        output = out.partial
        state = out.state
        attrs = {metadata.VOXEL_SIZE_KEY: [params["voxel_size_nm"]] * 3,
                 **metadata.provenance(preset=params["preset"], seed=int(seed))}
        compute: dict[str, Any] = {"device": device, "scheduler": scheduler, "workers": workers, "progress": progress}

        def write(op: Operation, op_params: Mapping[str, Any], inputs: list, name: str, dtype: Any,
                  shape: Sequence[int], chunk_shape: Sequence[int], extra_attrs=None):
            run.run(op.bind(op_params, dtype), inputs, {"output": f"{output}/{name}"}, shape=shape, chunks=chunk_shape,
                    attrs={**attrs, **(extra_attrs or {})}, identity=identity, **compute)

        if labels is None:
            geom = microstructure.geometry(params)
            if "levels" not in state:
                regions = [Region(shape)[b.core] for b in iter_blocks(shape, chunk_shape, 0)]
                tasks = [dask.delayed(_histogram_group)(g, geom, seed, device) for g in _grouped(regions, workers)]
                hist = sum(cluster.compute(tasks, scheduler=scheduler, workers=workers, progress=progress,
                                           desc="phantom: calibrate"))
                state["levels"] = microstructure.thresholds(hist, params["am_fraction"], params["cbd_fraction"])
                out.save_state(state)
            level = state["levels"]
            extra: dict[str, Any] = {"geometry": geom}
            write(LABELS, {"geom": geom, "seed": int(seed), "t_am": level["t_am"], "t_cbd": level["t_cbd"]},
                  [Region(shape)], "truth", np.int64, shape, chunk_shape, TRUTH_ATTRS)
            counts = level["counts"]
        else:
            extra = {"label_map": identity["label_map"], "source": os.fspath(labels)}
            with staging.zarr_input(labels, final, chunks, progress) as src:
                voxel = metadata.voxel_size(src.attrs.asdict())
                if voxel is not None and "voxel_size_nm" not in overrides:
                    params["voxel_size_nm"] = voxel[0]
                    attrs[metadata.VOXEL_SIZE_KEY] = voxel
                write(MAP_LABELS, {"pairs": _pairs(label_map)}, [src], "truth", src.dtype, shape, chunk_shape,
                      TRUTH_ATTRS)
            if "counts" not in state:
                truth = zarrio.open_array(f"{output}/truth")
                slices = [b.core for b in iter_blocks(shape, chunk_shape, 0)]
                tasks = [dask.delayed(_count_group)(truth, g) for g in _grouped(slices, workers)]
                state["counts"] = [int(c) for c in sum(cluster.compute(tasks, scheduler=scheduler, workers=workers))[1:]]
                out.save_state(state)
            counts = state["counts"]
        truth = zarrio.open_array(f"{output}/truth")
        write(CT, {"model": model, "seed": int(seed), "shape": list(shape)}, [truth, Region(shape)], "raw",
              params["dtype"], shape, chunk_shape, {"zero_grey": model["zero_grey"]})
        group = zarr.open_group(output, mode="r+")
        group.attrs.update(outputs.as_attrs({ATTRS_KEY: _record(params, model, seed, shape, counts, extra),
                                             metadata.VOXEL_SIZE_KEY: attrs[metadata.VOXEL_SIZE_KEY],
                                             **metadata.provenance()}))
        out.commit()
    return PhantomGroup(zarr.open_group(final, mode="r"))


LABELS = Operation("phantom: labels", microstructure.label_block, results={"output": Result(np.uint8)})
MAP_LABELS = Operation("phantom: labels", ct.map_labels_block, results={"output": Result(np.uint8)},
                       same_on_every_device=True)
CT = Operation("phantom: CT", ct.ct_block, halo=lambda p: p["model"]["halo"],
               results={"output": Result(lambda p, _: p["model"]["dtype"])})
