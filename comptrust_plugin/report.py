"""Reports: terminal tables, a schema-checked JSON report, Markdown, a radar plot, and the flipped items.

Tables by tabulate; the JSON is validated against its schema; the radar plot shows dense vs every
config; the flips list every item whose answer changed."""

from __future__ import annotations

import io
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
    for r in report["results"]:
        if r.get("reason"):
            lines.append(f"- {r['dimension']} [{r['config']}]: {r['reason']}")
        if r.get("below_floor"):
            lines.append(f"- {r['dimension']} [{r['config']}]: compressed {r['compressed']['score']:.1f} is under its "
                         f"floor {r['floor']:g} (a warning, not a failure)")
    return "\n".join(lines) + "\n"


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


PLOT_SIZE_INCHES, PLOT_DPI = 8.0, 100  # an 800 x 800 pixel PNG
RADAR_MIN_DIMENSIONS = 3  # fewer axes than this draw no area: bars instead
RADAR_WHISKER_STEP = 0.05  # radians between the whiskers of neighbouring configs on one axis


def _plot_kind(dimensions: int) -> str:
    """"radar" for three or more dimensions, "bars" for fewer (a radar of one or two axes is empty)."""
    return "radar" if dimensions >= RADAR_MIN_DIMENSIONS else "bars"


def _whisker(dense: float, compressed: float | None, interval: dict[str, Any] | None) -> tuple[float, float] | None:
    """Plausible range of the compressed score, dense + the delta's interval, clipped to 0..100; None without one."""
    if compressed is None or not interval:
        return None
    low, high = sorted((dense + interval["low"], dense + interval["high"]))
    return min(max(low, 0.0), 100.0), min(max(high, 0.0), 100.0)


def _plot_series(results: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, tuple[float, float] | None]]]:
    """Series name -> dimension -> (score, whisker): dense first, then the compressed configs sorted."""
    dense: dict[str, tuple[float, tuple[float, float] | None]] = {}
    configs: dict[str, dict[str, tuple[float, tuple[float, float] | None]]] = {}
    for r in results:
        dense[r["dimension"]] = (r["dense"]["score"], None)
        if r["compressed"] is not None:
            score = r["compressed"]["score"]
            configs.setdefault(r["config"], {})[r["dimension"]] = (
                score, _whisker(r["dense"]["score"], score, r.get("interval"))
            )
    return {"dense": dense, **{name: configs[name] for name in sorted(configs)}}


def _draw_radar(axes: Any, dimensions: list[str], series: dict[str, dict[str, Any]]) -> None:
    """Dense and each config as a closed polygon, with a thin radial whisker where an interval exists."""
    import math

    angles = [2 * math.pi * i / len(dimensions) for i in range(len(dimensions))]
    step = min(RADAR_WHISKER_STEP, math.pi / (2 * len(dimensions) * len(series)))  # configs side by side
    compressed = [name for name in series if name != "dense"]
    for name, scores in series.items():
        values = [scores.get(d, (0.0, None))[0] for d in dimensions]
        (line,) = axes.plot(
            [*angles, angles[0]], [*values, values[0]], label=name, linewidth=2 if name == "dense" else 1.2
        )
        axes.fill([*angles, angles[0]], [*values, values[0]], alpha=0.08)
        if name == "dense":
            continue
        index = compressed.index(name)
        offset = step * (index - (len(compressed) - 1) / 2)
        for angle, d in zip(angles, dimensions):
            whisker = scores.get(d, (0.0, None))[1]
            if whisker is not None:
                axes.plot([angle + offset] * 2, list(whisker), color=line.get_color(), linewidth=1.5,
                          alpha=0.8, marker="o", markersize=2.5)
    axes.set_xticks(angles)
    axes.set_xticklabels([d.replace("_", "\n") for d in dimensions], fontsize=9)
    axes.set_ylim(0, 100)


def _draw_bars(axes: Any, dimensions: list[str], series: dict[str, dict[str, Any]]) -> None:
    """One group per dimension, one bar per series, the score above each bar, whiskers where intervals exist."""
    width = 0.8 / max(len(series), 1)
    for index, (name, scores) in enumerate(series.items()):
        positions = [i - 0.4 + width * (index + 0.5) for i, d in enumerate(dimensions) if d in scores]
        present = [d for d in dimensions if d in scores]
        values = [scores[d][0] for d in present]
        bars = axes.bar(positions, values, width * 0.9, label=name)
        color = bars.patches[0].get_facecolor() if bars.patches else None
        for x, d, value in zip(positions, present, values):
            whisker = scores[d][1]
            top = value
            if whisker is not None:
                axes.plot([x, x], list(whisker), color="black", linewidth=1, marker="_", markersize=8)
                top = max(top, whisker[1])
            axes.annotate(f"{value:.1f}", (x, top), xytext=(0, 3), textcoords="offset points", ha="center",
                          va="bottom", fontsize=8, color=color)
    axes.set_xticks(range(len(dimensions)))
    axes.set_xticklabels([d.replace("_", " ") for d in dimensions], fontsize=9)
    axes.set_xlim(-0.6, max(len(dimensions), 1) - 0.4)
    axes.set_ylim(0, 100)
    axes.set_ylabel("score")


def write_radar_plot(path: Path, report: dict[str, Any]) -> None:
    """Dense and every compressed config over the dimensions (0..100 each), with interval whiskers.

    A radar for three or more dimensions, grouped bars for fewer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    dimensions = sorted({r["dimension"] for r in results})
    series = _plot_series(results)
    figure = plt.figure(figsize=(PLOT_SIZE_INCHES, PLOT_SIZE_INCHES), dpi=PLOT_DPI)
    try:
        title = f"{report['model']['name']}: trust scores, dense vs compressed"
        if _plot_kind(len(dimensions)) == "radar":
            axes = figure.add_subplot(polar=True)
            _draw_radar(axes, dimensions, series)
            axes.set_title(title, pad=24)
            axes.legend(loc="lower right", bbox_to_anchor=(1.1, -0.1), fontsize=8)
        else:
            axes = figure.add_subplot()
            _draw_bars(axes, dimensions, series)
            axes.set_title(title, pad=24)
            axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(series), 4), fontsize=8)
            figure.subplots_adjust(bottom=0.18)
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=PLOT_DPI)  # fixed size: no bbox_inches="tight"
        atomic_write_bytes(path, image.getvalue())  # a killed run never leaves half a PNG
    finally:
        plt.close(figure)


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
