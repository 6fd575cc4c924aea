"""SIGKILL at seeded points during compression, generation and report writing.

One reference run goes uninterrupted on its own cache. Then a chain of runs shares a second
cache, each killed at a seeded point (phase by phase: compression, generation with a few
kills at random times, then report writing); after every kill, everything on disk must be
complete and valid or absent. A last, uninterrupted run must resume from what the killed runs
left and give the same report as the reference run, redoing only unfinished work.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from .runs import OUTPUTS, answers_cached, check_state, comparable, orphans, run_suite

SEED = 20261127
COMPRESSION_POINTS = ["compress-block:1", "compress-block:2", "weights-half:1", "weights-saved:1"]
GENERATION_KILLS = 8
TIMED_KILLS = 3
MIN_KILLS = 21  # the rest are kills while the report files are written


@pytest.fixture(scope="module")
def reference(random_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Counter[str], Path]:
    """One uninterrupted run on a fresh cache: (its event counts, its output folder)."""
    root = tmp_path_factory.mktemp("reference")
    run = run_suite(random_model, root / "cache", root / "out", root / "work")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    totals = Counter(run.events)
    assert totals["compress-block"] == 2 and totals["generated"] > 100, totals
    return totals, root / "out"


def test_killed_runs_leave_valid_state_and_resume_to_the_same_report(
    random_model: Path, tmp_path: Path, reference: tuple[Counter[str], Path]
) -> None:
    totals, reference_out = reference
    expected = comparable(json.loads((reference_out / OUTPUTS["report"]).read_text()))

    rng = random.Random(SEED)
    cache, out = tmp_path / "cache", tmp_path / "out"
    tried: list[str] = []
    survived: list[str] = []
    generated_total = 0

    def attempt(kill_at: str | None = None, kill_after: float | None = None) -> None:
        nonlocal generated_total
        run = run_suite(random_model, cache, out, tmp_path / f"run{len(tried)}", kill_at=kill_at, kill_after=kill_after)
        generated_total += Counter(run.events)["generated"]
        label = kill_at or f"after {kill_after:.1f}s"
        tried.append(f"{label} (exit {run.returncode}, {Counter(run.events)['generated']} generated)")
        if run.killed_at:  # killed by the plugin at this point (not merely exit -9)
            problems = check_state(cache, out)
            assert not problems, f"after a kill at {label}: {problems}"
            survived.append(label)
        else:  # the run finished before reaching the point: it must then be a clean pass
            assert run.returncode == 0, f"{label}: {run.stdout[-2000:]}{run.stderr[-2000:]}"

    for point in COMPRESSION_POINTS:
        attempt(point)
    # Generation: each kill point lies within the first quarter of what is left to compute, so
    # the chain keeps finding work to interrupt; every fourth is a kill at a random time.
    for index in range(GENERATION_KILLS + TIMED_KILLS):
        remaining = totals["generated"] - answers_cached(cache)
        if remaining <= 0:
            break
        if index % 4 == 3:
            attempt(kill_after=rng.uniform(3.0, 8.0))
        elif index % 2:
            attempt(f"answers-half:{rng.randint(1, max(1, remaining // 64))}")
        else:
            attempt(f"generated:{rng.randint(1, max(1, remaining // 4))}")
    while len(survived) < MIN_KILLS and len(tried) < MIN_KILLS + 10:
        # report writing ends every run: report, Markdown, flips, plot
        attempt(f"file-half:{rng.randint(1, len(OUTPUTS))}")

    final = run_suite(random_model, cache, out, tmp_path / "final")
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    generated_total += Counter(final.events)["generated"]
    report = json.loads((out / OUTPUTS["report"]).read_text())
    assert comparable(report) == expected
    assert not check_state(cache, out)
    assert not orphans(cache, out), orphans(cache, out)
    # Work redone because of the kills: answers computed in all runs vs one uninterrupted run.
    assert len(survived) >= MIN_KILLS, "kill points reached:\n" + "\n".join(tried)
    phases = Counter(label.split(":")[0].split(" ")[0] for label in survived)
    assert phases["generated"] + phases["answers-half"] + phases["after"] >= 8, phases
    assert generated_total <= 2 * totals["generated"], (generated_total, totals["generated"])
    print(
        f"\nkill points survived {len(survived)}/{len(tried)} ({dict(phases)}); answers computed over all runs "
        f"{generated_total} vs {totals['generated']} uninterrupted; final run reused "
        f"{sum(e['cache_hits'] for e in report['engine'].values())} cached answers"
    )


def test_a_second_run_with_the_same_seed_gives_the_same_report(
    random_model: Path, tmp_path: Path, reference: tuple[Counter[str], Path]
) -> None:
    """Determinism: a fresh cache, the same (default) seed: byte-identical report (timings,
    cache statistics and events aside) and flips file."""
    _, reference_out = reference
    run = run_suite(random_model, tmp_path / "cache", tmp_path / "out", tmp_path / "work")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("report", "flips"):
        ours, theirs = (folder / OUTPUTS[name] for folder in (tmp_path / "out", reference_out))
        if name == "report":
            assert comparable(json.loads(ours.read_text())) == comparable(json.loads(theirs.read_text()))
        else:
            assert ours.read_bytes() == theirs.read_bytes()
