"""Shared test fixtures: GPU availability, the real electrode geometry beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuseg import backend

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NMC_GEOMETRY = SHARED_DATA / "nmc-1-cal_generatedCBD_bridge.tif"


def pytest_collection_modifyitems(config, items):
    ok, why = backend.gpu_status()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"needs a usable CUDA GPU: {why}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
