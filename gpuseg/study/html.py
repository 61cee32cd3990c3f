"""The study's one-page HTML report: the table, the users, the figures (files beside it, linked)."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine import outputs
from . import report as rp

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
         "td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;color:#555}")


def _f(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> str:
    cells = "".join(f"<th class=l>{html.escape(h)}</th>" if i < left else f"<th>{html.escape(h)}</th>"
                    for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td class=l>{html.escape(c)}</td>" if i < left else f"<td>{html.escape(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def page(report: Mapping[str, Any], figures: Sequence[tuple[str, str]]) -> str:
    """The HTML text of the report.

    Examples
    --------
    >>> r = {"tomogram": "t.zarr", "truth": None, "truth_fractions": None, "parameters": {"seed": 0}, "users": [],
    ...      "results": [{"variant": "raw", "protocol": "S2", "active_fraction_std": 0.01, "mean_pairwise_percent": 1.0,
    ...                   "users": [{"user": "u1", "active_fraction": 0.5}]}]}
    >>> "<td>0.5000</td>" in page(r, [])
    True
    """
    results = report["results"]
    users = [u["user"] for u in results[0]["users"]] if results else []
    truth = report.get("truth") is not None
    head = ["tomogram", "protocol", *users, "std (n−1)", "differ %"] + (["mean accuracy", "mean error"] if truth else [])
    rows = []
    for res in results:
        row = [res["variant"], res["protocol"], *(_f(u.get("active_fraction"), ".4f") for u in res["users"]),
               _f(res["active_fraction_std"], ".4f"), _f(res["mean_pairwise_percent"], ".3f")]
        if truth:
            acc = [u["accuracy"] for u in res["users"] if u.get("accuracy") is not None]
            err = [u["active_fraction_error"] for u in res["users"] if u.get("active_fraction_error") is not None]
            row += [_f(sum(acc) / len(acc) if acc else None, ".4f"), _f(sum(err) / len(err) if err else None, "+.4f")]
        rows.append(row)
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>gpuseg study</title><style>{STYLE}</style></head><body>",
             "<h1>gpuseg study</h1>",
             f"<p>Tomogram <code>{html.escape(str(report['tomogram']))}</code>"
             + (f", truth <code>{html.escape(str(report['truth']))}</code>" if truth else ", no truth") + ". Parameters: "
             + html.escape("; ".join(f"{k} {_text(v)}" for k, v in report["parameters"].items())) + ".</p>",
             "<h2>Active-material volume fraction per user</h2>", _table(head, rows)]
    tf = report.get("truth_fractions")
    if tf:
        parts.append("<p>Truth fractions: " + html.escape(", ".join(
            f"{tf.get('phase_names', {}).get(p, p)} {_f(v, '.4f')}" for p, v in tf["fractions"].items())) + ".</p>")
    intervals = rp.interval_table(report)
    if intervals is not None:
        parts += ["<h2>The interval one forest user can report</h2>", f"<p>{html.escape(rp.interval_title(report))}.</p>",
                  _table(*intervals)]
    central = rp.central_slice_table(report)
    if central is not None:
        parts += ["<h2>MLX after the central slice alone</h2>", f"<p>{html.escape(rp.CENTRAL_TITLE)}.</p>",
                  _table(*central)]
    if report["users"]:
        habit_rows = [[u["user"], "; ".join(f"{part}: " + ", ".join(f"{k} {_short(v)}" for k, v in values.items())
                                            for part, values in u["habits"].items())] for u in report["users"]]
        parts += ["<h2>Simulated users</h2>", _table(["user", "habits"], habit_rows, left=2)]
    for src, caption in figures:
        parts.append(f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _text(value: Any) -> str:
    """A parameter as a person writes it.

    Examples
    --------
    >>> _text(["S1", "S2"]), _text({"sigma": 1.1}), _text(None)
    ('S1, S2', 'sigma 1.1', 'default')
    """
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return "default" if value is None else str(value)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write(outdir: str, report: Mapping[str, Any], figures: Sequence[tuple[str, str]]) -> str:
    """Write ``outdir/study.html`` (replaced whole); its path."""
    path = os.path.join(outdir, "study.html")
    with outputs.staged(path, overwrite=True) as tmp, open(tmp, "w") as f:
        f.write(page(report, figures))
    return path
