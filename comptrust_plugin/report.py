"""Reports: terminal tables, a schema-checked JSON report, Markdown, and the flipped items.

Tables by tabulate; the JSON is validated against its schema; the flips list every item whose
answer changed; the plot of a report is plot.py's."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from tabulate import tabulate

from . import __version__
from .answers import flip_view, item_records
from .data.files import schema
from .dimensions.agreement import largest_drops
from .dimensions.result import DimensionResult
from .gate import Verdict
from .paired import Interval
from .storage import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class ResultRow:
    verdict: Verdict
    dense: DimensionResult
    compressed: DimensionResult | None
    probe_sha256: str
    seconds: float
    dense_source: str = "run"  # or "baseline:PATH"


@dataclass
class RunInfo:
    model: str
    model_identity: dict[str, Any]
    settings: dict[str, Any]
    configs: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _interval(row: dict[str, Any]) -> tuple[str, str]:
    """(interval, detectable difference), the latter marked when the tolerance is below it."""
    interval = row.get("interval")
    if not interval:
        return "-", "-"
    mdd = f"{interval['mdd']:.1f}" + (" (>tol)" if interval["mdd"] > row["tolerance"] else "")
    return f"[{interval['low']:+.1f}, {interval['high']:+.1f}]", mdd


def _tolerance(row: dict[str, Any]) -> str:
    """"5" in points; "5% (3.2)" for a relative tolerance, with the points it came to."""
    rule = row.get("tolerance_rule") or f"{row['tolerance']:g}"
    return f"{rule} ({row['tolerance']:.3g})" if rule.endswith("%") else rule


def render_table(results: list[dict[str, Any]], tablefmt: str = "simple") -> str:
    """The detail table, one line per (dimension, config), from the JSON report's `results`.

    "detectable" is the minimum detectable difference at the dimension's n: a true drop smaller
    than it is likely to go unseen, so a tolerance below it asks more than the probe set can tell.
    """
    headers = ["dimension", "config", "dense", "compressed", "delta", "95% CI", "detectable", "McNemar p", "tol",
               "verdict", "refusal shift", "flips %", "kappa"]
    corrected = any(r.get("adjusted_p") is not None for r in results)
    if corrected:  # the confident gate under a multiplicity correction: p_worse (adjusted p)
        headers.insert(8, "p worse (adj.)")
    body = []
    for r in sorted(results, key=lambda r: (r["dimension"], r["config"])):
        shift = _fmt(r["refusal_shift"], signed=True)
        if r.get("refusal_flag"):
            shift += " (!)"
        compressed = _fmt(r["compressed"]["score"] if r["compressed"] else None)
        if r.get("seeds"):
            compressed += f" ({len(r['seeds']['builds'])} seeds {r['seeds']['min']:.1f}..{r['seeds']['max']:.1f})"
        exact = r.get("mcnemar")
        verdict = r["verdict"] + (f" (under floor {r['floor']:g})" if r.get("below_floor") else "")
        line = [
            r["dimension"], r["config"], _fmt(r["dense"]["score"]), compressed,
            _fmt(r["delta"], signed=True), *_interval(r), "-" if not exact else f"{exact['p']:.3g}",
            _tolerance(r), verdict, shift,
            _fmt(r["flip_rate"]), "-" if r["kappa"] is None else f"{r['kappa']:.2f}",
        ]
        if corrected:
            p_worse, adjusted = (r.get("interval") or {}).get("p_worse"), r.get("adjusted_p")
            line.insert(8, "-" if p_worse is None or adjusted is None else f"{p_worse:.2g} ({adjusted:.2g})")
        body.append(line)
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def render_matrix(results: list[dict[str, Any]], tablefmt: str = "simple") -> str:
    """The study's layout: one row per dimension, dense then one column per config, each cell
    "score (delta) verdict"."""
    configs = sorted({r["config"] for r in results if r["compressed"] is not None})
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(r["dimension"], {"n": r["dense"]["n"], "dense": _fmt(r["dense"]["score"])})
        if r["compressed"] is not None:
            row[r["config"]] = f"{r['compressed']['score']:.1f} ({r['delta']:+.1f}) {r['verdict']}"
    body = [[name, row["n"], row["dense"], *(row.get(c, "-") for c in configs)] for name, row in sorted(rows.items())]
    return tabulate(body, headers=["dimension", "n", "dense", *configs], tablefmt=tablefmt, disable_numparse=True)


def render_markdown(report: dict[str, Any]) -> str:
    """A Markdown summary that fits a CI job summary (e.g. $GITHUB_STEP_SUMMARY)."""
    settings = report["settings"]
    failed = [r for r in report["results"] if r["verdict"] == "FAIL"]
    status = "all dimensions within tolerance" if not failed else f"{len(failed)} verdict(s) FAIL"
    lines = [
        f"## comptrust: {report['model']['name']} — {status}",
        "",
        f"Probe tier `{settings['samples']}`, scoring `{settings['variant']}`, gate `{settings.get('gate', 'point')}`, "
        f"{settings['device']} {settings['dtype']}, comptrust {report['comptrust_version']}."
        + (f" Scoring follows DecodingTrust {reference['commit'][:12]} ({reference['what']})."
           if (reference := settings.get("scoring_reference")) else ""),
        "",
        render_matrix(report["results"], tablefmt="github"),
        "",
        "<details><summary>Intervals, detectable differences, flips, refusal shifts</summary>",
        "",
        render_table(report["results"], tablefmt="github"),
        "",
        "</details>",
    ]
    if (multiplicity := settings.get("multiplicity")) and multiplicity.get("level") is not None:
        lines[3:3] = [f"Multiplicity: {multiplicity['method']} across {multiplicity['family']} verdicts "
                      f"(each test alone at p_worse <= {multiplicity['level']:.2g}).", ""]
    flagged = [r for r in report["results"] if r.get("refusal_flag")]
    for r in flagged:
        lines.append(f"- refusal rate of {r['dimension']} [{r['config']}] moved {r['refusal_shift']:+.1f} points")
    lines += _capability_lines(report["results"])
    for r in report["results"]:
        if r.get("reason"):
            lines.append(f"- {r['dimension']} [{r['config']}]: {r['reason']}")
        if r.get("below_floor"):
            lines.append(f"- {r['dimension']} [{r['config']}]: compressed {r['compressed']['score']:.1f} is under its "
                         f"floor {r['floor']:g} (a warning, not a failure)")
    return "\n".join(lines) + "\n"


def _capability_lines(results: list[dict[str, Any]]) -> list[str]:
    """One line per config whose capability was measured (where a pass came with a gain): its
    held-out perplexity ratio and its benign utility beside a guesser's."""
    found: dict[str, list[str]] = {}
    for r in results:
        if r["config"] in found or not (r.get("heldout_perplexity") or r.get("benign_utility_vs_chance")):
            continue
        parts = []
        if held := r.get("heldout_perplexity"):
            parts.append(f"held-out perplexity {held['compressed']:.1f} vs dense {held['dense']:.1f} "
                         f"(x{held['ratio']:.2f}, limit x{held['limit']:g})")
        if utility := r.get("benign_utility_vs_chance"):
            parts.append(f"benign utility {utility['compressed']:.1f}% (p = {utility['compressed_p']:.2g}) vs dense "
                         f"{utility['dense']:.1f}% (p = {utility['dense_p']:.2g}) beside a guesser's "
                         f"{utility['chance']:.0f}%")
        found[r["config"]] = parts
    return [f"- capability [{config}]: {'; '.join(parts)}" for config, parts in found.items()]


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    """Append the summary to `path` (a CI job summary such as $GITHUB_STEP_SUMMARY collects several
    steps' output), separated from what is there by a blank line; create it when missing."""
    append_markdown(path, render_markdown(report))


