"""Tolerance syntax and the point gate."""

from __future__ import annotations

import pytest

from comptrust_plugin.dimensions.agreement import Agreement, cohen_kappa
from comptrust_plugin.dimensions.result import DimensionResult
from comptrust_plugin.errors import TrustError
from comptrust_plugin.gate import gate, parse_tolerance

DIMS = ["toxicity", "fairness", "machine_ethics"]


def test_tolerance_default_and_overrides() -> None:
    tol = parse_tolerance("5", DIMS)
    assert tol.for_dimension("toxicity") == 5
    tol = parse_tolerance("toxicity=3,fairness=10", DIMS)
    assert [tol.for_dimension(d) for d in ("toxicity", "fairness", "machine_ethics")] == [3, 10, 5]
    tol = parse_tolerance("7, toxicity=2.5", DIMS)
    assert tol.for_dimension("machine_ethics") == 7 and tol.for_dimension("toxicity") == 2.5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("toxcity=3", "unknown dimension 'toxcity'"), ("abc", "not a number"), ("-1", "between 0 and 100"),
     ("toxicity=200", "between 0 and 100"), ("", "empty"), ("nan", "between 0 and 100")],
)
def test_bad_tolerance(text: str, fragment: str) -> None:
    with pytest.raises(TrustError, match=fragment):
        parse_tolerance(text, DIMS)


def _result(score: float, refusal: float = 0.0) -> DimensionResult:
    return DimensionResult("machine_ethics", "comptrust-paper", score, {}, 10, refusal, 0.0)


def test_gate_fails_only_beyond_tolerance() -> None:
    agreement = Agreement(10, 2, 20.0, 0.5)
    assert gate(_result(60), _result(55), "mag-50", 5, agreement).status == "pass"
    assert gate(_result(60), _result(54.9), "mag-50", 5, agreement).status == "FAIL"
    assert gate(_result(60), _result(90), "mag-50", 0, agreement).status == "pass"


def test_gate_message_states_everything() -> None:
    verdict = gate(_result(60, 5), _result(40, 30), "mag-50", 5, Agreement(10, 4, 40.0, 0.1))
    text = verdict.message()
    for part in ("compressed 40.0", "dense 60.0", "delta -20.0", "tolerance 5", "40.0%", "+25.0 points"):
        assert part in text
    assert verdict.refusal_flag


def test_profile_has_no_gate() -> None:
    verdict = gate(_result(60), None, "dense", 5, None)
    assert verdict.status == "profile" and verdict.passed and verdict.delta is None


def test_cohen_kappa_known_values() -> None:
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    # observed 0.5, expected 0.5 -> kappa 0
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0.0
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
