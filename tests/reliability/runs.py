"""Child pytest runs of the product suite for the reliability tests, and the checks on what
they leave behind (caches, stored models, reports)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from comptrust_plugin.compress.store import ArtifactStore
from comptrust_plugin.data.files import schema

REPO = Path(__file__).resolve().parents[2]
SELECTION = "machine_ethics or toxicity"
SAMPLES = "48"
OUTPUTS = {"report": "report.json", "markdown": "summary.md", "flips": "flips.jsonl", "plot": "radar.png"}
# Fields that describe how a run went (time, what came from cache), not what it found.
RUN_FIELDS = ("engine", "events")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    killed_at: str | None  # the kill point when the child was SIGKILLed
    events: list[str]  # the kill plugin's trace of this run


def suite_command(
    model: Path, cache: Path, out: Path, workdir: Path, kill_at: str | None = None,
    kill_after: float | None = None, extra: tuple[str, ...] = (),
) -> tuple[list[str], dict[str, str]]:
    """Command line and environment of one `pytest --pyargs trust_tests ...` child with the kill
    plugin loaded (its trace goes to workdir/trace.txt, a kill's mark to workdir/killed.txt)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    trace, mark = workdir / "trace.txt", workdir / "killed.txt"
    trace.unlink(missing_ok=True)
    mark.unlink(missing_ok=True)
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COMPTRUST_KILL_TRACE": str(trace), "COMPTRUST_KILL_MARK": str(mark),
    }
    env.pop("COMPTRUST_KILL_AT", None)
    env.pop("COMPTRUST_KILL_AFTER", None)
    if kill_at:
        env["COMPTRUST_KILL_AT"] = kill_at
    if kill_after is not None:
        env["COMPTRUST_KILL_AFTER"] = str(kill_after)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.reliability.kill_points",
        "--pyargs", "trust_tests", "-k", SELECTION, f"--model={model}", "--compress=gptq-4",
        f"--trust-cache-dir={cache}", f"--trust-samples={SAMPLES}", "-q",
        f"--trust-report={out / OUTPUTS['report']}", f"--trust-markdown={out / OUTPUTS['markdown']}",
        f"--trust-flips={out / OUTPUTS['flips']}", f"--trust-plot={out / OUTPUTS['plot']}", *extra,
    ]
    return command, env


def run_suite(
    model: Path, cache: Path, out: Path, workdir: Path, kill_at: str | None = None,
    kill_after: float | None = None, extra: tuple[str, ...] = (), timeout: float = 300,
) -> Run:
    """Run one child to its end (or its kill)."""
    command, env = suite_command(model, cache, out, workdir, kill_at, kill_after, extra)
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    return finished(workdir, done.returncode, done.stdout, done.stderr)


def finished(workdir: Path, returncode: int, stdout: str, stderr: str) -> Run:
    trace, mark = workdir / "trace.txt", workdir / "killed.txt"
    events = trace.read_text(encoding="utf-8").split() if trace.exists() else []
    killed = mark.read_text(encoding="utf-8") if returncode == -9 and mark.exists() else None
    return Run(returncode, stdout, stderr, killed, events)


def comparable(report: dict[str, Any]) -> str:
    """The report without how the run went (timings, cache hits, events), as canonical JSON."""
    kept = {key: value for key, value in report.items() if key not in RUN_FIELDS}
    kept["results"] = [{k: v for k, v in row.items() if k != "seconds"} for row in report["results"]]
    return json.dumps(kept, indent=2, sort_keys=True)


def answers_cached(cache: Path) -> int:
    """Model answers (lists of strings) in the response cache; scorer values are numbers."""
    path = cache / "responses.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM responses WHERE value LIKE '[%'").fetchone()[0])


def check_state(cache: Path, out: Path) -> list[str]:
    """Everything a (killed) run left is complete and valid, or absent; returns the problems.

    Hidden temp files and build folders of a killed process are allowed (nothing reads them;
    the next writer of the same target removes them): see `orphans`.
    """
    problems: list[str] = []
    database = cache / "responses.sqlite3"
    if database.exists():
        conn = sqlite3.connect(database)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                problems.append(f"{database}: integrity_check {verdict}")
            for (value,) in conn.execute("SELECT value FROM responses"):
                json.loads(value)
        except (sqlite3.DatabaseError, ValueError) as exc:
            problems.append(f"{database}: {exc}")
        finally:
            conn.close()
    artifacts = cache / "artifacts"
    for entry in sorted(artifacts.iterdir()) if artifacts.exists() else []:
        if entry.name.startswith(".") or entry.suffix == ".lock":
            continue
        if ".corrupt-" in entry.name:
            problems.append(f"{entry}: a kill made something look corrupt")
            continue
        identity = json.loads((entry / "IDENTITY.json").read_text(encoding="utf-8"))
        problem = ArtifactStore.problem(entry, identity)
        if problem:
            problems.append(f"{entry}: {problem}")
            continue
        from safetensors import safe_open

        for weights in entry.glob("*.safetensors"):
            with safe_open(str(weights), framework="pt") as handle:
                for name in handle.keys():
                    handle.get_tensor(name)
    problems += _check_outputs(out)
    return problems


def _check_outputs(out: Path) -> list[str]:
    problems: list[str] = []
    report = out / OUTPUTS["report"]
    if report.exists():
        try:
            jsonschema.validate(json.loads(report.read_text(encoding="utf-8")), schema("report"))
        except (ValueError, jsonschema.ValidationError) as exc:
            problems.append(f"{report}: {str(exc).splitlines()[0]}")
    flips = out / OUTPUTS["flips"]
    if flips.exists():
        for number, line in enumerate(flips.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{flips}:{number}: not JSON")
    markdown = out / OUTPUTS["markdown"]
    if markdown.exists() and not markdown.read_text(encoding="utf-8").endswith("\n"):
        problems.append(f"{markdown}: truncated")
    plot = out / OUTPUTS["plot"]
    if plot.exists():
        data = plot.read_bytes()
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\x00\x00\x00\x00IEND"):
            problems.append(f"{plot}: not a complete PNG")
    return problems


def orphans(cache: Path, out: Path) -> list[Path]:
    """Hidden leftovers of killed processes (temp files, build folders)."""
    found = [p for p in out.iterdir() if p.name.startswith(".")] if out.exists() else []
    for folder in (cache / "artifacts", cache / "models", cache / "file-hashes"):
        if folder.exists():
            found += [p for p in folder.iterdir() if p.name.startswith(".")]
    return found
