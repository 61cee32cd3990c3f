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


def test_demo_runs_and_reports(tmp_path, capsys):
    assert run_cli("demo", "--output", tmp_path / "demo", "-q") == 0
    out = capsys.readouterr().out
    assert "phase volume fractions" in out and "active" in out
    png = tmp_path / "demo/demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    seg = io.open_array(tmp_path / "demo/demo.zarr/segmentation")[:]
    truth = io.open_array(tmp_path / "demo/demo.zarr/truth")[:]
    assert set(np.unique(seg)) <= {1, 2}
    # the printed fraction is the segmentation's, and it is close to the truth on this easy phantom
    fraction = float(out.split("active", 1)[1].split()[0])
    assert fraction == pytest.approx(np.mean(seg == 1), abs=1e-4)
    assert abs(fraction - np.mean(truth == 1)) < 0.05


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

    for command, (_, text) in COMMANDS.items():
        sub = next(a for a in build_parser([command])._actions if a.dest == "command")
        assert len(sub.choices[command]._actions) > 1, command  # its real parser, not the one-line stub
        assert any(c.help == text for c in sub._choices_actions if c.dest == command)
