"""Shared test fixtures: the GPU path (a real GPU, or the strict test double), the real electrode geometry.

``gpu``-marked tests run on a real CUDA GPU when cupy is importable and works. Without one they
run on ``tests/gpu_double`` (a strict double of cupy / cupyx.scipy.ndimage / cuCIM on numpy):
for each such test the double's modules are put into ``sys.modules`` and gpuseg's GPU caches
cleared, and afterwards both are undone, so CPU tests never see a ``cupy``. Set
``GPUSEG_GPU_DOUBLE=0`` to skip the ``gpu`` tests instead, as before the double existed.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

from gpuseg import backend

# start-up hook for the double in child processes: never a test module
collect_ignore = ["gpu_double/_autoinstall"]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NMC_GEOMETRY = SHARED_DATA / "nmc-1-cal_generatedCBD_bridge.tif"


@functools.cache
def gpu_path() -> tuple[str, str]:
    """("real", device) with a usable CUDA GPU, else ("double", why not) or ("skip", why not)."""
    ok, why = backend.gpu_status()
    if ok:
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return "real", name.decode() if isinstance(name, bytes) else str(name)
    backend.gpu_status.cache_clear()  # judged again once the double is in place
    if os.environ.get("GPUSEG_GPU_DOUBLE", "1") == "0":
        return "skip", why
    return "double", why


def pytest_report_header(config):
    path, detail = gpu_path()
    if path == "real":
        return f"gpu path: real CUDA GPU ({detail}); gpu-marked tests use cupy"
    if path == "double":
        return f"gpu path: tests/gpu_double (strict cupy test double; no usable GPU: {detail})"
    return f"gpu path: none; gpu-marked tests are skipped (GPUSEG_GPU_DOUBLE=0; {detail})"


def pytest_collection_modifyitems(config, items):
    path, why = gpu_path()
    if path != "skip":
        return
    skip = pytest.mark.skip(reason=f"needs a usable CUDA GPU: {why}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _clear_gpu_state() -> None:
    """Forget everything gpuseg cached about the GPU: module-level functools caches and slot streams.

    Every loaded ``gpuseg`` module is swept rather than a fixed list of names, so the sweep
    keeps working while the engine's modules move (CPU caches are cleared too; they refill).
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "gpuseg" or name.startswith("gpuseg.")):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
        if getattr(module, "_slot_streams", None) is not None:
            module._slot_streams = None


@pytest.fixture(autouse=True)
def _gpu_modules(request):
    """For ``gpu``-marked tests without a real GPU: the double's modules in, gpuseg's GPU caches cleared."""
    if request.node.get_closest_marker("gpu") is None or gpu_path()[0] != "double":
        yield
        return
    import gpu_double

    gpu_double.control.reset()
    gpu_double.install()
    _clear_gpu_state()
    monkeypatch = pytest.MonkeyPatch()
    _child_processes_see_the_double(monkeypatch, gpu_double)
    try:
        yield
    finally:
        monkeypatch.undo()
        _clear_gpu_state()
        gpu_double.uninstall()
        _clear_gpu_state()


def _child_processes_see_the_double(monkeypatch: pytest.MonkeyPatch, gpu_double) -> None:
    """Processes the test starts import the double at start-up (``gpu_double/_autoinstall/sitecustomize.py``)."""
    here = Path(gpu_double.__file__).resolve().parent
    paths = [str(here / "_autoinstall"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("GPU_DOUBLE_AUTOINSTALL", "1")
    monkeypatch.setenv("GPU_DOUBLE_PATH", str(here.parent))
    monkeypatch.setenv("GPU_DOUBLE_TOTAL_MEMORY", str(gpu_double.control.spec().total_memory))


@pytest.fixture
def gpu_double():
    """The double's control API (``gpu_double.control``), installed and reset; skipped on a real GPU."""
    path, detail = gpu_path()
    if path == "real":
        pytest.skip(f"a real GPU is in use ({detail}); the test double's controls do not apply")
    import gpu_double as double

    installed_here = not double.installed()
    double.control.reset()
    if installed_here:
        double.install()
        _clear_gpu_state()
    try:
        yield double.control
    finally:
        if installed_here:
            _clear_gpu_state()
            double.uninstall()
            _clear_gpu_state()


@pytest.fixture
def nmc_geometry() -> Path:
    """The real NMC-1 geometry (../shared/data), or skip where a clone has no ../shared."""
    if not NMC_GEOMETRY.exists():
        pytest.skip(f"real electrode geometry not found at {NMC_GEOMETRY} (only beside the project's checkout)")
    return NMC_GEOMETRY


def run_cli(*argv: str) -> int:
    """Run the gpuseg CLI in-process and return its exit code."""
    from gpuseg.cli import main

    return main([str(a) for a in argv])


def one_line_error(capsys, code: int, *words: str) -> None:
    """The CLI exited 2 with one stderr line holding every one of ``words``."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
