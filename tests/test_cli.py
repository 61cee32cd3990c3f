import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from gpuseg import backend, config, io
from tests.conftest import run_cli


@pytest.fixture
def stack(tmp_path):
    vol = np.random.default_rng(0).integers(0, 4000, (12, 20, 22), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", vol)
    return tmp_path / "stack.tif", vol


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if ": error: " in line]


def test_ingest_info_filter_export(tmp_path, stack, capsys):
    src, vol = stack
    assert run_cli("ingest", src, tmp_path / "v.zarr/raw", "--voxel-size", "397", "--chunks", "8", "-q") == 0
    assert run_cli("info", tmp_path / "v.zarr/raw", "--json", "-q") == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["shape"] == [12, 20, 22] and info["voxel_size_nm"] == [397.0] * 3
    assert info["min"] == vol.min() and info["max"] == vol.max()
    assert info["mean"] == pytest.approx(vol.mean()) and info["std"] == pytest.approx(vol.std())
    assert run_cli("filter", tmp_path / "v.zarr/raw", tmp_path / "v.zarr/smooth", "--sigma", "1.5",
                   "--device", "cpu", "--scheduler", "synchronous", "-q") == 0
    assert run_cli("export", tmp_path / "v.zarr/smooth", tmp_path / "smooth_slices", "-q") == 0
    assert len(list((tmp_path / "smooth_slices").iterdir())) == 12
    assert run_cli("crop", tmp_path / "v.zarr/raw", tmp_path / "c.zarr", "--size", "4", "-q") == 0
    np.testing.assert_array_equal(io.open_array(tmp_path / "c.zarr")[:], vol[4:8, 8:12, 9:13])


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["info", "{tmp}/missing.tif", "-q"], "missing.tif: no such file"),
        (["ingest", "{tmp}/torn.tif", "{tmp}/o.zarr", "-q"], "torn.tif"),
        (["ingest", "{tmp}/mixed", "{tmp}/o.zarr", "-q"], "share shape and dtype"),
        (["ingest", "{tmp}/complex.npy", "{tmp}/o.zarr", "-q"], "dtype complex64 is not supported"),
        (["ingest", "{tmp}/stack.tif", "{tmp}/exists.zarr", "-q"], "already exists; pass --overwrite"),
        (["ingest", "{tmp}/stack.tif", "{tmp}/afile/o.zarr", "-q"], "cannot write"),
        (["filter", "{tmp}/stack.tif", "{tmp}/f.zarr", "--sigma", "0", "-q"], "sigma"),
        (["filter", "{tmp}/stack.tif", "{tmp}/f.zarr", "--sigma", "1", "--scheduler", "bogus", "-q"], "unknown scheduler"),
        (["demo", "--config", "{tmp}/bad.yaml", "-q"], "config key 'filtr' is unknown"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, stack, capsys, argv, needle):
    src, vol = stack
    (tmp_path / "torn.tif").write_bytes(src.read_bytes()[: vol.nbytes // 3])
    (tmp_path / "mixed").mkdir()
    tifffile.imwrite(tmp_path / "mixed/a1.tif", vol[0])
    tifffile.imwrite(tmp_path / "mixed/a2.tif", vol[1, :5])
    np.save(tmp_path / "complex.npy", np.zeros((2, 2, 2), np.complex64))
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "bad.yaml").write_text("filtr: {sigma: 1}\n")
    io.create_array(tmp_path / "exists.zarr", (2, 2, 2), np.uint8, (2, 2, 2))[:] = 7
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert run_cli(*argv) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and needle in lines[0], lines
    assert (io.open_array(tmp_path / "exists.zarr")[:] == 7).all()  # nothing existing was touched


def test_gpu_requested_without_gpu(tmp_path, stack, capsys, monkeypatch):
    if backend.gpu_status()[0]:
        pytest.skip("this machine has a usable GPU; the no-GPU error cannot occur here")
    src, _ = stack
    assert run_cli("filter", src, tmp_path / "f.zarr", "--sigma", "1", "--device", "gpu", "-q") == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "--device gpu" in lines[0] and "--device cpu" in lines[0]
    assert not (tmp_path / "f.zarr").exists()


TINY_DEMO = "phantom: {shape: [16, 24, 24]}\nstudy: {protocols: [S2, cWS], variants: [filtered]}\ncompute: {chunks: 16}\n"
"""A demo small enough for a test (the default is the one-minute 96³ study; its figures take most of a tiny one's
time, so one variant)."""


def test_demo_runs_a_small_study_and_reports_it(tmp_path, capsys):
    """The table the demo prints and its report are what the written segmentations say: each user's fraction, the
    spread (n − 1), the mean pairwise disagreement and the accuracy, recomputed here with numpy."""
    from itertools import combinations

    (tmp_path / "tiny.yaml").write_text(TINY_DEMO)
    out = tmp_path / "demo"
    assert run_cli("demo", out, "--config", tmp_path / "tiny.yaml", "-q") == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "study/study.json").read_text())
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in (out / "study/study.html").read_text() and (out / "study/study.csv").exists()
    truth = io.open_array(out / "phantom.zarr/truth")[:]
    assert f"truth's active-material fraction: {np.mean(truth == 1):.4f}" in printed
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in printed.splitlines()
            if line.split()[:1] in (["raw"], ["filtered"])}
    assert sorted(rows) == [("filtered", "S2"), ("filtered", "cWS")]
    for res in report["results"]:
        segs = [io.open_array(out / "study" / u["path"])[:] for u in res["users"]]
        active = [np.mean(seg == 1) for seg in segs]
        differ = np.mean([100 * np.mean(a != b) for a, b in combinations(segs, 2)])
        shown = rows[(res["variant"], res["protocol"])]
        assert [float(v) for v in shown[:3]] == pytest.approx(active, abs=5e-5)
        assert float(shown[3]) == pytest.approx(np.std(active, ddof=1), abs=5e-5)
        assert float(shown[4]) == pytest.approx(differ, abs=5e-4)
        assert res["active_fraction_std"] == pytest.approx(np.std(active, ddof=1))
        assert res["mean_pairwise_percent"] == pytest.approx(differ)
        for u, seg in zip(res["users"], segs):
            assert set(np.unique(seg)) <= {1, 2}
            assert u["accuracy"] == pytest.approx(np.mean((seg == 1) == (truth == 1)))
    # the same demo again: refused without --overwrite (nothing touched), replaced with it, to the same bytes
    before = {p: p.read_bytes() for p in (out / "study/study.json", out / "study/study.csv")}
    assert run_cli("demo", out, "--config", tmp_path / "tiny.yaml", "-q") == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "--overwrite" in lines[0], lines
    assert run_cli("demo", "--output", out, "--config", tmp_path / "tiny.yaml", "--overwrite", "-q") == 0
    assert {p: p.read_bytes() for p in before} == before
    assert capsys.readouterr().out == printed


