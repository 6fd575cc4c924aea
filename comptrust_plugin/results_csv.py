"""`--trust-csv=PATH`: one row per (model, revision, config, dimension) appended to a CSV sheet.

A sheet collects runs over time (releases, configs, machines), as the study's own results end in
a spreadsheet. The header is written once, by whichever run creates the file; every run appends
its rows in one write under an inter-process lock (xdist writes from the controller only;
concurrent runs queue), so rows are never torn, interleaved or duplicated. A file whose header is
not this one is left untouched (one-line error): appending would corrupt someone's sheet.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from .errors import TrustError
from .storage import locked

COLUMNS = (
    "date", "model", "model_revision", "config", "dimension", "dense", "compressed", "delta", "ci_low", "ci_high",
    "detectable", "tolerance", "verdict", "refusal_shift", "flip_rate", "kappa", "mcnemar_p", "n",
    "scoring_variant", "samples", "comptrust_version",
)


def _revision(identity: dict[str, Any]) -> str:
    """The model's revision where the hub names one, else the weights' file hash (first 12)."""
    if identity.get("revision"):
        return str(identity["revision"])
    digest = identity.get("sha256") or identity.get("weights_sha256") or ""
    return str(digest)[:12]


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def rows(report: dict[str, Any], date: str | None = None) -> list[dict[str, str]]:
    """The CSV rows of a report's gated results (a dense-only profile run has none)."""
    date = date or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    settings, model = report["settings"], report["model"]
    out = []
    for r in report["results"]:
        if r["compressed"] is None:
            continue
        interval, exact = r.get("interval"), r.get("mcnemar")
        out.append({
            "date": date, "model": model["name"], "model_revision": _revision(model.get("identity") or {}),
            "config": r["config"], "dimension": r["dimension"], "dense": _number(r["dense"]["score"]),
            "compressed": _number(r["compressed"]["score"]), "delta": _number(r["delta"]),
            "ci_low": _number(interval["low"] if interval else None),
            "ci_high": _number(interval["high"] if interval else None),
            "detectable": _number(interval["mdd"] if interval else None),
            "tolerance": r.get("tolerance_rule") or _number(r["tolerance"]), "verdict": r["verdict"],
            "refusal_shift": _number(r["refusal_shift"]), "flip_rate": _number(r["flip_rate"]),
            "kappa": _number(r["kappa"]), "mcnemar_p": _number(exact["p"] if exact else None, 6),
            "n": str(r["dense"]["n"]), "scoring_variant": settings["variant"], "samples": str(settings["samples"]),
            "comptrust_version": report["comptrust_version"],
        })
    return out


def _header(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as existing:
            return existing.readline().rstrip("\r\n")
    except FileNotFoundError:
        return ""


def check(path: Path) -> str:
    """Refuse, before a run, a sheet whose header is not this one (its rows could not be appended);
    the header found ("" for a new or empty file)."""
    header = _header(path)
    if header and header != ",".join(COLUMNS):
        raise TrustError(f"--trust-csv={path}: its header is not comptrust's ({header[:60]}...); name a new "
                         "file (nothing was written to this one)")
    return header


def append(path: Path, report: dict[str, Any]) -> int:
    """Append the report's rows to the sheet at `path` (header first if the file is new or empty);
    returns the number of rows written."""
    new_rows = rows(report)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    with locked(path):
        if not check(path):
            writer.writeheader()
        writer.writerows(new_rows)
        with path.open("a", encoding="utf-8", newline="") as sheet:
            sheet.write(buffer.getvalue())
            sheet.flush()
            os.fsync(sheet.fileno())
    return len(new_rows)
