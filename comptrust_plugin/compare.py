"""`comptrust compare OLD NEW`: two reports (or two stored baselines), score by score, and what got worse.

Pure functions on the files' JSON plus rendering; the console script (cli.py) reads the
arguments, prints, and turns the result into an exit status.

What is compared: for each dimension the dense score (config "dense"), and for each compressed
config its compressed score. Every score is higher-is-better (0..100, as the gate reads it), so
NEW is worse where its score is below OLD's by more than the tolerance (points, or a percent of
the OLD score, the grammar of `--trust-tolerance`).

Intervals: a report carries, per compressed row, the paired-bootstrap interval of its delta
(compressed - dense). Placed at the dense score it is the range of the compressed score that the
run supports (the plot's whiskers); two such ranges that do not overlap "separate". Non-overlap
of two 95% intervals is a conservative reading of a difference. Dense scores and baselines carry
no interval.

Comparable means measured with the same instrument: the same model (hub id, local folder or GGUF
file, and chat format; its revision or weights' hash may differ, which is what a new release
is), probe tier, seed, scoring variant and its reference, dtype, and per shared dimension the
probe data (and, in baselines, every prompt with its generation settings and the scorer). Any
other difference (device, comptrust version, weights' version) is shown as a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from tabulate import tabulate

from .data.files import schema
from .errors import TrustError, one_line
from .gate import Tolerance

DENSE = "dense"
# Keys of a model identity that version its weights: they may differ between two releases.
WEIGHTS_VERSION = ("revision", "sha256", "weights_sha256")


@dataclass(frozen=True)
class Score:
    """One score of one file, with the interval the run supports where it has one."""

    score: float
    low: float | None = None
    high: float | None = None
    level: float | None = None


@dataclass(frozen=True)
class Side:
    """What one file (OLD or NEW) says: its kind, its identity as compared, and its scores."""

    path: Path
    kind: str  # "report" or "baseline"
    identity: dict[str, Any]  # file path of a field -> value; must be equal on both sides
    dimension_identity: dict[str, dict[str, Any]]  # dimension -> its own fields (compared where shared)
    context: dict[str, Any]  # shown when they differ, never an error (device, versions)
    scores: dict[tuple[str, str], Score]  # (dimension, config) -> score
    label: str  # the model as a reader knows it


@dataclass(frozen=True)
class Change:
    """One (dimension, config): both scores where both files have it, and how it moved."""

    dimension: str
    config: str
    old: Score | None
    new: Score | None
    allowed: float  # the drop allowed, in points (a relative tolerance applied to the OLD score)
    rule: str  # the tolerance as given: "5" or "5%"

    @property
    def change(self) -> float | None:
        return None if self.old is None or self.new is None else self.new.score - self.old.score

    @property
    def separated(self) -> bool | None:
        """The two intervals do not overlap; None where either score has none."""
        old, new = self.old, self.new
        if old is None or new is None or None in (old.low, old.high, new.low, new.high):
            return None
        assert old.low is not None and old.high is not None and new.low is not None and new.high is not None
        return old.high < new.low or new.high < old.low

    @property
    def status(self) -> str:
        change = self.change
        if change is None:
            return "only in OLD" if self.new is None else "only in NEW"
        if change < -self.allowed:
            return "WORSE"
        return "better" if change > 0 else ("same" if change == 0 else "within")


@dataclass(frozen=True)
class Comparison:
    old: Side
    new: Side
    changes: list[Change]
    notes: list[str] = field(default_factory=list)

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.status == "WORSE"]


# ----------------------------------------------------------------------------- reading
def load(path: Path) -> Side:
    """A report or a stored baseline from `path`; TrustError (one line) for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(str(exc))
        raise TrustError(f"{path}: not readable JSON ({reason})") from None
    if isinstance(data, dict) and "comptrust_baseline" in data:
        kind = "baseline"
    elif isinstance(data, dict) and "results" in data and "comptrust_version" in data:
        kind = "report"
    else:
        raise TrustError(
            f"{path}: neither a comptrust report (--trust-report) nor a stored baseline (--trust-baseline)"
        )
    try:
        jsonschema.validate(data, schema(kind))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise TrustError(f"{path}: does not match the {kind} schema at {where}: {one_line(exc.message)}") from None
    return from_report(path, data) if kind == "report" else from_baseline(path, data)


