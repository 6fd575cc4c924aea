"""Response cache and cached engine: identity in every key, no model load when all is cached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from comptrust_plugin.engine.cache import ResponseCache
from comptrust_plugin.engine.cached import CachedEngine
from comptrust_plugin.engine.requests import GenerationRequest, GenerationSettings
from comptrust_plugin.models.chat import Message

BASE_IDENTITY = {"weights": {"model": {"sha256": "a" * 64}}, "dtype": "bfloat16", "device": "cpu"}


class CountingBackend:
    """Answers "<prompt length>" and counts the prompts it was asked to compute."""

    def __init__(self) -> None:
        self.computed = 0

    def generate(self, prompts: Sequence[str], settings: GenerationSettings, seeds, on_done, needed=None) -> None:
        for index, prompt in enumerate(prompts):
            if needed is not None and index not in needed:
                continue
            self.computed += 1
            on_done(index, [f"{len(prompt)}:{s}" for s in range(settings.num_samples)])

    def loglikelihood(self, pairs, on_done) -> None:
        for index, (_context, continuation) in enumerate(pairs):
            self.computed += 1
            on_done(index, (-float(len(continuation)), True))


def _render(messages: Sequence[Message]) -> str:
    return "|".join(f"{m.role}:{m.content}" for m in messages)


class Harness:
    def __init__(self, path: Path) -> None:
        self.cache = ResponseCache(path)
        self.backends: list[CountingBackend] = []

    def engine(self, identity=None) -> CachedEngine:
        def make() -> CountingBackend:
            backend = CountingBackend()
            self.backends.append(backend)
            return backend

        return CachedEngine(identity or BASE_IDENTITY, self.cache, lambda: _render, make)


GREEDY = GenerationSettings()


def _requests(settings: GenerationSettings = GREEDY, text: str = "hello") -> list[GenerationRequest]:
    return [GenerationRequest(f"k{i}", (Message("user", f"{text} {i}"),), settings) for i in range(5)]


def test_second_run_is_fully_cached_and_never_builds_a_backend(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "c.sqlite3")
    first = harness.engine().generate(_requests())
    assert len(harness.backends) == 1 and harness.backends[0].computed == 5
    engine = harness.engine()
    assert engine.generate(_requests()) == first
    assert len(harness.backends) == 1 and not engine.backend_loaded and engine.stats.hits == 5


@pytest.mark.parametrize(
    "change",
    [
        {"identity": {**BASE_IDENTITY, "weights": {"model": {"sha256": "b" * 64}}}},
        {"identity": {**BASE_IDENTITY, "dtype": "float32"}},
        {"identity": {**BASE_IDENTITY, "device": "cuda"}},
        {"identity": {**BASE_IDENTITY, "compression": {"spec": "mag-50"}}},
        {"identity": {**BASE_IDENTITY, "numerics": "hf-numerics/next"}},
        {"settings": GenerationSettings(max_new_tokens=21)},
        {"settings": GenerationSettings(stop=(".",))},
        {"settings": GenerationSettings(temperature=1.0, num_samples=1, seed=0)},
        {"text": "hello!"},
    ],
)
def test_any_identity_change_misses(tmp_path: Path, change: dict) -> None:
    harness = Harness(tmp_path / "c.sqlite3")
    harness.engine().generate(_requests())
    engine = harness.engine(change.get("identity"))
    engine.generate(_requests(change.get("settings", GenerationSettings()), change.get("text", "hello")))
    assert engine.stats.misses == 5 and engine.stats.hits == 0


def test_sampling_seed_is_part_of_the_key_but_not_for_greedy(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "c.sqlite3")
    harness.engine().generate(_requests(GenerationSettings(temperature=0.7, seed=1)))
    engine = harness.engine()
    engine.generate(_requests(GenerationSettings(temperature=0.7, seed=2)))
    assert engine.stats.misses == 5
    harness.engine().generate(_requests(GenerationSettings(seed=1)))
    greedy = harness.engine()
    greedy.generate(_requests(GenerationSettings(seed=2)))
    assert greedy.stats.hits == 5


def test_library_version_is_part_of_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(tmp_path / "c.sqlite3")
    harness.engine().generate(_requests())
    monkeypatch.setattr("comptrust_plugin.engine.cached.__version__", "999.0")
    engine = harness.engine()
    engine.generate(_requests())
    assert engine.stats.misses == 5


def test_loglikelihood_is_cached(tmp_path: Path) -> None:
    from comptrust_plugin.engine.requests import LoglikelihoodRequest

    harness = Harness(tmp_path / "c.sqlite3")
    requests = [LoglikelihoodRequest("a", (Message("user", "q"),), " yes")]
    assert harness.engine().loglikelihood(requests) == {"a": (-4.0, True)}
    engine = harness.engine()
    assert engine.loglikelihood(requests) == {"a": (-4.0, True)} and not engine.backend_loaded


def test_corrupt_cache_file_is_quarantined_not_used(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="unreadable"):
        cache = ResponseCache(path)
    cache.put_many([("k", ["v"])])
    assert cache.get_many(["k"]) == {"k": ["v"]}
    quarantined = list(tmp_path.glob("c.sqlite3.corrupt-*"))
    assert len(quarantined) == 1 and quarantined[0].read_bytes().startswith(b"this is not")


def test_two_connections_share_one_file(tmp_path: Path) -> None:
    first, second = ResponseCache(tmp_path / "c.sqlite3"), ResponseCache(tmp_path / "c.sqlite3")
    first.put_many([("a", [1])])
    assert second.get_many(["a"]) == {"a": [1]}
    assert len(second) == 1


def test_the_hf_backends_numerics_revision_is_in_every_answers_identity(model_cache_dir: Path) -> None:
    """A change to how the HF backend computes can move bf16 near-ties: answers computed before
    it must not be served after it (a changed revision misses: see the parametrized test)."""
    from comptrust_plugin.engine.requests import HF_NUMERICS
    from comptrust_plugin.options import TrustOptions
    from comptrust_plugin.session import TrustSession

    # the tests' model cache: a handle's identity names its chat format, which loads the tokenizer
    session = TrustSession(TrustOptions(cache_dir=model_cache_dir))
    assert session.handle().engine.identity["numerics"] == HF_NUMERICS