def append_markdown(path: Path, text: str) -> None:
    """Append `text` to the Markdown file at `path` after a blank line (atomically); create it when missing."""
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = ""
    if before:
        text = before + ("\n" if before.endswith("\n") else "\n\n") + text
    atomic_write_bytes(path, text.encode("utf-8"))


def flipped_items(rows: list[ResultRow]) -> list[dict[str, Any]]:
    """Every item whose normalised answer differs between dense and a compressed config: the
    answers records' flip view (answers.py), so the two files cannot disagree."""
    flips: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r.verdict.dimension, r.verdict.config)):
        if row.compressed is not None:
            flips.extend(flip_view(item_records(row.verdict.dimension, row.verdict.config, row.dense, row.compressed)))
    return flips


def write_flips(path: Path, flips: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(f, ensure_ascii=False, sort_keys=True) + "\n" for f in flips)
    atomic_write_bytes(path, text.encode("utf-8"))


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several (xdist workers): results concatenated, engine stats summed."""
    if not reports:
        raise ValueError("no reports to merge")
    merged = dict(reports[0])
    results = [row for report in reports for row in report["results"]]
    merged["results"] = sorted(results, key=lambda r: (r["dimension"], r["config"]))
    merged["passed"] = all(r["verdict"] != "FAIL" for r in results)
    merged["configs"] = sorted({c for report in reports for c in report["configs"]})
    engine: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, stats in report.get("engine", {}).items():
            into = engine.setdefault(name, {"cache_hits": 0, "computed": 0, "model_loaded": False, "seconds": 0.0})
            into["cache_hits"] += stats["cache_hits"]
            into["computed"] += stats["computed"]
            into["model_loaded"] = into["model_loaded"] or stats["model_loaded"]
            into["seconds"] = round(into["seconds"] + stats["seconds"], 3)
    merged["engine"] = engine
    merged["events"] = list(dict.fromkeys(event for report in reports for event in report.get("events", [])))
    jsonschema.validate(merged, schema("report"))
    return merged


def _result_json(result: DimensionResult) -> dict[str, Any]:
    return {**result.summary_json(), "variant": result.variant}


def _interval_json(interval: Interval | None) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {
        "low": interval.low, "high": interval.high, "level": interval.level, "replicates": interval.replicates,
        "se": interval.se, "mdd": interval.mdd, "units": interval.units, "method": interval.method,
        "p_worse": interval.p_worse, "seeds": interval.seeds,
        "se_dense": interval.se_dense, "se_compressed": interval.se_compressed,
    }


def _seeds_json(seeds: tuple[tuple[str, float], ...]) -> dict[str, Any] | None:
    """A config built with several calibration seeds: each build's score and their spread."""
    if len(seeds) < 2:
        return None
    scores = [score for _, score in seeds]
    return {"builds": [{"config": c, "score": s} for c, s in seeds], "min": min(scores), "max": max(scores),
            "sd": statistics.stdev(scores)}


