"""Many verdicts, one error rate: Holm's and Benjamini-Hochberg's corrections for the confident gate.

Pure: p-values in, decisions out. One run makes a verdict per (config, dimension): with nine
dimensions and three configs, 27 tests, each at the 95% interval's one-sided 2.5%, would fail a
sound compression somewhere about half the time by chance. Each verdict's hypothesis is "no
drop beyond the tolerance"; its p-value is the bootstrap's `p_worse` (paired.py).

The family is the run's gated (config, dimension) tests, known when they are collected, so each
test decides alone at the Bonferroni level ALPHA / m, which is Holm's first step and a subset of
what Benjamini-Hochberg rejects. When every test has run, the run's report applies the whole
procedure: Holm's step-down (family-wise error <= ALPHA) or Benjamini-Hochberg's step-up (false
discovery rate <= ALPHA, for independent or positively dependent tests) can reject more, and each
verdict they reject beyond its test's own decision becomes a FAIL of the run (exit status 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

METHODS = ("holm", "bh", "none")
ALPHA = 0.025  # the confident gate's one-sided level: the upper tail of its 95% interval


def parse_method(text: str) -> str:
    from .errors import TrustError, one_line

    if text not in METHODS:
        raise TrustError(f"--trust-multiplicity={one_line(text)}: choose one of {', '.join(METHODS)} "
                         "(holm: family-wise error; bh: false discovery rate; none: each verdict alone)")
    return text


def single_level(method: str, family: int, alpha: float = ALPHA) -> float:
    """The level one test uses alone: alpha, or alpha / family under a correction."""
    return alpha if method == "none" or family <= 1 else alpha / family


def adjusted(p_values: Sequence[float], method: str, family: int | None = None) -> list[float]:
    """Adjusted p-values, in the input's order; a verdict is rejected when its value <= alpha.

    `family` (>= len(p_values)) counts tests that have no p-value here (errored, or without an
    interval) as never rejected, which keeps the correction as strict as the tests' own."""
    m = max(family or 0, len(p_values))
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    result = [1.0] * len(p_values)
    if method == "none":
        return [min(1.0, p) for p in p_values]
    if method == "holm":
        running = 0.0
        for rank, index in enumerate(order):  # rank 0 is the smallest p
            running = max(running, min(1.0, (m - rank) * p_values[index]))
            result[index] = running
        return result
    if method == "bh":
        running = 1.0
        for rank in range(len(order) - 1, -1, -1):
            index = order[rank]
            running = min(running, m * p_values[index] / (rank + 1))
            result[index] = min(1.0, running)
        return result
    raise ValueError(f"unknown multiplicity method {method!r}")


def rejected(p_values: Sequence[float], method: str, family: int | None = None, alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses the procedure rejects at `alpha`."""
    return [value <= alpha for value in adjusted(p_values, method, family)]


def correct_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the whole procedure applied across its confident verdicts (a new dict).

    Each such row gets `adjusted_p`; a row the procedure rejects that its own test passed becomes
    FAIL with `adjusted_fail` true, its test's verdict in `own_verdict`, and the reason. Other
    reports are returned as they are."""
    settings = report.get("settings", {})
    info = settings.get("multiplicity") or {}
    method = info.get("method", "none")
    if settings.get("gate") != "confident" or method == "none":
        return report
    tested = [i for i, row in enumerate(report["results"])
              if row.get("compressed") and (row.get("interval") or {}).get("p_worse") is not None]
    family = max(int(info.get("family") or 1), len(tested))
    values = adjusted([report["results"][i]["interval"]["p_worse"] for i in tested], method, family)
    results = [dict(row) for row in report["results"]]
    for index, value in zip(tested, values):
        row = results[index]
        row["adjusted_p"] = value
        if value <= ALPHA and row["verdict"] != "FAIL":
            row["own_verdict"] = row["verdict"]  # what its test decided, kept so a merge can redo this
            row["verdict"], row["adjusted_fail"] = "FAIL", True
            reason = (f"{method}: adjusted p {value:.2g} <= {ALPHA:g} across {family} verdicts "
                      f"(its own test's level was {row.get('level') or ALPHA:.2g})")
            row["reason"] = f"{row['reason']}; {reason}" if row.get("reason") else reason
    return {**report, "results": results, "passed": all(row["verdict"] != "FAIL" for row in results)}


def failed_by_correction(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows correct_report turned into FAILs."""
    return [row for row in report["results"] if row.get("adjusted_fail")]


def uncorrected(report: dict[str, Any]) -> dict[str, Any]:
    """The report as its tests left it, before correct_report (a new dict): a part of a run (a
    shard) was corrected across its own verdicts only, and the whole run's family is larger."""
    method = (report.get("settings", {}).get("multiplicity") or {}).get("method", "none")
    dropped = ("adjusted_p", "adjusted_fail", "own_verdict")
    results = []
    for original in report["results"]:
        row = {key: value for key, value in original.items() if key not in dropped}
        if "own_verdict" in original:
            row["verdict"] = original["own_verdict"]
            before, _, _ = (row.get("reason") or "").rpartition(f"{method}: adjusted p ")
            row["reason"] = before.removesuffix("; ")
        results.append(row)
    return {**report, "results": results, "passed": all(row["verdict"] != "FAIL" for row in results)}
