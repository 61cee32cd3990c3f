"""Every bad input a new user can give, across every command: one line, exit 2, nothing lost.

Each case runs the CLI in-process on a fresh copy of a small workspace (a tomogram in
several formats, segmentations, scribbles, a model, a report, configs) and asserts:
exit code 2, exactly one stderr line ``gpuseg CMD: error: ...`` containing the expected
words, no traceback, and the workspace's files byte for byte as before: nothing changed,
nothing left behind (no ``.partial.zarr``, no lock, no staged copy).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from gpuseg import backend, classify, io, volumes
from gpuseg.cli import main

SHAPE = (20, 24, 24)


def _grey(rng: np.random.Generator) -> np.ndarray:
    """Two phases, bright blobs on a darker matrix, with noise: thresholds near 130 separate them."""
    from scipy import ndimage

    blobs = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0) > 0
    return np.clip(np.where(blobs, 170, 90) + rng.normal(0, 12, SHAPE), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The files every case starts from (built once, copied per case)."""
    root = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    grey = _grey(rng)
    volumes.save(grey, root / "raw.zarr/raw", chunks=8, attrs={"voxel_size_nm": [400.0] * 3})
    tifffile.imwrite(root / "stack.tif", grey)
    tifffile.imwrite(root / "slice.tif", grey[0])
    np.save(root / "vol4d.npy", np.zeros((2, 4, 4, 4), np.uint8))
    grey_f = grey.astype(np.float32)
    nan = grey_f.copy()
    nan[3, 4, 5] = nan[7, 1, 2] = np.nan
    volumes.save(nan, root / "nan.zarr", chunks=8)
    inf = grey_f.copy()
    inf[10, 10, 10] = np.inf
    tifffile.imwrite(root / "inf.tif", inf)
    seg = np.where(grey > 130, 1, 2).astype(np.uint8)
    volumes.save(seg, root / "seg.zarr/a", chunks=8)
    volumes.save(np.roll(seg, 1, axis=2), root / "seg.zarr/b", chunks=8)
    volumes.save(seg[:10], root / "seg.zarr/short", chunks=8)
    scribbles = np.zeros(SHAPE, np.uint8)
    scribbles[10, 2:22:3, 2:22:3] = seg[10, 2:22:3, 2:22:3]
    tifffile.imwrite(root / "scribbles.tif", scribbles)
    one_class = np.zeros(SHAPE, np.uint8)
    one_class[10, 5:10, 5:10] = 1
    tifffile.imwrite(root / "one-class.tif", one_class)
    classify.train(root / "raw.zarr/raw", [root / "scribbles.tif"], features="gaussian:1.0", trees=3,
                   model=root / "model.npz", device="cpu", scheduler="synchronous")
    data = bytearray((root / "model.npz").read_bytes())
    directory = data.rfind(b"PK\x01\x02")  # the zip's central directory
    data[directory + 8: directory + 12] = b"\xff\xff\xff\xff"
    (root / "damaged.npz").write_bytes(bytes(data))
    with zipfile.ZipFile(root / "odd.npz", "w") as z:
        z.writestr("x.npy", b"not an array")
    (root / "report.json").write_text(json.dumps({"not": "a report"}))
    (root / "afile").write_text("a file, not a folder")
    (root / "figure.png").write_bytes(b"\x89PNG existing figure")
    (root / "demo-out").mkdir()
    (root / "demo-out/demo.png").write_bytes(b"\x89PNG an earlier demo's figure")
    for name, text in {
        "typo.yaml": "filtr: {sigma: 1}\n",
        "type.yaml": "study: {users: one}\n",
        "method.yaml": "study: {protocols: [S, kmeans]}\n",
        "features.yaml": "study: {features: 'sobel:9'}\n",
        "preset.yaml": "phantom: {preset: nmc-9}\n",
        "scheduler.yaml": "compute: {scheduler: bogus}\n",
        "list.yaml": "- a\n- b\n",
        "broken.yaml": "filter: {sigma: [1\n",
        "shape.yaml": "phantom: {shape: [8, 8]}\n",
        "chunks.yaml": "compute: {chunks: -4}\n",
    }.items():
        (root / name).write_text(text)
    return root


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with its content's digest."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