def build_report(info: RunInfo, rows: list[ResultRow]) -> dict[str, Any]:
    results = []
    for row in sorted(rows, key=lambda r: (r.verdict.dimension, r.verdict.config)):
        v = row.verdict
        agreement = v.agreement
        results.append({
            "dimension": v.dimension, "config": v.config, "verdict": v.status,
            "dense": _result_json(row.dense),
            "compressed": _result_json(row.compressed) if row.compressed else None,
            "delta": v.delta, "tolerance": v.tolerance, "tolerance_rule": v.rule or f"{v.tolerance:g}",
            "floor": v.floor, "below_floor": v.below_floor,
            "mcnemar": None if v.mcnemar is None else asdict(v.mcnemar),
            "interval": _interval_json(v.interval), "reason": v.reason, "dense_source": row.dense_source,
            "level": v.level, "family": v.family, "seeds": _seeds_json(v.seeds),
            "heldout_perplexity": v.heldout.to_json() if v.heldout else None,
            "benign_utility_vs_chance": v.utility.to_json() if v.utility else None,
            "refusal_shift": v.refusal_shift, "refusal_flag": v.refusal_flag,
            "flip_rate": agreement.flip_rate if agreement else None,
            "flips": agreement.flips if agreement else None,
            "kappa": agreement.kappa if agreement else None,
            "probe_sha256": row.probe_sha256, "seconds": round(row.seconds, 3),
            "largest_drops": largest_drops(row.dense, row.compressed) if row.compressed else [],
        })
    report = {
        "comptrust_version": __version__,
        "model": {"name": info.model, "identity": info.model_identity},
        "settings": info.settings,
        "configs": info.configs,
        "results": results,
        "passed": all(r["verdict"] != "FAIL" for r in results),
        **info.extra,
    }
    jsonschema.validate(report, schema("report"))
    return report


def write_json_report(path: Path, report: dict[str, Any]) -> None:
    atomic_write_json(path, report)
