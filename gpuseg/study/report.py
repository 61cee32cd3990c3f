"""The study's report: per protocol and variant, each user's active-material fraction, the spread, the
disagreement and, with a truth, the error; as JSON, CSV and a terminal table.

Numbers come from :func:`gpuseg.metrics.compare` (one pass over the users' segmentations and
the truth per protocol), two-phase (every label above 1 counts as the rest), as the study's
image subtraction:

* ``active_fraction`` of each user; ``active_fraction_std`` across users (n − 1);
* ``mean_pairwise_percent``: the mean over user pairs of the percentage of voxels they label differently;
* with a truth: each user's ``accuracy`` and ``active_fraction_error`` (fraction − truth's), and the
  truth's own fractions of every phase it has (three-phase where it labels CBD and pore apart).

Paths in the report are relative to the study folder and nothing in it depends on time, host,
scheduler or workers, so the same study gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..engine import outputs

if TYPE_CHECKING:
    from .run import Study

COLUMNS = ("variant", "protocol", "user", "setting", "active_fraction", "accuracy", "active_fraction_error",
           "active_fraction_std", "mean_pairwise_percent")


def _setting(did: Mapping[str, Any]) -> str:
    """One short text for what a user chose: their threshold, window or painted coverage.

    Examples
    --------
    >>> _setting({"window": [100.0, 140.0]}), _setting({"threshold": 120.0})
    ('window 100-140', 'threshold 120')
    """
    if "threshold" in did:
        return f"threshold {did['threshold']:g}"
    if "window" in did and "central" not in did:
        text = f"window {did['window'][0]:g}-{did['window'][1]:g}"
        return text + (f", seeds of slices {did['slices']}" if "slices" in did and did["slices"] != "all" else "")
    cov = [*did.get("central", {}).get("coverage", []), *did.get("corrections", {}).get("coverage", [])]
    return "painted coverage " + " ".join(f"{c:.3f}" for c in cov) if cov else ""


def build(study: Study, done: Mapping[tuple[str, str, str], Mapping[str, Any]],
          seen: Mapping[str, Mapping[str, Any]], truth: Mapping[str, Any] | None,
          compute: Mapping[str, Any]) -> dict[str, Any]:
    """Compare the users' segmentations of every protocol and variant; the JSON-ready report."""
    results = []
    for variant in study.variants:
        for protocol in study.protocols:
            paths = [study.segmentation(variant, protocol, u) for u in study.users]
            found = metrics.compare(paths, study.truth, two_phase=True, names=[u.name for u in study.users],
                                    chunks=study.chunks, device="cpu", scheduler=compute.get("scheduler"),
                                    workers=compute.get("workers"), progress=bool(compute.get("progress")))
            users = []
            for user, seg, path in zip(study.users, found["segmentations"], paths):
                seg["path"] = os.path.relpath(path, study.outdir)
                users.append({"user": user.name, "path": seg["path"], "active_fraction": seg["fractions"].get("1"),
                              "accuracy": seg.get("accuracy"), "active_fraction_error": seg.get("active_fraction_deviation"),
                              "did": dict(done[(variant, protocol.name, user.name)])})
            if "truth" in found:
                found["truth"]["name"] = "truth"
            results.append({"variant": variant, "protocol": protocol.name, "users": users,
                            "active_fraction_std": found["active_fraction_std"],
                            "mean_pairwise_percent": found["mean_pairwise_percent"], "compare": found})
    return {"format": "gpuseg-study-report", "version": 1, "parameters": study.parameters(),
            "tomogram": study.tomogram, "truth": study.truth, "truth_fractions": truth,
            "users": [{"user": u.name, "habits": u.habits(), "decisions": dict(seen[u.name])} for u in study.users],
            "results": results}


def rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """The report as CSV rows: one per user and protocol, then one ``all`` row with the spread.

    Examples
    --------
    >>> r = {"results": [{"variant": "raw", "protocol": "S1", "active_fraction_std": 0.1, "mean_pairwise_percent": 2.0,
    ...       "users": [{"user": "u1", "did": {"threshold": 9.0}, "active_fraction": 0.5}]}]}
    >>> rows(r)[1:]
    [['raw', 'S1', 'u1', 'threshold 9', 0.5, '', '', '', ''], ['raw', 'S1', 'all', '', '', '', '', 0.1, 2.0]]
    """
    out: list[list[Any]] = [list(COLUMNS)]
    blank = ""
    for res in report["results"]:
        for u in res["users"]:
            out.append([res["variant"], res["protocol"], u["user"], _setting(u["did"]), _v(u.get("active_fraction")),
                        _v(u.get("accuracy")), _v(u.get("active_fraction_error")), blank, blank])
        out.append([res["variant"], res["protocol"], "all", blank, blank, blank, blank,
                    _v(res["active_fraction_std"]), _v(res["mean_pairwise_percent"])])
    truth = report.get("truth_fractions")
    if truth:  # every phase the truth has (three where it labels CBD and pore apart)
        names = truth.get("phase_names", {})
        text = ", ".join(f"{p} {names.get(p, '')} {_v(f)}".replace("  ", " ") for p, f in truth["fractions"].items())
        out.append(["", "truth", "truth", f"phase fractions: {text}", _v(truth["fractions"].get("1")), blank, blank, blank,
                    blank])
    return out


def _v(value: Any) -> Any:
    return "" if value is None else value


def write(outdir: str, report: Mapping[str, Any]) -> tuple[str, str]:
    """Write ``study.json`` and ``study.csv`` into ``outdir`` (each replaced whole); their paths."""
    paths = (os.path.join(outdir, "study.json"), os.path.join(outdir, "study.csv"))
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows(report))
    for path, content in zip(paths, (json.dumps(report, indent=2, sort_keys=True) + "\n", text.getvalue())):
        with outputs.staged(path, overwrite=True) as tmp, open(tmp, "w", newline="") as f:
            f.write(content)
    return paths


def render(report: Mapping[str, Any]) -> str:
    """The report as a terminal table: a row per variant and protocol, a column per user.

    Examples
    --------
    >>> r = {"truth": None, "results": [{"variant": "raw", "protocol": "S2", "active_fraction_std": 0.01,
    ...       "mean_pairwise_percent": 1.5, "users": [{"user": "u1", "active_fraction": 0.5},
    ...                                               {"user": "u2", "active_fraction": 0.52}]}]}
    >>> print(render(r))
    variant   protocol       u1      u2   std (n-1)  differ %
    raw       S2         0.5000  0.5200      0.0100     1.500
    """
    results = report["results"]
    names = [u["user"] for u in results[0]["users"]] if results else []
    truth = report.get("truth") is not None
    head = f"{'variant':<9} {'protocol':<9} " + " ".join(f"{n:>7}" for n in names) + f" {'std (n-1)':>11} {'differ %':>9}"
    lines = [head + ("  accuracy  error" if truth else "")]
    for res in results:
        af = [u.get("active_fraction") for u in res["users"]]
        line = (f"{res['variant']:<9} {res['protocol']:<9} " + " ".join(f"{_f(a, '.4f'):>7}" for a in af)
                + f" {_f(res['active_fraction_std'], '.4f'):>11} {_f(res['mean_pairwise_percent'], '.3f'):>9}")
        if truth:
            acc = [u["accuracy"] for u in res["users"] if u.get("accuracy") is not None]
            err = [u["active_fraction_error"] for u in res["users"] if u.get("active_fraction_error") is not None]
            line += f"  {_f(sum(acc) / len(acc) if acc else None, '.4f'):>8}  {_f(sum(err) / len(err) if err else None, '+.4f')}"
        lines.append(line)
    if truth:
        lines.append("accuracy and error (active fraction − truth's): mean over users")
    return "\n".join(lines)


def _f(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)