R, F, SEG = "{d}/raw.zarr/raw", ["--device", "cpu", "-q"], "{d}/seg.zarr"

CASES: list[tuple[str, list[str], str]] = [
    # --- the command line itself (argparse): one line, not a usage block
    ("no-command", [], "choose a command"),
    ("unknown-command", ["segmnt"], "invalid choice"),
    ("unknown-option", ["info", R, "--jsn"], "unrecognized arguments"),
    ("missing-required", ["filter", R, "{d}/o.zarr"], "--sigma"),
    ("not-a-number", ["filter", R, "{d}/o.zarr", "--sigma", "abc"], "abc"),
    ("bad-choice", ["segment", "otsu", R, "{d}/o.zarr", "--classes", "4"], "invalid choice"),
    ("workers-zero", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--workers", "0"], "positive"),
    ("chunks-negative", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--chunks", "-8"], "positive"),
    ("chunks-two", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--chunks", "8", "8", *F], "one number or three"),
    # --- inputs that are not what they should be
    ("info-missing", ["info", "{d}/missing.tif"], "no such file"),
    ("info-folder-empty", ["info", "{d}/demo-out"], "demo-out"),
    ("info-group", ["info", SEG], "zarr group"),
    ("info-2d", ["info", "{d}/slice.tif"], "2-D"),
    ("info-4d", ["info", "{d}/vol4d.npy"], "4-D"),
    ("info-quiet-bad-option", ["info", R, "-q", "--sigma", "1"], "unrecognized"),
    ("filter-2d", ["filter", "{d}/slice.tif", "{d}/o.zarr", "--sigma", "1", *F], "2-D"),
    ("filter-text-file", ["filter", "{d}/report.json", "{d}/o.zarr", "--sigma", "1", *F], "report.json"),
    ("ingest-unknown-format", ["ingest", "{d}/afile", "{d}/o.zarr", "-q"], "afile"),
    ("ingest-voxel-size-negative", ["ingest", "{d}/stack.tif", "{d}/o.zarr", "--voxel-size", "-400", "-q"],
     "voxel size"),
    ("ingest-voxel-size-two", ["ingest", "{d}/stack.tif", "{d}/o.zarr", "--voxel-size", "400", "400", "-q"],
     "voxel size"),
    ("export-unknown-suffix", ["export", R, "{d}/out.png", "-q"], "out.png"),
    ("crop-size-two", ["crop", R, "{d}/c.zarr", "--size", "4", "4", "-q"], "size"),
    ("crop-too-big", ["crop", R, "{d}/c.zarr", "--size", "64", "-q"], "size"),
    ("crop-outside", ["crop", R, "{d}/c.zarr", "--size", "4", "--start", "30", "0", "0", "-q"], "start"),
    ("crop-negative-start", ["crop", R, "{d}/c.zarr", "--size", "4", "--start", "-1", "0", "0", "-q"], "start"),
    ("crop-size-zero", ["crop", R, "{d}/c.zarr", "--size", "0", "-q"], "positive"),
    # --- NaN and infinity: refused everywhere, with the count and where
    ("nan-threshold", ["segment", "threshold", "{d}/nan.zarr", "{d}/o.zarr", "--value", "130", *F], "NaN"),
    ("nan-filter", ["filter", "{d}/nan.zarr", "{d}/o.zarr", "--sigma", "1", *F], "NaN"),
    ("nan-otsu", ["segment", "otsu", "{d}/nan.zarr", "{d}/o.zarr", *F], "NaN"),
    ("nan-watershed", ["segment", "watershed", "{d}/nan.zarr", "{d}/o.zarr", "--low", "100", "--high", "150", *F],
     "NaN"),
    ("nan-features", ["features", "{d}/nan.zarr", "{d}/o.zarr", "--features", "gaussian:1.0", *F], "NaN"),
    ("nan-predict", ["predict", "{d}/nan.zarr", "--model", "{d}/model.npz", "{d}/o.zarr", *F], "NaN"),
    ("nan-train", ["train", "{d}/nan.zarr", "--labels", "{d}/scribbles.tif", "--model", "{d}/m.npz",
                   "--features", "gaussian:1.0", "--trees", "2", *F], "NaN"),
    ("inf-filter-tif", ["filter", "{d}/inf.tif", "{d}/o.zarr", "--sigma", "1", *F], "infinite"),
    # --- parameter ranges
    ("sigma-zero", ["filter", R, "{d}/o.zarr", "--sigma", "0", *F], "sigma"),
    ("sigma-negative", ["filter", R, "{d}/o.zarr", "--sigma", "-1", *F], "sigma"),
    ("sigma-inf", ["filter", R, "{d}/o.zarr", "--sigma", "inf", *F], "sigma"),
    ("sigma-nan", ["filter", R, "{d}/o.zarr", "--sigma", "nan", *F], "sigma"),
    ("sigma-huge", ["filter", R, "{d}/o.zarr", "--sigma", "1e6", *F], "sigma"),
    ("sigma-four", ["filter", R, "{d}/o.zarr", "--sigma", "1", "1", "1", "1", *F], "sigma"),
    ("truncate-zero", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--truncate", "0", *F], "truncate"),
    ("truncate-inf", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--truncate", "inf", *F], "truncate"),
    ("threshold-unordered", ["segment", "threshold", R, "{d}/o.zarr", "--value", "150", "100", *F], "increase"),
    ("threshold-three", ["segment", "threshold", R, "{d}/o.zarr", "--value", "1", "2", "3", *F], "two"),
    ("threshold-nan", ["segment", "threshold", R, "{d}/o.zarr", "--value", "nan", *F], "finite"),
    ("threshold-offset-inf", ["segment", "threshold", R, "{d}/o.zarr", "--value", "130", "--offset", "inf", *F],
     "finite"),
    ("watershed-low-above-high", ["segment", "watershed", R, "{d}/o.zarr", "--low", "150", "--high", "100", *F],
     "--low"),
    ("speckle-phase-zero", ["segment", "speckle", SEG + "/a", "{d}/o.zarr", "--min-size", "5", "--phase", "0", *F],
     "phase"),
    ("speckle-fill-300", ["segment", "speckle", SEG + "/a", "{d}/o.zarr", "--min-size", "5", "--fill", "300", *F],
     "fill"),
    ("otsu-nbins-one", ["segment", "otsu", R, "{d}/o.zarr", "--nbins", "1", *F], "nbins"),
    ("features-unknown", ["features", R, "{d}/o.zarr", "--features", "sharpness:1.0", *F], "sharpness"),
    ("features-scale-inf", ["features", R, "{d}/o.zarr", "--features", "gaussian:inf", *F], "scale"),
    ("phantom-shape-zero", ["phantom", "{d}/p.zarr", "--shape", "0", "16", "16", *F], "positive"),
    ("phantom-snr-negative", ["phantom", "{d}/p.zarr", "--shape", "16", "16", "16", "--snr", "-1", *F], "snr"),
    ("phantom-set-unknown", ["phantom", "{d}/p.zarr", "--shape", "16", "16", "16", "--set", "bogus=1", *F], "bogus"),
    ("phantom-set-syntax", ["phantom", "{d}/p.zarr", "--shape", "16", "16", "16", "--set", "psf_sigma", *F],
     "KEY=VALUE"),
    ("phantom-label-map-syntax", ["phantom", "{d}/p.zarr", "--labels", SEG + "/a", "--label-map", "1-1", *F],
     "label-map"),
    ("phantom-labels-and-shape", ["phantom", "{d}/p.zarr", "--labels", SEG + "/a", "--shape", "8", "8", "8", *F],
     "--shape"),
    ("train-seed-negative", ["train", R, "--labels", "{d}/scribbles.tif", "--model", "{d}/m.npz", "--seed", "-3",
                             *F], "--seed"),
    ("train-trees-zero", ["train", R, "--labels", "{d}/scribbles.tif", "--model", "{d}/m.npz", "--trees", "0", *F],
     "positive"),
    ("train-one-class", ["train", R, "--labels", "{d}/one-class.tif", "--model", "{d}/m.npz", "--trees", "2",
                         "--features", "gaussian:1.0", *F], "class"),
    ("train-no-labels", ["train", R, "--model", "{d}/m.npz", *F], "--labels"),
    ("train-labels-shape", ["train", R, "--labels", SEG + "/short", "--model", "{d}/m.npz", "--trees", "2", *F],
     "shape"),
    ("train-names-count", ["train", R, "--labels", "{d}/scribbles.tif", "--model", "{d}/m.npz", "--trees", "2",
                           "--features", "gaussian:1.0", "--class-names", "a", "b", "c", *F], "class"),
    ("scheduler-unknown", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--scheduler", "bogus", *F], "scheduler"),
    ("scheduler-nobody-listens", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--scheduler", "tcp://127.0.0.1:9",
                                  *F], "scheduler"),
    ("workers-absurd", ["filter", R, "{d}/o.zarr", "--sigma", "1", "--workers", "100000", *F], "workers"),
    ("chunks-absurd", ["phantom", "{d}/p.zarr", "--shape", "512", "512", "512", "--chunks", "1", *F], "chunks"),
    # --- paths: outputs never replace inputs or each other, nothing exists is replaced
    ("output-exists", ["filter", R, SEG + "/a", "--sigma", "1", *F], "already exists"),
    ("output-is-input", ["filter", R, R, "--sigma", "1", "--overwrite", *F], "input"),
    ("output-is-input-tif", ["segment", "threshold", "{d}/stack.tif", "{d}/stack.tif", "--value", "130",
                             "--overwrite", *F], "input"),
    ("output-is-input-store", ["filter", R, "{d}/raw.zarr", "--sigma", "1", "--overwrite", *F], "input"),
    ("output-inside-file", ["filter", R, "{d}/afile/o.zarr", "--sigma", "1", *F], "afile"),
    ("probabilities-is-output", ["predict", R, "--model", "{d}/model.npz", "{d}/o.zarr", "--probabilities",
                                 "{d}/o.zarr", *F], "own path"),
    ("uncertainty-is-input", ["predict", R, "--model", "{d}/model.npz", "{d}/o.zarr", "--uncertainty", R,
                              "--overwrite", *F], "input"),
    ("probabilities-tif", ["predict", R, "--model", "{d}/model.npz", "{d}/o.zarr", "--probabilities",
                           "{d}/p.tif", *F], "zarr"),
    ("train-model-exists", ["train", R, "--labels", "{d}/scribbles.tif", "--model", "{d}/model.npz", *F],
     "already exists"),
    ("train-model-is-input", ["train", "{d}/stack.tif", "--labels", "{d}/scribbles.tif", "--model",
                              "{d}/scribbles.tif", "--overwrite", *F], "input"),
    ("export-exists", ["export", R, "{d}/stack.tif", "-q"], "already exists"),
    ("export-onto-input", ["export", "{d}/stack.tif", "{d}/stack.tif", "--overwrite", "-q"], "input"),
    ("ingest-onto-input", ["ingest", R, "{d}/raw.zarr/raw", "--overwrite", "-q"], "input"),
    ("compare-json-exists", ["compare", SEG + "/a", SEG + "/b", "--json", "{d}/report.json", *F], "already exists"),
    ("compare-plot-exists", ["compare", SEG + "/a", SEG + "/b", "--plot", "{d}/figure.png", *F], "already exists"),
    ("compare-json-is-csv", ["compare", SEG + "/a", SEG + "/b", "--json", "{d}/r.out", "--csv", "{d}/r.out", *F],
     "own path"),
    ("compare-json-is-input", ["compare", SEG + "/a", SEG + "/b", "--json", SEG + "/a", "--overwrite", *F], "input"),
    ("compare-shapes", ["compare", SEG + "/a", SEG + "/short", *F], "shape"),
    ("compare-names-count", ["compare", SEG + "/a", SEG + "/b", "--names", "u1", *F], "names"),
    ("compare-grey-without-slices", ["compare", SEG + "/a", SEG + "/b", "--grey", R, *F], "--slices"),
    ("variability-not-report", ["variability", "{d}/report.json", "--output", "{d}/v.png"], "not a report"),
    ("variability-exists", ["variability", "{d}/report.json", "--output", "{d}/figure.png"], "already exists"),
    ("plot-exists", ["segment", "otsu", R, "{d}/o.zarr", "--plot", "{d}/figure.png", *F], "already exists"),
    # --- model files
    ("model-missing", ["predict", R, "--model", "{d}/nothing.npz", "{d}/o.zarr", *F], "no such model"),
    ("model-damaged-zip", ["predict", R, "--model", "{d}/damaged.npz", "{d}/o.zarr", *F], "damaged.npz"),
    ("model-odd-zip", ["predict", R, "--model", "{d}/odd.npz", "{d}/o.zarr", *F], "not a gpuseg model"),
    ("model-is-tiff", ["predict", R, "--model", "{d}/scribbles.tif", "{d}/o.zarr", *F], "not a gpuseg model"),
    ("model-is-zarr", ["predict", R, "--model", R, "{d}/o.zarr", *F], "not a gpuseg model"),
    ("model-shape-2d", ["predict", "{d}/slice.tif", "--model", "{d}/model.npz", "{d}/o.zarr", *F], "2-D"),
    # --- configs and the demo
    ("demo-config-typo", ["demo", "--config", "{d}/typo.yaml", "-q"], "filtr"),
    ("demo-config-type", ["demo", "--config", "{d}/type.yaml", "-q"], "study.users"),
    ("demo-config-method", ["demo", "--config", "{d}/method.yaml", "-q"], "kmeans"),
    ("demo-config-list", ["demo", "--config", "{d}/list.yaml", "-q"], "mapping"),
    ("demo-config-broken", ["demo", "--config", "{d}/broken.yaml", "-q"], "YAML"),
    ("demo-config-shape", ["demo", "--config", "{d}/shape.yaml", "-q"], "phantom.shape"),
    ("demo-config-chunks", ["demo", "--config", "{d}/chunks.yaml", "-q"], "compute.chunks"),
    ("demo-config-features", ["demo", "--config", "{d}/features.yaml", "-q"], "study.features"),
    ("demo-config-preset", ["demo", "--config", "{d}/preset.yaml", "-q"], "phantom.preset"),
    ("demo-config-scheduler", ["demo", "{d}/new-demo", "--config", "{d}/scheduler.yaml", "-q"], "bogus"),
    ("demo-config-missing", ["demo", "--config", "{d}/none.yaml", "-q"], "no such config"),
    ("demo-output-file", ["demo", "--output", "{d}/afile", "-q"], "afile"),
    ("demo-output-taken", ["demo", "--output", "{d}/demo-out", "-q"], "--overwrite"),
    ("demo-outdir-taken", ["demo", "{d}/demo-out", "-q"], "demo.png: already exists"),
    # --- bench
    ("bench-size-zero", ["bench", "--sizes", "0", "-q"], "--sizes"),
    ("bench-stage-unknown", ["bench", "--sizes", "32", "--stages", "teleport", "-q"], "teleport"),
    ("bench-preset-unknown", ["bench", "--sizes", "32", "--preset", "nmc-9", "-q"], "--preset"),
    ("bench-json-exists", ["bench", "--sizes", "32", "--json", "{d}/report.json", "-q"], "already exists"),
]


@pytest.mark.parametrize("name,argv,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(workspace, tmp_path, capsys, name, argv, needle):
    work = tmp_path / "w"
    shutil.copytree(workspace, work)
    before = _snapshot(work)
    code = main([a.format(d=work) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and ": error: " in lines[0], (code, err)
    assert needle.lower() in lines[0].lower(), lines[0]
    assert _snapshot(work) == before


def test_corpus_covers_every_command():
    commands = {argv[0] for _, argv, _ in CASES if argv}
    expected = {"info", "ingest", "export", "crop", "filter", "demo", "features", "train", "predict", "segment",
                "compare", "variability", "phantom", "bench"}
    assert expected <= commands and len(CASES) >= 60


def _terminal_lines(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: a carriage return starts its line again (progress bars)."""
    shown = (line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return [line for line in shown if line.strip()]


def _gpuseg(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in its own process: what a user's terminal shows (warnings and log lines included)."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # as a user's shell: warnings are not silenced by pytest
    done = subprocess.run([sys.executable, "-m", "gpuseg", *argv], cwd=cwd, env=env, capture_output=True, timeout=120)
    # decoded by hand: text=True would turn a progress bar's carriage returns into line breaks
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.mark.parametrize("argv", [
    ["filter", "raw.zarr/raw", "o.zarr", "--sigma", "abc"],
    ["segment", "threshold", "nan.zarr", "o.zarr", "--value", "130", "--device", "cpu"],
    ["predict", "raw.zarr/raw", "--model", "damaged.npz", "o.zarr", "-q"],
], ids=["usage", "nan", "model"])
def test_bad_input_in_a_real_process_is_one_line(workspace, tmp_path, argv):
    work = tmp_path / "w"
    shutil.copytree(workspace, work)
    before = _snapshot(work)
    done = _gpuseg(*argv, cwd=work)
    lines = _terminal_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"gpuseg {argv[0]}: error: ") and not done.stdout
    assert _snapshot(work) == before


def test_quiet_means_quiet(workspace, tmp_path):
    """-q: no progress, no 'computing on the CPU' line, no library warnings; only the result on stdout."""
    work = tmp_path / "w"
    shutil.copytree(workspace, work)
    done = _gpuseg("filter", "raw.zarr/raw", "o.zarr", "--sigma", "1", "-q", cwd=work)
    assert done.returncode == 0 and done.stderr == "" and done.stdout.strip() == "o.zarr"
    loud = _gpuseg("filter", "raw.zarr/raw", "p.zarr", "--sigma", "1", cwd=work)
    assert loud.returncode == 0 and "p.zarr" in loud.stdout
    assert "gaussian" in loud.stderr  # its progress bar: what -q took away
    if not backend.gpu_status()[0]:
        assert "computing on the CPU" in loud.stderr
    np.testing.assert_array_equal(io.open_array(work / "o.zarr")[:], io.open_array(work / "p.zarr")[:])


def test_info_counts_non_finite_voxels(workspace, capsys):
    """info describes a volume with NaN (the other commands refuse it): finite statistics and the count."""
    assert main(["info", str(workspace / "nan.zarr"), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = io.open_array(workspace / "nan.zarr")[:]
    assert report["nonfinite"] == 2 and report["min"] == np.nanmin(data) and report["max"] == np.nanmax(data)
    assert report["mean"] == pytest.approx(float(np.nanmean(data.astype(np.float64))))
    assert main(["info", str(workspace / "nan.zarr"), "-q"]) == 0
    assert "NaN or inf 2 voxels" in capsys.readouterr().out
