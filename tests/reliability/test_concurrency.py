"""Four processes on one cache directory, started together, asking for the same dense answers
and the same compressed model: each built or computed exactly once, no "database is locked",
identical reports."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from .runs import OUTPUTS, check_state, comparable, finished, orphans, suite_command

PROCESSES = 4


def test_four_processes_share_one_cache(random_model: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    children = []
    for index in range(PROCESSES):
        workdir, out = tmp_path / f"work{index}", tmp_path / f"out{index}"
        command, env = suite_command(random_model, cache, out, workdir)
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        children.append((workdir, out, process))
    runs = []
    for workdir, out, process in children:
        stdout, stderr = process.communicate(timeout=600)
        runs.append((out, finished(workdir, process.returncode, stdout, stderr)))

    for _, run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "database is locked" not in run.stdout + run.stderr
    events = Counter(event for _, run in runs for event in run.events)
    assert events["compress-block"] == 2  # one compression of the tiny model's two blocks, in one process
    assert events["weights-saved"] == 1  # stored once
    builders = [run for _, run in runs if "(stored," in run.stdout]
    assert len(builders) == 1
    # Answers: every request computed once over the four processes (the others found them cached).
    reports = [json.loads((out / OUTPUTS["report"]).read_text()) for out, _ in runs]
    computed = sum(stats["computed"] for report in reports for stats in report["engine"].values())
    requested = sum(stats["computed"] + stats["cache_hits"] for stats in reports[0]["engine"].values())
    assert computed == requested, (computed, requested)
    assert events["generated"] + events["scored"] == requested
    assert len({comparable(report) for report in reports}) == 1
    assert not check_state(cache, tmp_path / "out0") and not orphans(cache, tmp_path / "out0")
