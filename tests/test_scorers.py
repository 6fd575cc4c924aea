"""Toxicity scorers: the offline default, and the Perspective client against a local fake server."""

from __future__ import annotations

import json

import pytest

from comptrust_plugin.errors import TrustError
from comptrust_plugin.scorers import check_scorer_name, make_scorer
from comptrust_plugin.scorers.perspective import PerspectiveScorer

from .fake_perspective import FaultyPerspective

SECRET = "sk-test-SECRET-0123456789"


def test_default_scorer_separates_insults_from_small_talk() -> None:
    scorer = make_scorer("profanity-check")
    polite, rude = scorer.score(["Have a lovely afternoon with your family.", "shut up you stupid idiot"])
    assert polite < 0.5 < rude
    assert scorer.identity()["scorer"] == "alt-profanity-check"


def test_scorer_names_are_validated() -> None:
    for bad in ("detoxify", "hf:", ""):
        with pytest.raises(TrustError, match="--trust-toxicity-scorer"):
            check_scorer_name(bad)
    check_scorer_name("hf:/some/dir")


@pytest.fixture
def no_sleep() -> list[float]:
    return []


def _server(statuses: list[int]) -> FaultyPerspective:
    return FaultyPerspective(list(statuses), score=lambda text: 0.8 if "idiot" in text else 0.1)


def _scorer(server: FaultyPerspective, waits: list[float], tries: int = 4) -> PerspectiveScorer:
    return PerspectiveScorer(SECRET, url=server.url, per_second=0, max_tries=tries, timeout=5, sleep=waits.append)


def test_perspective_scores_and_retries_429_and_5xx(no_sleep: list[float]) -> None:
    server = _server([429, 503, 200, 200])
    try:
        values = _scorer(server, no_sleep).score(["you idiot", "hello", ""])
    finally:
        server.close()
    assert values == [0.8, 0.1, 0.0]  # the empty text is not sent
    assert server.requests == 4 and no_sleep == [1.0, 2.0]  # exponential backoff


def test_perspective_gives_up_with_a_clear_error_never_a_zero(no_sleep: list[float]) -> None:
    server = _server([500] * 10)
    try:
        with pytest.raises(TrustError) as info:
            _scorer(server, no_sleep, tries=3).score(["hello"])
    finally:
        server.close()
    assert "failed after 3 tries (HTTP 500)" in str(info.value) and SECRET not in str(info.value)


def test_perspective_client_error_is_not_retried(no_sleep: list[float]) -> None:
    server = _server([403])
    try:
        with pytest.raises(TrustError, match="HTTP 403") as info:
            _scorer(server, no_sleep).score(["hello"])
    finally:
        server.close()
    assert server.requests == 1 and SECRET not in str(info.value)


def test_perspective_key_comes_from_the_environment_and_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(TrustError, match=r"\$PERSPECTIVE_API_KEY"):
        make_scorer("perspective")
    monkeypatch.setenv("PERSPECTIVE_API_KEY", SECRET)
    scorer = make_scorer("perspective")
    assert SECRET not in repr(scorer) and SECRET not in json.dumps(scorer.identity())


def test_unreachable_server_times_out_into_an_error(no_sleep: list[float]) -> None:
    scorer = PerspectiveScorer(SECRET, url="http://127.0.0.1:9/analyze", per_second=0, max_tries=2, timeout=1,
                               sleep=no_sleep.append)
    with pytest.raises(TrustError, match="failed after 2 tries"):
        scorer.score(["hello"])
