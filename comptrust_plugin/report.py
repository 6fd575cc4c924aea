"""Reports: the terminal table (tabulate) and the JSON report (validated against its schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from tabulate import tabulate

from . import __version__
from .data.files import schema
from .dimensions.agreement import largest_drops
from .dimensions.result import DimensionResult
from .gate import Verdict
from .storage import atomic_write_json


@dataclass(frozen=True)
class ResultRow:
    verdict: Verdict
    dense: DimensionResult
    compressed: DimensionResult | None
    probe_sha256: str
    seconds: float


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


def render_table(results: list[dict[str, Any]]) -> str:
    """The terminal table, from the JSON report's `results` entries."""
    headers = ["dimension", "config", "dense", "compressed", "delta", "tol", "verdict",
               "refusal shift", "flips %", "kappa"]
    body = []
    for r in sorted(results, key=lambda r: (r["dimension"], r["config"])):
        shift = _fmt(r["refusal_shift"], signed=True)
        if r.get("refusal_flag"):
            shift += " (!)"
        compressed = r["compressed"]["score"] if r["compressed"] else None
        body.append([
            r["dimension"], r["config"], _fmt(r["dense"]["score"]), _fmt(compressed),
            _fmt(r["delta"], signed=True), f"{r['tolerance']:g}", r["verdict"], shift,
            _fmt(r["flip_rate"]), "-" if r["kappa"] is None else f"{r['kappa']:.2f}",
        ])
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several (xdist workers): results concatenated, engine stats summed."""
    if not reports:
        raise ValueError("no reports to merge")
    merged = dict(reports[0])
    results = [row for report in reports for row in report["results"]]
    merged["results"] = sorted(results, key=lambda r: (r["dimension"], r["config"]))
    merged["passed"] = all(r["verdict"] != "FAIL" for r in results)
    engine: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, stats in report.get("engine", {}).items():
            into = engine.setdefault(name, {"cache_hits": 0, "computed": 0, "model_loaded": False, "seconds": 0.0})
            into["cache_hits"] += stats["cache_hits"]
            into["computed"] += stats["computed"]
            into["model_loaded"] = into["model_loaded"] or stats["model_loaded"]
            into["seconds"] = round(into["seconds"] + stats["seconds"], 3)
    merged["engine"] = engine
    merged["events"] = [event for report in reports for event in report.get("events", [])]
    jsonschema.validate(merged, schema("report"))
    return merged


def _result_json(result: DimensionResult) -> dict[str, Any]:
    return {
        "score": result.score, "subscores": dict(result.subscores), "n": result.n,
        "refusal_rate": result.refusal_rate, "unparsed_rate": result.unparsed_rate,
        "variant": result.variant,
    }


def build_report(info: RunInfo, rows: list[ResultRow]) -> dict[str, Any]:
    results = []
    for row in sorted(rows, key=lambda r: (r.verdict.dimension, r.verdict.config)):
        v = row.verdict
        agreement = v.agreement
        results.append({
            "dimension": v.dimension, "config": v.config, "verdict": v.status,
            "dense": _result_json(row.dense),
            "compressed": _result_json(row.compressed) if row.compressed else None,
            "delta": v.delta, "tolerance": v.tolerance,
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
