"""Reports: the terminal table (tabulate) and the JSON report (validated against its schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from tabulate import tabulate

from . import __version__
from .data.files import schema
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


def render_table(rows: list[ResultRow]) -> str:
    headers = ["dimension", "config", "dense", "compressed", "delta", "tol", "verdict",
               "refusal shift", "flips %", "kappa"]
    body = []
    for row in sorted(rows, key=lambda r: (r.verdict.dimension, r.verdict.config)):
        v = row.verdict
        shift = _fmt(v.refusal_shift, signed=True)
        if v.refusal_flag:
            shift += " (!)"
        kappa = v.agreement.kappa if v.agreement else None
        body.append([
            v.dimension, v.config, _fmt(v.dense), _fmt(v.compressed), _fmt(v.delta, signed=True),
            f"{v.tolerance:g}", v.status, shift,
            _fmt(v.agreement.flip_rate) if v.agreement else "-",
            "-" if kappa is None else f"{kappa:.2f}",
        ])
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


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