def _model_lineage(name: str, identity: dict[str, Any]) -> dict[str, Any]:
    """The model without its weights' version (which two releases may differ in)."""
    if not identity:  # a run that failed before the model was identified names it only
        return {"name": name}
    return {k: v for k, v in identity.items() if k not in WEIGHTS_VERSION}


def _weights_version(identity: dict[str, Any]) -> str:
    for key in WEIGHTS_VERSION:
        if identity.get(key):
            return str(identity[key])[:12]
    return "-"


def _clip(value: float) -> float:
    return min(max(value, 0.0), 100.0)


def from_report(path: Path, report: dict[str, Any]) -> Side:
    settings, model = report["settings"], report["model"]
    identity: dict[str, Any] = {
        "model.identity" if model["identity"] else "model.name": _model_lineage(model["name"], model["identity"]),
        "settings.samples": settings["samples"], "settings.seed": settings["seed"],
        "settings.variant": settings["variant"], "settings.dtype": settings["dtype"],
        # a mean over calibration-seed builds is not one build's score
        "settings.calibration_seeds": settings.get("calibration_seeds", 1),
    }
    if settings.get("scoring_reference"):
        identity["settings.scoring_reference.commit"] = settings["scoring_reference"]["commit"]
    scores: dict[tuple[str, str], Score] = {}
    per_dimension: dict[str, dict[str, Any]] = {}
    scorers = report.get("scorers") or {}
    for row in report["results"]:
        dimension = row["dimension"]
        fields = per_dimension.setdefault(dimension, {f"results[{dimension}].probe_sha256": row["probe_sha256"]})
        if dimension in scorers:
            fields[f"scorers.{dimension}"] = scorers[dimension]
        scores.setdefault((dimension, DENSE), Score(row["dense"]["score"]))
        if row["compressed"] is None:
            continue
        compressed, interval = row["compressed"]["score"], row.get("interval")
        dense = row["dense"]["score"]
        scores[(dimension, row["config"])] = Score(
            compressed, _clip(dense + interval["low"]), _clip(dense + interval["high"]), interval["level"]
        ) if interval else Score(compressed)
    context = {"device": settings["device"], "comptrust version": report["comptrust_version"],
               "model weights (revision or hash)": _weights_version(model["identity"])}
    return Side(path, "report", identity, per_dimension, context, scores, model["name"])


def from_baseline(path: Path, baseline: dict[str, Any]) -> Side:
    stored = baseline["identity"]
    runtime = stored.get("runtime") or {}
    identity: dict[str, Any] = {
        "identity.model": _model_lineage("", stored["model"]), "identity.samples": stored["samples"],
        "identity.seed": stored["seed"], "identity.variant": stored["variant"],
        "identity.runtime.dtype": runtime.get("dtype"),
    }
    per_dimension = {
        name: {f"dimensions.{name}.identity": entry["identity"]} for name, entry in baseline["dimensions"].items()
    }
    scores = {(name, DENSE): Score(entry["result"]["score"]) for name, entry in baseline["dimensions"].items()}
    context = {"device": runtime.get("device"), "accelerator": runtime.get("accelerator"),
               "comptrust version": stored["comptrust_version"],
               "model weights (revision or hash)": _weights_version(stored["model"])}
    label = str(stored["model"].get("id") or stored["model"].get("path") or stored["model"].get("file") or "model")
    return Side(path, "baseline", identity, per_dimension, context, scores, label)


