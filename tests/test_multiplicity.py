"""Multiplicity: Holm and Benjamini-Hochberg across a run's confident verdicts, and the p-value they use."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest
from scipy.stats import false_discovery_control

from comptrust_plugin import multiplicity
from comptrust_plugin.data.files import schema
from comptrust_plugin.dimensions.agreement import Agreement
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome
from comptrust_plugin.errors import TrustError
from comptrust_plugin.gate import gate
from comptrust_plugin.multiplicity import ALPHA, adjusted, correct_report, parse_method, rejected, single_level
from comptrust_plugin.paired import Interval, paired_bootstrap


def _holm_by_definition(p: list[float], m: int, alpha: float) -> list[bool]:
    """Holm's step-down as its paper states it: walk the sorted p-values, reject while
    p_(k) <= alpha / (m - k + 1), stop at the first that is not."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out = [False] * len(p)
    for k, index in enumerate(order, start=1):
        if p[index] > alpha / (m - k + 1):
            break
        out[index] = True
    return out


def test_holm_matches_its_definition_and_a_hand_case() -> None:
    assert adjusted([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = random.Random(7)
    for _ in range(500):
        n = rng.randint(1, 30)
        p = [rng.choice([rng.random() * 0.01, rng.random() * 0.1, rng.random()]) for _ in range(n)]
        family = n + rng.choice([0, 0, 3])
        for alpha in (0.025, 0.05, 0.1):
            # where p sits exactly on a boundary, m * p and alpha / m can round apart; stay off them
            if any(abs(v * (family - k) - alpha) < 1e-12 for v in p for k in range(family)):
                continue
            assert rejected(p, "holm", family, alpha) == _holm_by_definition(p, family, alpha)


def test_bh_matches_scipy() -> None:
    rng = random.Random(11)
    for _ in range(500):
        n = rng.randint(1, 40)
        p = [rng.choice([rng.random() * 0.01, rng.random() * 0.1, rng.random()]) for _ in range(n)]
        assert adjusted(p, "bh") == pytest.approx(list(false_discovery_control(p, method="bh")), rel=1e-12, abs=1e-15)


def test_untested_family_members_only_make_the_correction_stricter() -> None:
    p = [0.004, 0.02]
    assert adjusted(p, "holm", family=2) == pytest.approx([0.008, 0.02])
    assert adjusted(p, "holm", family=5) == pytest.approx([0.02, 0.08])
    assert adjusted(p, "bh", family=4) == pytest.approx([0.016, 0.04])
    assert adjusted(p, "none", family=9) == p


def test_levels_and_method_names() -> None:
    assert single_level("holm", 27) == pytest.approx(ALPHA / 27)
    assert single_level("bh", 1) == single_level("none", 27) == ALPHA
    assert parse_method("bh") == "bh"
    with pytest.raises(TrustError, match=r"^--trust-multiplicity=bonf: choose one of holm, bh, none \(holm"):
        parse_method("bonf")


def _result(score: float) -> DimensionResult:
    return DimensionResult("machine_ethics", "comptrust-paper", score, {}, 100, 0.0, 0.0)


@pytest.mark.parametrize(("p_worse", "expected"), [(0.0005, "FAIL"), (0.002, "inconclusive"), (0.4, "pass")])
def test_a_corrected_confident_verdict_fails_on_its_p_value(p_worse: float, expected: str) -> None:
    """Under a correction the test's level is alpha / family; the interval still says inconclusive."""
    interval = Interval(-9.0 if expected != "pass" else -4.0, -6.0 if expected == "FAIL" else 1.0,
                        0.95, 20000, 1.0, 100, p_worse=p_worse)
    agreement = Agreement(10, 2, 20.0, 0.5)
    level = single_level("holm", 27)
    verdict = gate(_result(60), _result(52), "mag-50", 5, agreement, interval, "confident", family=27, level=level)
    assert verdict.status == expected
    assert "p 0.0005 vs 0.00093 for 27 verdicts" in verdict.message() or expected != "FAIL"
    # the same interval without a correction: its upper end decides (-6 < -5: FAIL)
    alone = gate(_result(60), _result(52), "mag-50", 5, agreement, interval, "confident")
    assert alone.status == ("FAIL" if expected == "FAIL" else expected)


def test_p_worse_counts_replicates_at_or_above_the_threshold() -> None:
    dense = [ItemOutcome(f"k{i}", "all", "", float(i % 2), "") for i in range(60)]
    worse = [ItemOutcome(f"k{i}", "all", "", 0.0 if i % 6 == 1 else float(i % 2), "") for i in range(60)]
    seen: list[float] = []

    def mean(outcomes: list[ItemOutcome]) -> float:
        return 100.0 * sum(o.value or 0.0 for o in outcomes) / len(outcomes)

    def recording(outcomes: list[ItemOutcome]) -> float:
        value = mean(outcomes)
        seen.append(value)
        return value

    interval = paired_bootstrap(dense, worse, recording, replicates=400, seed=5, threshold=-5.0)
    assert interval is not None and interval.p_worse is not None
    deltas = [after - before for before, after in zip(seen[0::2], seen[1::2])]  # dense is drawn first
    assert len(deltas) == 400 and sum(deltas) / 400 == pytest.approx(-16.7, abs=1.5)
    assert interval.p_worse == (1 + sum(d >= -5.0 for d in deltas)) / 401
    # the interval's upper end sits below the threshold when, and only when, few replicates reach it
    for threshold, beyond in ((-5.0, True), (-12.0, False)):
        many = paired_bootstrap(dense, worse, mean, replicates=4000, seed=1, threshold=threshold)
        assert many is not None and many.p_worse is not None
        assert (many.high < threshold) == (many.p_worse < 0.025) == beyond


def _row(config: str, p: float, verdict: str = "pass") -> dict:
    side = {"score": 50.0, "n": 100, "refusal_rate": 0.0, "unparsed_rate": 0.0, "subscores": {}, "variant": "dt"}
    return {
        "dimension": "machine_ethics", "config": config, "verdict": verdict, "dense": side, "compressed": side,
        "delta": 0.0, "tolerance": 5.0, "refusal_shift": 0.0, "flip_rate": 0.0, "kappa": 1.0,
        "probe_sha256": "0" * 64, "level": ALPHA / 3, "family": 3, "reason": "",
        "interval": {"low": -1.0, "high": 1.0, "level": 0.95, "replicates": 2000, "se": 1.0, "mdd": 2.8,
                     "units": 100, "method": "percentile", "p_worse": p},
    }


def _report(method: str, gate_mode: str = "confident") -> dict:
    rows = [_row("a", 0.005), _row("b", 0.011), _row("c", 0.02)]  # none <= 0.025 / 3 = 0.0083 alone but a
    rows[0]["verdict"] = "FAIL"  # ... which its own test already failed
    return {"comptrust_version": "0", "model": {"name": "m", "identity": {}}, "configs": ["a", "b", "c"],
            "settings": {"samples": "smoke", "seed": 0, "device": "cpu", "dtype": "float32", "variant": "dt",
                         "tolerance": {}, "gate": gate_mode,
                         "multiplicity": {"method": method, "family": 3, "level": ALPHA / 3}},
            "results": rows, "passed": False}


def test_the_report_applies_the_whole_procedure() -> None:
    report = _report("holm")
    holm = correct_report(report)
    # Holm: 0.005 x 3 = 0.015, 0.011 x 2 = 0.022 (both <= 0.025), 0.02 x 1 -> max 0.022: all three
    assert [r["verdict"] for r in holm["results"]] == ["FAIL", "FAIL", "FAIL"]
    assert [r.get("adjusted_fail", False) for r in holm["results"]] == [False, True, True]
    assert holm["results"][1]["reason"].startswith("holm: adjusted p 0.022 <= 0.025 across 3 verdicts")
    assert holm["results"][1]["adjusted_p"] == pytest.approx(0.022)
    assert multiplicity.failed_by_correction(holm) == holm["results"][1:]
    jsonschema.validate(holm, schema("report"))
    assert [r["verdict"] for r in report["results"]] == ["FAIL", "pass", "pass"]  # the input is not changed
    bh = correct_report(_report("bh"))
    assert [r["adjusted_p"] for r in bh["results"]] == pytest.approx([0.015, 0.0165, 0.02])
    for unchanged in (_report("none"), _report("holm", gate_mode="point")):
        assert correct_report(unchanged) is unchanged


def test_a_run_fails_when_the_correction_fails_a_verdict_its_test_passed(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session-end step in a real run: with the run's level raised to 1 every verdict is
    rejected, so the verdict that passed its test (p_worse 1.0) fails the run, said in one line."""
    report = tmp_path / "r.json"
    args = ["--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider",
            f"--trust-cache-dir={tmp_path / 'cache'}", f"--model={says_wrong_model}", "--compress=rtn-8,rtn-6",
            "--trust-gate=confident", "--trust-bootstrap=200", f"--trust-report={report}"]
    markdown = tmp_path / "summary.md"
    plain = pytester.runpytest(*args, f"--trust-markdown={markdown}")
    plain.assert_outcomes(passed=2)
    assert plain.ret == 0
    plain.stdout.fnmatch_lines(["*p worse (adj.)*", "*machine_ethics*rtn-6*1 (1)*"])
    assert "Multiplicity: holm across 2 verdicts (each test alone at p_worse <= 0.013)." in markdown.read_text()
    data = json.loads(report.read_text())
    assert data["settings"]["multiplicity"] == {"method": "holm", "family": 2, "level": ALPHA / 2}
    assert {r["family"] for r in data["results"]} == {2} and all(r["adjusted_p"] == 1.0 for r in data["results"])
    assert all(r["interval"]["replicates"] == 800 for r in data["results"])  # 10 / (0.025 / 2)
    monkeypatch.setattr(multiplicity, "ALPHA", 1.0)
    corrected = pytester.runpytest(*args)
    corrected.assert_outcomes(passed=2)
    assert corrected.ret == 1
    corrected.stdout.fnmatch_lines(["*comptrust: 2 verdict(s) FAIL under the holm correction across the run, "
                                    "though their own tests passed: machine_ethics [[]rtn-6[]], machine_ethics*"])
    rows = json.loads(report.read_text())["results"]
    assert all(r["verdict"] == "FAIL" and r["adjusted_fail"] for r in rows)

