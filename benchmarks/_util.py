"""Shared benchmark helpers: run work in a fresh process and measure wall time and peak RSS.

The measuring code lives in the package (:mod:`gpuseg.bench.measure`, :mod:`gpuseg.bench.report`),
where ``gpuseg bench`` uses it too; this module keeps the names the scripts import.
"""

from __future__ import annotations

from gpuseg.bench.measure import TreeSampler, own_peak_rss, peak_rss_of, peak_rss_of_command
from gpuseg.bench.measure import machine as _machine
from gpuseg.bench.report import fmt_bytes, fmt_rate, table

__all__ = ["TreeSampler", "fmt_bytes", "fmt_rate", "machine", "own_peak_rss", "peak_rss_of", "peak_rss_of_command", "table"]


def machine() -> str:
    """One line naming this machine: CPU model, cores, memory, GPU if any."""
    return _machine()["summary"]
