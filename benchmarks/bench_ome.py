"""OME-Zarr outputs: time and peak memory of the multiscale pyramid, and a whole prediction written as OME-Zarr.

    python benchmarks/bench_ome.py pyramid --size 512 --workdir /tmp/gpuseg-ome
    python benchmarks/bench_ome.py predict --size 1024 --workdir /tmp/gpuseg-ome

``pyramid``: a prediction's two outputs as ``gpuseg predict`` writes them (labels uint8 with class names,
probabilities (2, z, y, x) uint8), level 0 written slab by slab, then each pyramid built in a fresh process
(:func:`gpuseg.io.ome.write_multiscale`, as the commit hook calls it): seconds, peak RSS, validation.
``predict``: the real CLI, ``gpuseg predict`` with ``GPUSEG_OME_ZARR=1`` (the default, set in case it is off;
a 3-tree forest on one Gaussian feature, so the forest is not what is measured) on a SIZE³ uint8 volume, peak RSS summed over the command's processes
(goal for 1024³: < 3 GiB), then both outputs validated with ome-zarr-models and listed by ``ome_zarr info``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import fmt_bytes, machine, peak_rss_of, peak_rss_of_command, table

CHUNK = 128
VOXEL = [400.0, 400.0, 400.0]


def _field(z0: int, depth: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth two-phase grey slabs (no volume in memory): blobs of ~16 voxels plus noise, uint8."""
    rng = np.random.default_rng(seed + z0)
    z, y, x = np.ogrid[z0 : z0 + depth, :size, :size]
    wave = np.sin(z / 5.1) * np.sin(y / 4.3) * np.sin(x / 3.7)
    return np.clip(120 + 60 * np.sign(wave) + rng.normal(0, 20, wave.shape), 0, 255).astype(np.uint8)


def write_prediction(folder: Path, size: int) -> tuple[str, str]:
    """Level 0 of labels and probabilities, slab by slab, their pyramids pending."""
    from gpuseg.io import ome

    labels, proba = str(folder / "pred.zarr/labels"), str(folder / "pred.zarr/proba")
    attrs = {"voxel_size_nm": VOXEL, "classes": [1, 2], "class_names": ["active", "non-active"]}
    lab = ome.create_image(labels, (size,) * 3, np.uint8, (CHUNK,) * 3, attrs)
    pro = ome.create_image(proba, (2, *(size,) * 3), np.uint8, (2, *(CHUNK,) * 3), attrs)
    for z0 in range(0, size, CHUNK):
        grey = _field(z0, CHUNK, size)
        p = (grey.astype(np.float32) / 255 * 254).astype(np.uint8)
        lab[z0 : z0 + CHUNK] = np.where(p > 127, 1, 2).astype(np.uint8)
        pro[:, z0 : z0 + CHUNK] = np.stack([p, 255 - p])
    return labels, proba


def build(path: str) -> list[str]:
    """The commit hook's work for one output (run in a fresh process by :func:`peak_rss_of`)."""
    from gpuseg.io import ome

    done = ome.finish(path, name=Path(path).name)
    assert done, f"{path}: nothing pending"
    return ome.level_paths(__import__("zarr").open_group(path, mode="r").attrs.asdict())


def pyramid(size: int, work: Path) -> list[list[str]]:
    labels, proba = write_prediction(work, size)
    rows = []
    for path in (labels, proba):
        seconds, peak, levels = peak_rss_of(build, path)
        model = type(__import__("gpuseg.io.ome", fromlist=["validate"]).validate(path)).__name__
        level0 = int(np.prod(__import__("gpuseg.io", fromlist=["open_array"]).open_array(path).shape))
        rows.append([Path(path).name, f"{size}³", str(len(levels)), f"{seconds:.1f}", fmt_bytes(peak),
                     f"{level0 / seconds / 1e6:.0f} M", model])
    return rows


def predict(size: int, work: Path) -> list[list[str]]:
    from gpuseg import classify
    from gpuseg.classify import model_file
    from gpuseg.io import ome, zarrio

    raw = zarrio.create_array(work / "raw.zarr", (size,) * 3, np.uint8, (CHUNK,) * 3, {"voxel_size_nm": VOXEL})
    for z0 in range(0, size, CHUNK):
        raw[z0 : z0 + CHUNK] = _field(z0, CHUNK, size)
    sample = _field(size // 2 - 16, 32, 64)
    scribbles = np.zeros(sample.shape, np.uint8)
    scribbles[16, ::4, ::4] = np.where(sample[16, ::4, ::4] > 120, 1, 2)
    forest = classify.train(sample.astype(np.float32), scribbles, features="gaussian:1.0", trees=3, device="cpu",
                            compare_size=8).forest
    model = model_file.save(forest.replace(class_names=("active", "non-active")), work / "m.npz")
    out = work / "pred.zarr"
    os.environ[ome.ENV_SWITCH] = "1"
    argv = [sys.executable, "-m", "gpuseg", "predict", str(work / "raw.zarr"), "--model", str(model), f"{out}/labels",
            "--probabilities", f"{out}/proba", "--device", "cpu", "-q"]
    seconds, peak = peak_rss_of_command(argv)
    rows = []
    for name in ("labels", "proba"):
        model_name = type(ome.validate(out / name)).__name__
        levels = len(ome.level_paths(__import__("zarr").open_group(out / name, mode="r").attrs.asdict()))
        rows.append([f"predict → {name}", f"{size}³", str(levels), f"{seconds:.1f}", fmt_bytes(peak), "", model_name])
    listing = subprocess.run([str(Path(sys.executable).with_name("ome_zarr")), "info", str(out / "labels")],
                             capture_output=True, text=True, check=False)
    print(listing.stdout.strip())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("pyramid", "predict"))
    ap.add_argument("--size", type=int, nargs="+", default=[512])
    ap.add_argument("--workdir", default="/tmp/gpuseg-ome")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    print(f"# bench_ome {args.mode} — {machine()} — {time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    for size in args.size:
        work = Path(args.workdir) / f"{args.mode}-{size}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        rows += pyramid(size, work) if args.mode == "pyramid" else predict(size, work)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        print(table(rows, ["output", "size", "levels", "s", "peak RSS", "level-0 voxels/s", "validates as"]), flush=True)


if __name__ == "__main__":
    main()