def test_configs_demo_yaml_is_the_default():
    with open(Path(__file__).resolve().parents[1] / "configs/demo.yaml") as f:
        assert yaml.safe_load(f) == config.DEMO_DEFAULTS


def test_version_and_help(capsys):
    assert run_cli("--version") == 0 and "gpuseg" in capsys.readouterr().out
    assert run_cli("filter", "--help") == 0 and "--sigma" in capsys.readouterr().out


def test_help_starts_without_the_scientific_stack():
    """`gpuseg --help` and `--version` import no numpy, dask or zarr; a command imports only its own module."""
    import subprocess
    import sys

    code = ("import sys; from gpuseg.cli import main; main(['--version']); main(['--help']); "
            "print(sorted(m for m in ('numpy', 'dask', 'zarr', 'gpuseg.cli.classify') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    from gpuseg.cli import COMMANDS, build_parser

    # every command's own help, built in one fresh process: still no library behind numpy
    heavy = ("dask", "zarr", "scipy", "sklearn", "numba", "tifffile", "skimage", "matplotlib", "distributed")
    code = ("import contextlib, io, sys; from gpuseg.cli import COMMANDS, main\n"
            "for c in COMMANDS:\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
            "        main([c, '--help'])\n"
            "    assert 'usage: gpuseg ' + c in out.getvalue(), c\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr

    for command, (_, text) in COMMANDS.items():
        sub = next(a for a in build_parser([command])._actions if a.dest == "command")
        assert len(sub.choices[command]._actions) > 1, command  # its real parser, not the one-line stub
        assert any(c.help == text for c in sub._choices_actions if c.dest == command)