# --------------------------------------------------------------------------- comparing
def _difference(old: Any, new: Any, where: str) -> tuple[str, Any, Any] | None:
    """The first field (a path as the file spells it) whose values differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:  # the order the identity lists them
            path = f"{where}.{key}" if where else str(key)
            if key not in old or key not in new:
                return path, old.get(key, "(absent)"), new.get(key, "(absent)")
            found = _difference(old[key], new[key], path)
            if found:
                return found
        return None
    return None if old == new else (where, old, new)


def _shown(value: Any) -> str:
    text = one_line(json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def check_comparable(old: Side, new: Side) -> None:
    """TrustError naming the first field that makes OLD and NEW incomparable."""
    if old.kind != new.kind:
        raise TrustError(f"OLD ({old.path}) is a {old.kind} and NEW ({new.path}) a {new.kind}: "
                         "compare two reports or two baselines")
    shared = sorted(set(old.dimension_identity) & set(new.dimension_identity))
    found = _difference(old.identity, new.identity, "") or _difference(
        {d: old.dimension_identity[d] for d in shared}, {d: new.dimension_identity[d] for d in shared}, ""
    )
    if found:
        where, before, after = found
        if where.split(".")[0] in shared:  # drop the dimension prefix: the path inside names it already
            where = where.split(".", 1)[1]
        raise TrustError(f"OLD and NEW were measured differently and cannot be compared: {where} is "
                         f"{_shown(before)} in OLD, {_shown(after)} in NEW; rerun one with the other's settings")


def compare(old: Side, new: Side, tolerance: Tolerance) -> Comparison:
    """Every (dimension, config) of either file, with the tolerance of its dimension; raises
    TrustError when the two are not comparable (check_comparable)."""
    check_comparable(old, new)
    changes = []
    for dimension, config in sorted(set(old.scores) | set(new.scores)):
        before, after = old.scores.get((dimension, config)), new.scores.get((dimension, config))
        limit = tolerance.for_dimension(dimension)
        allowed = limit.points(before.score if before is not None else 0.0)  # relative: a share of OLD
        changes.append(Change(dimension, config, before, after, allowed, str(limit)))
    notes = [f"{name} differs: {old.context[name]} in OLD, {new.context[name]} in NEW"
             for name in old.context if old.context[name] != new.context.get(name)]
    for status in ("only in OLD", "only in NEW"):
        missing = [f"{c.dimension} [{c.config}]" for c in changes if c.status == status]
        if missing:
            notes.append(f"{status} (not compared): {', '.join(missing)}")
    return Comparison(old, new, changes, notes)


# --------------------------------------------------------------------------- rendering
def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _range(score: Score | None) -> str:
    if score is None or score.low is None or score.high is None:
        return "-"
    return f"[{score.low:.1f}, {score.high:.1f}]"


def _tolerance(change: Change) -> str:
    return f"{change.rule} ({change.allowed:.3g})" if change.rule.endswith("%") else change.rule


def render_table(comparison: Comparison, tablefmt: str = "simple") -> str:
    headers = ["dimension", "config", "old", "new", "change", "tol", "old interval", "new interval", "separate",
               "status"]
    body = [
        [c.dimension, c.config, _fmt(c.old.score if c.old else None), _fmt(c.new.score if c.new else None),
         _fmt(c.change, signed=True), _tolerance(c), _range(c.old), _range(c.new),
         "-" if c.separated is None else ("yes" if c.separated else "no"), c.status]
        for c in comparison.changes
    ]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def summary(comparison: Comparison) -> str:
    worse = comparison.worse
    if not worse:
        return "NEW is not worse than OLD beyond the tolerance"
    listed = ", ".join(f"{c.dimension} [{c.config}] {c.change:+.1f}" for c in worse)
    return f"{len(worse)} score(s) worse beyond the tolerance: {listed}"


def _heading(comparison: Comparison) -> str:
    old, new = comparison.old, comparison.new
    model = old.label if old.label == new.label else f"{old.label} / {new.label}"
    return f"{model}: OLD {old.path} vs NEW {new.path}"


def render_terminal(comparison: Comparison) -> str:
    lines = [f"comptrust compare: {_heading(comparison)}", "", render_table(comparison), ""]
    lines += [f"note: {note}" for note in comparison.notes]
    lines.append(summary(comparison))
    return "\n".join(lines) + "\n"


def render_markdown(comparison: Comparison) -> str:
    """A Markdown summary that fits a CI job summary (e.g. $GITHUB_STEP_SUMMARY)."""
    lines = [f"## comptrust compare: {_heading(comparison)}", "", f"**{summary(comparison)}.**", "",
             render_table(comparison, tablefmt="github"), ""]
    lines += [f"- {note}" for note in comparison.notes]
    lines.append("")
    lines.append("Intervals: each run's paired-bootstrap interval of its delta placed at its dense score; "
                 "`separate` = the two do not overlap.")
    return "\n".join(lines) + "\n"
