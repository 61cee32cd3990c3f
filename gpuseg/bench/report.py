"""What a benchmark run reports: a plain-text table, the JSON file, and a throughput plot."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from ..plots import save_figure, subplots

DEVICE_MARKERS = {"cpu": "o", "gpu": "s"}


def fmt_rate(voxels: float, seconds: float = 1.0) -> str:
    """Voxels per second with a unit.

    Examples
    --------
    >>> fmt_rate(3e7, 2.0), fmt_rate(512)
    ('15.00 MVox/s', '512 Vox/s')
    """
    rate = voxels / seconds
    for unit, scale in (("GVox/s", 1e9), ("MVox/s", 1e6), ("kVox/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {unit}"
    return f"{rate:.0f} Vox/s"


def fmt_bytes(n: float) -> str:
    """Bytes as MiB or GiB.

    Examples
    --------
    >>> fmt_bytes(3 * 2**20), fmt_bytes(1.5 * 2**30)
    ('3 MiB', '1.50 GiB')
    """
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table, columns padded to width (markdown-compatible).

    Examples
    --------
    >>> print(table([[1, "a"]], ["n", "x"]))
    | n | x |
    |---|---|
    | 1 | a |
    """
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _shares_text(shares: dict | None) -> str:
    if shares is None:
        return "n/a"
    return " / ".join(f"{shares[k] * 100:.0f}" for k in ("io", "compute", "transfer"))


def results_table(result: dict[str, Any]) -> str:
    """The records of a run as one table (sizes, stages, devices; reference and ratio)."""
    rows = []
    for r in result["results"]:
        if "error" in r:
            rows.append([f"{r['size']}³", r["stage"], r["device"], "failed", "", "", "", "", "", "", r["error"]])
            continue
        ref = r["reference"] or {}
        gpu = fmt_bytes(r["peak_gpu_bytes"]) if r["peak_gpu_bytes"] is not None else "-"
        if "seconds" in ref:
            ref_cells = [fmt_rate(ref["voxels_per_s"]), fmt_bytes(ref["peak_rss_bytes"]), f"{r['ratio']:.2f}"]
            note = ref["name"]
        else:
            ref_cells, note = ["-", "-", "-"], f"reference skipped: {ref.get('skipped', '')}"
        if r.get("check"):
            note += f"; {r['check']['what']} {'equal' if r['check']['equal'] else 'DIFFERS'}"
        rows.append([f"{r['size']}³", r["stage"], r["device"], f"{r['seconds']:.2f}", fmt_rate(r["voxels_per_s"]),
                     fmt_bytes(r["peak_rss_bytes"]), gpu, _shares_text(r["shares"]), *ref_cells, note])
    header = ["size", "stage", "device", "s", "throughput", "peak RSS", "peak GPU", "io/compute/transfer %",
              "reference", "ref. RSS", "ratio", "reference / check"]
    m = result["machine"]
    lines = [f"machine: {m['summary']}", f"date: {result['date']}, gpuseg {result['gpuseg_version']}",
             f"command: {result['command']}", table(rows, header),
             "ratio = gpuseg voxels/s / reference voxels/s (reference: whole array in memory, reading and writing zarr "
             "included, measured in the same run); io/compute/transfer: shares of the summed block and task time"]
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str | os.PathLike) -> str:
    """Write ``result`` as indented JSON; return the path."""
    from ..engine import outputs

    with outputs.staged(path, overwrite=True) as tmp, open(tmp, "w") as f:
        json.dump(result, f, indent=1, allow_nan=False)
        f.write("\n")
    return os.fspath(path)


def build_plot(result: dict[str, Any]) -> Any:
    """The throughput figure of :func:`plot`; returns the Figure."""
    from matplotlib.ticker import FuncFormatter

    ok = [r for r in result["results"] if "error" not in r]
    stages = list(dict.fromkeys(r["stage"] for r in ok))
    import matplotlib

    colours = {s: matplotlib.colormaps["tab10"](i % 10) for i, s in enumerate(stages)}
    fig, ax = subplots(figsize=(9.6, 5), dpi=100, layout="constrained")
    for stage in stages:
        for device in dict.fromkeys(r["device"] for r in ok if r["stage"] == stage):
            pts = sorted((r["voxels"], r["voxels_per_s"]) for r in ok if r["stage"] == stage and r["device"] == device)
            ax.plot(*zip(*pts), color=colours[stage], marker=DEVICE_MARKERS.get(device, "^"),
                    label=f"{stage}: gpuseg ({device})")
        refs = {r["voxels"]: (r["reference"]["voxels_per_s"], r["reference"]["name"]) for r in ok
                if r["stage"] == stage and r.get("reference") and "seconds" in r["reference"]}
        if refs:
            pts = sorted((v, rate) for v, (rate, _) in refs.items())
            name = next(iter(refs.values()))[1]
            ax.plot(*zip(*pts), color=colours[stage], linestyle="--", marker="x",
                    label=f"{stage}: reference ({_short(name)})")
    sizes = sorted({r["voxels"] for r in ok})
    ax.set_xscale("log")
    ax.set_yscale("log")
    if sizes:
        ax.set_xticks(sizes, [f"{round(v ** (1 / 3))}³" for v in sizes])
        ax.minorticks_off()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _rate_tick(v)))
    ax.set_xlabel("phantom volume (voxels, log scale)")
    ax.set_ylabel("throughput (log scale)")
    failed = sorted({f"{r['stage']} {r['size']}³" for r in result["results"] if "error" in r})
    note = f"; failed: {', '.join(failed)}" if failed else ""
    fig.suptitle(f"gpuseg bench: throughput of each stage against volume size (solid: gpuseg out of core, "
                 f"dashed: whole-array reference)\n{result['machine']['summary']}; {_date(result['date'])}{note}", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(fontsize=7, loc="outside right center", title="stage: what (device)", title_fontsize=7)
    return fig


def _rate_tick(rate: float) -> str:
    """``1 MVox/s``, ``100 kVox/s``: a log-axis tick without trailing zeros.

    Examples
    --------
    >>> _rate_tick(1e6), _rate_tick(2.5e5), _rate_tick(10)
    ('1 MVox/s', '250 kVox/s', '10 Vox/s')
    """
    for unit, scale in (("GVox/s", 1e9), ("MVox/s", 1e6), ("kVox/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.3g} {unit}"
    return f"{rate:.3g} Vox/s"


def _date(text: str) -> str:
    """An ISO date-time as ``2026-11-26 00:56 UTC`` (other text unchanged)."""
    return text[:16].replace("T", " ") + " UTC" if len(text) >= 16 and text[10:11] == "T" else text


def _short(name: str, width: int = 30) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def plot(result: dict[str, Any], path: str | os.PathLike) -> str:
    """Throughput against size, log-log: one line per stage and device, each reference dashed in its stage's colour.

    Returns
    -------
    str
        The PNG's path.
    """
    save_figure(build_plot(result), path)
    return os.fspath(path)
