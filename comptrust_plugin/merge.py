"""`comptrust merge`: the reports of one run's shards (or of separate runs of one model) as one report.

The parts must have been measured alike: one model and identity, the same settings (tier, seed,
scoring variant and reference, tolerance, gate, multiplicity method, device and dtype), one
comptrust version, and one dense baseline (per dimension the same dense result and probe-set
hash). Each (config, dimension) may appear in one part only, and the shards of a run must all be
there, each once. Anything else is one line naming the file and the field.

Each part's report was corrected for multiplicity across its own verdicts only; the merge undoes
that and corrects across the whole family again. Shards (`--trust-shard`) already decided each
test at the whole run's level (their family counts every shard's tests), so their merge gives the
verdicts of one run. Separate runs each counted their own tests, so their family is the sum, and
their merge is at least as strict as one run: the correction only adds FAILs, and a test that
failed alone at its own run's looser level stays failed (its row keeps that run's `level`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from .baseline import first_difference, value_at
from .data.files import schema
from .errors import TrustError
from .multiplicity import correct_report, single_level, uncorrected
from .report import merge_reports

# A setting each part may have of its own: where its copy of the baseline file was (separate runs: the
# family too, see _identity).
_PER_PART = ("baseline",)


def load(path: Path) -> dict[str, Any]:
    """A report written by --trust-report (schema-checked); one-line TrustError otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, schema("report"))
    except OSError as exc:
        raise TrustError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrustError(f"{path}: not a JSON report ({exc})") from None
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise TrustError(f"{path}: not a comptrust report (at {where}: {exc.message})") from None
    return data


def _identity(report: dict[str, Any], sharded: bool) -> dict[str, Any]:
    """What every part must share: version, model, settings (less what may differ per part)."""
    settings = {k: v for k, v in report["settings"].items() if k not in _PER_PART}
    if not sharded and isinstance(settings.get("multiplicity"), dict):
        settings["multiplicity"] = {"method": settings["multiplicity"].get("method")}
    identity = {"comptrust_version": report["comptrust_version"], "model": report["model"], "settings": settings}
    if sharded:  # the shards of one run were given the same configs
        identity["configs"] = report["configs"]
    return identity


def _check_shards(parts: list[tuple[str, dict[str, Any]]]) -> bool:
    """True when the parts are shards of one run, all present once; False when none is a shard."""
    shards = [(name, report.get("shard")) for name, report in parts]
    marked = [name for name, shard in shards if shard]
    if not marked:
        return False
    if len(marked) != len(parts):
        plain = next(name for name, shard in shards if not shard)
        raise TrustError(f"{plain} is not a shard (no --trust-shard) but {marked[0]} is: merge the shards of one "
                         "run, or whole runs, not both")
    count = shards[0][1]["count"]
    seen: dict[int, str] = {}
    for name, shard in shards:
        if shard["count"] != count:
            raise TrustError(f"{name} is shard {shard['index']}/{shard['count']} but {shards[0][0]} is one of "
                             f"{count}: merge the shards of one run")
        if shard["index"] in seen:
            raise TrustError(f"{seen[shard['index']]} and {name} are both shard {shard['index']}/{count}")
        seen[shard["index"]] = name
    missing = [str(i) for i in range(1, count + 1) if i not in seen]
    if missing:
        raise TrustError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: give all {count} reports "
                         "(a shard whose tests all errored writes none; rerun it)")
    return True


def check(parts: list[tuple[str, dict[str, Any]]]) -> bool:
    """Raise a one-line TrustError unless the parts can be merged; True when they are shards."""
    if not parts:
        raise TrustError("give at least one report to merge")
    sharded = _check_shards(parts)
    first_name, first = parts[0]
    reference = _identity(first, sharded)
    for name, report in parts[1:]:
        field = first_difference(reference, _identity(report, sharded))
        if field:
            raise TrustError(f"{name} cannot be merged with {first_name}: {field} is "
                             f"{value_at(_identity(report, sharded), field)!r} there, "
                             f"{value_at(reference, field)!r} in {first_name}")
    dense: dict[str, tuple[str, dict[str, Any]]] = {}
    owner: dict[tuple[str, str], str] = {}
    for name, report in parts:
        for row in report["results"]:
            key = (row["config"], row["dimension"])
            if key in owner:
                raise TrustError(f"{row['dimension']} [{row['config']}] is in both {owner[key]} and {name}: "
                                 "each test may come from one report only")
            owner[key] = name
            seen = {"dense": row["dense"], "probe_sha256": row["probe_sha256"]}
            where, known = dense.setdefault(row["dimension"], (name, seen))
            field = first_difference(known, seen)
            if field:
                raise TrustError(f"{row['dimension']}: {name} and {where} gated against different dense results "
                                 f"({field} differs): run every part against one --trust-baseline")
    return sharded


def merge(parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The one report a single run would have written (timings, engine statistics and events
    are the parts' own: seconds per row as measured, engine counts summed, events joined)."""
    sharded = check(parts)
    reports = [uncorrected(report) for _, report in parts]
    merged = merge_reports(reports)
    merged.pop("shard", None)
    if any("scorers" in report for report in reports):
        merged["scorers"] = {k: v for report in reports for k, v in report.get("scorers", {}).items()}
    if sharded:
        merged["configs"] = list(reports[0]["configs"])
    else:
        merged["configs"] = list(dict.fromkeys(c for report in reports for c in report["configs"]))
        merged["settings"] = _summed_family(merged["settings"], reports)
    merged = correct_report(merged)
    jsonschema.validate(merged, schema("report"))
    return merged


def _summed_family(settings: dict[str, Any], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Separate runs each counted their own tests: the merged family is the sum, its level anew."""
    info = settings.get("multiplicity")
    if not isinstance(info, dict):
        return settings
    family = sum(int((r["settings"].get("multiplicity") or {}).get("family") or 1) for r in reports)
    confident = settings.get("gate") == "confident" and info["method"] != "none" and family > 1
    level = single_level(info["method"], family) if confident else None
    return {**settings, "multiplicity": {**info, "family": family, "level": level}}
