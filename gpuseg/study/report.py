"""The study's report: per protocol and variant, each user's active-material fraction, the spread, the
disagreement and, with a truth, the error; as JSON, CSV and a terminal table.

Numbers come from :func:`gpuseg.metrics.compare` (one pass over the users' segmentations and
the truth per protocol), two-phase (every label above 1 counts as the rest), as the study's
image subtraction:

* ``active_fraction`` of each user; ``active_fraction_std`` across users (n − 1);
* ``mean_pairwise_percent``: the mean over user pairs of the percentage of voxels they label differently;
* with a truth: each user's ``accuracy`` and ``active_fraction_error`` (fraction − truth's), and the
  truth's own fractions of every phase it has (three-phase where it labels CBD and pore apart);
* forest protocols (ML*, MLX*): each user's ``interval`` from their forest's probabilities
  (:mod:`gpuseg.study.uncertainty`), and per protocol ``interval_check``: how many of the other users'
  fractions fall inside a user's interval, the mean width against the observed std (and with a
  truth, how many intervals hold the truth's fraction);
* MLX protocols: ``central_slice``, the same numbers for the prediction after the central slice
  alone (before the six correction slices), per user and across users, and with a truth the ratio of
  the errors after and before the corrections.

Paths in the report are relative to the study folder and nothing in it depends on time, host,
scheduler or workers, so the same study gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..engine import outputs
from . import protocols as pr
from . import uncertainty

if TYPE_CHECKING:
    from .run import Study

COLUMNS = ("variant", "protocol", "user", "setting", "active_fraction", "accuracy", "active_fraction_error",
           "active_fraction_std", "mean_pairwise_percent", "interval_low", "interval_high", "others_in_interval",
           "central_slice_active_fraction", "central_slice_accuracy", "central_slice_error", "central_slice_std")


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


def _scores(users: Sequence[str], found: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each user's active fraction, and with a truth accuracy and error, from a :func:`gpuseg.metrics.compare` report."""
    return [{"user": name, "active_fraction": seg["fractions"].get("1"), "accuracy": seg.get("accuracy"),
             "active_fraction_error": seg.get("active_fraction_deviation")}
            for name, seg in zip(users, found["segmentations"])]


def interval_check(users: Sequence[Mapping[str, Any]], truth_fraction: float | None) -> dict[str, Any]:
    """How well each user's interval predicts the others: whose fractions fall inside it, its width, the truth.

    Examples
    --------
    >>> users = [{"active_fraction": 0.50, "interval": {"low": 0.48, "high": 0.53, "width": 0.05}},
    ...          {"active_fraction": 0.52, "interval": {"low": 0.51, "high": 0.54, "width": 0.03}}]
    >>> check = interval_check(users, 0.49)
    >>> check["others_inside"], check["others_compared"], check["truth_inside"], round(check["mean_width"], 3)
    (1, 2, 1, 0.04)
    """
    inside = compared = 0
    for i, u in enumerate(users):
        for j, other in enumerate(users):
            if i != j and other["active_fraction"] is not None:
                compared += 1
                inside += u["interval"]["low"] <= other["active_fraction"] <= u["interval"]["high"]
    check: dict[str, Any] = {"delta": users[0]["interval"].get("delta") if users else None,
                             "widen": users[0]["interval"].get("widen") if users else None, "others_inside": inside, "others_compared": compared,
                             "others_inside_share": inside / compared if compared else None,
                             "mean_width": sum(u["interval"]["width"] for u in users) / len(users) if users else None}
    if truth_fraction is not None:
        check["truth_inside"] = sum(u["interval"]["low"] <= truth_fraction <= u["interval"]["high"] for u in users)
    return check


def _central_slice(study: Study, variant: str, protocol: pr.Protocol, final: Sequence[Mapping[str, Any]],
                   compute: Mapping[str, Any]) -> dict[str, Any] | None:
    """An MLX protocol's result after the central slice alone (``prediction-1``), beside the corrected one's."""
    paths = [os.path.join(study.work(variant, protocol, u), pr.FIRST_PREDICTION) for u in study.users]
    if not all(outputs.exists(p) for p in paths):  # only a chain killed before it had one: nothing to compare
        return None
    found = _compare(study, paths, compute)
    users = _scores([u.name for u in study.users], found)
    out: dict[str, Any] = {"users": users, "active_fraction_std": found["active_fraction_std"],
                           "mean_pairwise_percent": found["mean_pairwise_percent"]}
    if study.truth is not None:
        def mean(values: Iterable[Any]) -> float | None:
            values = [v for v in values if v is not None]
            return sum(values) / len(values) if values else None

        central_error = mean(abs(u["active_fraction_error"]) for u in users)
        final_error = mean(abs(u["active_fraction_error"]) for u in final if u["active_fraction_error"] is not None)
        central_wrong = mean(1 - u["accuracy"] for u in users if u["accuracy"] is not None)
        final_wrong = mean(1 - u["accuracy"] for u in final if u["accuracy"] is not None)
        out.update(mean_abs_error=central_error, corrected_mean_abs_error=final_error,
                   error_ratio=_over(final_error, central_error), misclassified=central_wrong,
                   corrected_misclassified=final_wrong, misclassified_ratio=_over(final_wrong, central_wrong))
    return out


