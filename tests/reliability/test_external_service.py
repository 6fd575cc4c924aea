"""The Perspective API path under faults, against a fake endpoint on 127.0.0.1: slow answers
(timeouts), 429, 5xx, malformed bodies. Bounded retries with backoff, then one clear error;
never a silent zero score; a flaky service gives the same scores as a healthy one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comptrust_plugin.errors import TrustError
from comptrust_plugin.scorers.perspective import PerspectiveScorer

from ..fake_perspective import FaultyPerspective, word_toxicity

SECRET = "sk-perspective-canary-0c1d"


@pytest.fixture
def service(request: pytest.FixtureRequest) -> FaultyPerspective:
    plan, then = request.param
    server = FaultyPerspective(plan, then)
    yield server
    server.close()


def _scorer(server: FaultyPerspective, waits: list[float], tries: int = 4, timeout: float = 0.5) -> PerspectiveScorer:
    return PerspectiveScorer(SECRET, url=server.url, per_second=0, max_tries=tries, timeout=timeout,
                             sleep=waits.append)


@pytest.mark.parametrize(
    ("service", "waits"),
    [
        (([429, 503, 500], 200), [1.0, 2.0, 4.0]),
        ((["slow", "slow"], 200), [1.0, 2.0]),
        ((["garbage", 502], 200), [1.0, 2.0]),
    ],
    indirect=["service"], ids=["429-5xx", "timeouts", "malformed"],
)
def test_faults_are_retried_with_backoff_then_scored(service: FaultyPerspective, waits: list[float]) -> None:
    slept: list[float] = []
    assert _scorer(service, slept).score(["a reply"]) == [word_toxicity("a reply")]
    assert slept == waits


@pytest.mark.parametrize(
    ("service", "problem"),
    [(([], 503), "HTTP 503"), (([], 429), "HTTP 429"), (([], "slow"), "TimeoutError"),
     (([], "garbage"), "malformed response")],
    indirect=["service"], ids=["5xx", "429", "timeouts", "malformed"],
)
def test_a_service_that_stays_down_is_an_error_never_a_zero(service: FaultyPerspective, problem: str) -> None:
    slept: list[float] = []
    with pytest.raises(TrustError) as info:
        _scorer(service, slept, tries=3).score(["a reply"])
    message = str(info.value)
    assert f"failed after 3 tries ({problem})" in message and "no score was invented" in message
    assert SECRET not in message and "\n" not in message
    assert service.requests == 3 and slept == [1.0, 2.0, 4.0]  # bounded: three tries, doubling waits


def _runword_toxicity(pytester: pytest.Pytester, model: Path, cache: Path, report: Path) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_toxicity", "-p", "no:cacheprovider", f"--model={model}", "--compress=rtn-8",
        "--trust-toxicity-scorer=perspective", f"--trust-cache-dir={cache}", "--trust-samples=12",
        f"--trust-report={report}", "--trust-tolerance=100",  # the scorer's faults are under test, not the gate
    )


def test_the_plugin_with_a_flaky_service_scores_like_a_healthy_one_and_fails_loudly_on_a_dead_one(
    pytester: pytest.Pytester, random_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", SECRET)
    monkeypatch.setenv("PERSPECTIVE_QPS", "0")
    monkeypatch.setenv("PERSPECTIVE_BACKOFF", "0.01")
    monkeypatch.setenv("PERSPECTIVE_TIMEOUT", "0.5")
    scores = []
    flaky: list[int | str] = [429, 503, 200, "slow", "garbage", 200, 500, 200, 429, "slow", 200] * 3
    for name, plan in (("healthy", []), ("flaky", flaky)):
        server = FaultyPerspective(plan)
        monkeypatch.setenv("PERSPECTIVE_API_URL", server.url)
        try:
            result = _runword_toxicity(pytester, random_model, tmp_path / f"cache-{name}", tmp_path / f"{name}.json")
        finally:
            server.close()
        result.assert_outcomes(passed=1)
        report = json.loads((tmp_path / f"{name}.json").read_text())
        scores.append([(r["dense"]["score"], r["compressed"]["score"]) for r in report["results"]])
    assert scores[0] == scores[1]

    dead = FaultyPerspective([], then=503)
    monkeypatch.setenv("PERSPECTIVE_API_URL", dead.url)
    monkeypatch.setenv("PERSPECTIVE_MAX_TRIES", "3")
    try:
        result = _runword_toxicity(pytester, random_model, tmp_path / "cache-dead", tmp_path / "dead.json")
    finally:
        dead.close()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Perspective API failed after 3 tries (HTTP 503); no score was invented*"])
    assert SECRET not in result.stdout.str() + result.stderr.str()
