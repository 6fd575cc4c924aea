"""Calibration-seed builds: --trust-calibration-seeds, their mean, and the interval over seeds and items."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from comptrust_plugin.data.files import schema
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome
from comptrust_plugin.paired import paired_bootstrap, seeded_bootstrap


def test_the_seed_level_draws_builds_with_replacement() -> None:
    """Dense and build A answer every item right, build B every item wrong: items add nothing,
    so each replicate's delta is -100 x (share of B among the two builds drawn): 0, -50 or -100
    with chances 1/4, 1/2, 1/4."""
    right = [ItemOutcome(f"k{i}", "all", "", 1.0, "") for i in range(30)]
    wrong = [ItemOutcome(f"k{i}", "all", "", 0.0, "") for i in range(30)]

    def mean(outcomes: list[ItemOutcome]) -> float:
        return 100.0 * sum(o.value or 0.0 for o in outcomes) / len(outcomes)

    interval = seeded_bootstrap(right, [right, wrong], mean, replicates=2000, seed=3, threshold=-60.0)
    assert interval is not None and interval.seeds == 2 and interval.units == 30
    assert (interval.low, interval.high) == (-100.0, 0.0)
    assert interval.se == pytest.approx(100 / 8**0.5, rel=0.05)  # sd of {0, -50, -100} at 1/4, 1/2, 1/4
    assert interval.p_worse == pytest.approx(0.75, abs=0.03)
    assert interval.se_dense == 0.0
    # items still count: one build, same as no seed level at all in spread
    noisy = [ItemOutcome(f"k{i}", "all", "", float(i % 3 == 0), "") for i in range(30)]
    one = seeded_bootstrap(right, [noisy], mean, replicates=2000, seed=3)
    paired = paired_bootstrap(right, noisy, mean, replicates=2000, seed=3)
    assert one is not None and paired is not None
    assert one.se == pytest.approx(paired.se, rel=0.1)


def test_a_config_built_with_several_seeds_is_their_mean() -> None:
    outcomes = (ItemOutcome("k0", "a", "yes", 1.0, "yes"),)
    builds = [DimensionResult("fairness", "dt", score, {"a": score, "b": 2 * score}, 10, refusal, 0.0, outcomes)
              for score, refusal in ((60.0, 10.0), (70.0, 20.0), (80.0, 0.0))]
    mean = DimensionResult.mean_of(builds)
    assert (mean.score, mean.subscores, mean.refusal_rate, mean.n) == (70.0, {"a": 70.0, "b": 140.0}, 10.0, 10)
    assert mean.outcomes == outcomes


def test_calibration_seeds_in_a_real_run(pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path) -> None:
    report = tmp_path / "r.json"
    args = ["--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider",
            f"--trust-cache-dir={tmp_path / 'cache'}", f"--model={says_wrong_model}", "--compress=wanda-50-ns4,rtn-8",
            "--trust-calibration-seeds=2", "--trust-bootstrap=200", f"--trust-report={report}"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*machine_ethics*wanda-50-ns4*(2 seeds 75.0..75.0)*"])
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema("report"))
    rows = {r["config"]: r for r in data["results"]}
    seeds = rows["wanda-50-ns4"]["seeds"]
    assert [b["config"] for b in seeds["builds"]] == ["wanda-50-ns4", "wanda-50-seed1-ns4"]
    assert rows["wanda-50-ns4"]["interval"]["seeds"] == 2 and rows["wanda-50-ns4"]["mcnemar"] is None
    assert rows["rtn-8"]["seeds"] is None and rows["rtn-8"]["interval"]["seeds"] == 1  # no calibration
    assert data["settings"]["calibration_seeds"] == 2
    assert data["engine"]["wanda-50-seed1-ns4"]["computed"] > 0  # the second build answered
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=2)
    assert all(stats["computed"] == 0 for stats in json.loads(report.read_text())["engine"].values())
    bad = pytester.runpytest(*args[:-3], "--trust-calibration-seeds=11")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--trust-calibration-seeds=11: use 1..10 (each seed is one more build*"])