def _over(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _compare(study: Study, paths: Sequence[str], compute: Mapping[str, Any]) -> dict[str, Any]:
    return metrics.compare(paths, study.truth, two_phase=True, names=[u.name for u in study.users], chunks=study.chunks,
                           device="cpu", scheduler=compute.get("scheduler"), workers=compute.get("workers"),
                           progress=bool(compute.get("progress")))


def build(study: Study, done: Mapping[tuple[str, str, str], Mapping[str, Any]],
          seen: Mapping[str, Mapping[str, Any]], truth: Mapping[str, Any] | None,
          compute: Mapping[str, Any]) -> dict[str, Any]:
    """Compare the users' segmentations of every protocol and variant; the JSON-ready report."""
    results = []
    truth_fraction = truth["fractions"].get("1") if truth else None
    for variant in study.variants:
        for protocol in study.protocols:
            paths = [study.segmentation(variant, protocol, u) for u in study.users]
            found = _compare(study, paths, compute)
            users = []
            for user, seg, path in zip(study.users, found["segmentations"], paths):
                seg["path"] = os.path.relpath(path, study.outdir)
                users.append({"user": user.name, "path": seg["path"], "active_fraction": seg["fractions"].get("1"),
                              "accuracy": seg.get("accuracy"), "active_fraction_error": seg.get("active_fraction_deviation"),
                              "did": dict(done[(variant, protocol.name, user.name)])})
            if "truth" in found:
                found["truth"]["name"] = "truth"
            result = {"variant": variant, "protocol": protocol.name, "users": users,
                      "active_fraction_std": found["active_fraction_std"],
                      "mean_pairwise_percent": found["mean_pairwise_percent"], "compare": found}
            if protocol.forest:
                for user, entry in zip(study.users, users):
                    entry["interval"] = uncertainty.active_fraction_interval(
                        os.path.join(study.work(variant, protocol, user), pr.PROBABILITIES), chunks=study.chunks,
                        scheduler=compute.get("scheduler"), workers=compute.get("workers"),
                        progress=bool(compute.get("progress"))).to_dict()
                result["interval_check"] = interval_check(users, truth_fraction)
            if protocol.kind == "scribbles":
                result["central_slice"] = _central_slice(study, variant, protocol, users, compute)
            results.append(result)
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
    >>> [row[:9] for row in rows(r)[1:]]
    [['raw', 'S1', 'u1', 'threshold 9', 0.5, '', '', '', ''], ['raw', 'S1', 'all', '', '', '', '', 0.1, 2.0]]
    """
    out: list[list[Any]] = [list(COLUMNS)]
    blank = ""
    for res in report["results"]:
        central = res.get("central_slice") or {}
        for k, u in enumerate(res["users"]):
            interval = u.get("interval", {})
            first = central["users"][k] if central else {}
            out.append([res["variant"], res["protocol"], u["user"], _setting(u["did"]), _v(u.get("active_fraction")),
                        _v(u.get("accuracy")), _v(u.get("active_fraction_error")), blank, blank,
                        _v(interval.get("low")), _v(interval.get("high")), blank, _v(first.get("active_fraction")),
                        _v(first.get("accuracy")), _v(first.get("active_fraction_error")), blank])
        check = res.get("interval_check") or {}
        out.append([res["variant"], res["protocol"], "all", blank, blank, blank, blank,
                    _v(res["active_fraction_std"]), _v(res["mean_pairwise_percent"]), blank, blank,
                    _v(check.get("others_inside_share")), blank, blank, blank, _v(central.get("active_fraction_std"))])
    truth = report.get("truth_fractions")
    if truth:  # every phase the truth has (three where it labels CBD and pore apart)
        names = truth.get("phase_names", {})
        text = ", ".join(f"{p} {names.get(p, '')} {_v(f)}".replace("  ", " ") for p, f in truth["fractions"].items())
        out.append(["", "truth", "truth", f"phase fractions: {text}", _v(truth["fractions"].get("1")),
                    *[blank] * (len(COLUMNS) - 5)])
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
    for title, table in ((interval_title(report), interval_table(report)),
                         (CENTRAL_TITLE, central_slice_table(report))):
        if table is not None:
            lines += ["", title, *_aligned(*table)]
    return "\n".join(lines)


CENTRAL_TITLE = ("MLX after the central slice alone, before the six correction slices (error: mean |active fraction − "
                 "truth's| over users; ratio: corrected error / this one, the study expects at most 0.5)")


def interval_title(report: Mapping[str, Any]) -> str:
    """What the interval table shows, in one line."""
    check: dict[str, Any] = next((r["interval_check"] for r in report["results"] if r.get("interval_check")), {})
    return (f"each forest user's fraction [interval: p(active) threshold 0.5 ± {_f(check.get('delta'), 'g')}, widened "
            f"{_f(check.get('widen'), 'g')} times]; others inside: other users' fractions inside a user's interval "
            "(gpuseg.study.uncertainty)")


def interval_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Head and rows of the forest users' intervals and how well they hold the others (None: no forest protocol).

    Examples
    --------
    >>> u = [{"user": "u1", "active_fraction": 0.5, "interval": {"fraction": 0.5, "low": 0.48, "high": 0.53}},
    ...      {"user": "u2", "active_fraction": 0.52, "interval": {"fraction": 0.52, "low": 0.51, "high": 0.54}}]
    >>> r = {"truth": None, "results": [{"variant": "raw", "protocol": "ML1", "users": u, "active_fraction_std": 0.014,
    ...      "interval_check": {"others_inside": 1, "others_compared": 2, "mean_width": 0.04}}]}
    >>> print("\\n".join(_aligned(*interval_table(r))))
    variant  protocol                       u1                       u2  others inside  mean width  std (n-1)
    raw      ML1       0.5000 [0.4800, 0.5300]  0.5200 [0.5100, 0.5400]            1/2      0.0400     0.0140
    """
    found = [r for r in report["results"] if r.get("interval_check")]
    if not found:
        return None
    truth = report.get("truth") is not None
    head = ["variant", "protocol", *(u["user"] for u in found[0]["users"]), "others inside", "mean width", "std (n-1)"]
    rows = []
    for res in found:
        check = res["interval_check"]
        rows.append([res["variant"], res["protocol"],
                     *(f"{_f(u.get('active_fraction'), '.4f')} [{u['interval']['low']:.4f}, {u['interval']['high']:.4f}]"
                       for u in res["users"]),
                     f"{check['others_inside']}/{check['others_compared']}", _f(check["mean_width"], ".4f"),
                     _f(res["active_fraction_std"], ".4f")] + ([f"{check['truth_inside']}/{len(res['users'])}"] if truth else []))
    return head + (["truth inside"] if truth else []), rows


def central_slice_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Head and rows of the MLX results after the central slice alone, and with a truth the error ratio after the
    corrections to before (the study expects at most 0.5); None without an MLX protocol."""
    found = [r for r in report["results"] if r.get("central_slice")]
    if not found:
        return None
    truth = report.get("truth") is not None
    head = ["variant", "protocol", *(u["user"] for u in found[0]["users"]), "std (n-1)", "differ %"]
    if truth:
        head += ["accuracy", "error", "corrected error", "ratio", "misclassified ratio"]
    rows = []
    for res in found:
        central = res["central_slice"]
        row = [res["variant"], res["protocol"], *(_f(u["active_fraction"], ".4f") for u in central["users"]),
               _f(central["active_fraction_std"], ".4f"), _f(central["mean_pairwise_percent"], ".3f")]
        if truth:
            acc = [u["accuracy"] for u in central["users"] if u["accuracy"] is not None]
            row += [_f(sum(acc) / len(acc) if acc else None, ".4f"), _f(central["mean_abs_error"], ".4f"),
                    _f(central["corrected_mean_abs_error"], ".4f"), _f(central["error_ratio"], ".2f"),
                    _f(central["misclassified_ratio"], ".2f")]
        rows.append(row)
    return head, rows


def _aligned(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A text table: the first two columns (variant, protocol) left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(head, *rows)]
    return ["  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(line, widths))).rstrip()
            for line in (head, *rows)]


def _f(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)
