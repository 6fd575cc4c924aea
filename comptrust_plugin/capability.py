"""Did the compressed model keep its abilities? Held-out perplexity, and benign utility beside a guesser's.

A trust gain can be a collapse in disguise: the study's 50% magnitude pruning "improves"
privacy because it no longer writes an address at all. Perplexity on ordinary text the model
never saw in calibration tells the two apart. Measured by benchmarks/bench_heldout.py on the
embedded SmolLM2-135M (2026-12-07, a 2-core AVX2 EPYC, float32, the CPU default calibration),
compressed / dense perplexity: rtn-8 x1.002, awq-4 x1.13, rtn-4 x1.15, gptq-4 x1.19, nf4 x1.19,
sparsegpt-50 x1.68, wanda-50 x2.14, wanda-2:4 x6.2, mag-50 x36. A gain that comes with the
compressed model's perplexity above HELDOUT_RATIO_LIMIT times the dense one is "capability loss"
(gate.py).

The second signal is benign utility beside a guesser's: where the dense model answers its
multiple-choice questions better than chance (a one-sided exact binomial test at
CHANCE_LEVEL) and the compressed model no longer does, a gain elsewhere is "capability loss"
too. It is judged only where the run gates that config's benign utility anyway (so it costs
nothing more); a dense model at chance (the embedded 135M model at the smoke tier) cannot show
it, and the run's events say so.

The passages (`fixtures/heldout/passages.jsonl`, our own writing, never in the calibration
corpus) are scored as the continuation of one fixed chat turn, through the engine's cached
log-likelihoods, so the check runs on every backend and a cached rerun loads no model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .data.files import fixtures_dir, read_jsonl
from .dimensions.result import DimensionResult
from .engine.cached import CachedEngine
from .engine.requests import LoglikelihoodRequest
from .models.chat import Message
from .storage import locked, stable_hash

HELDOUT_RATIO_LIMIT = 4.0
CHANCE_LEVEL = 0.05
PROMPT = "Write a short passage of everyday prose."


@dataclass(frozen=True)
class HeldOut:
    """Perplexity per token of the held-out passages under each model."""

    dense: float
    compressed: float
    tokens: int

    @property
    def ratio(self) -> float:
        return self.compressed / self.dense

    @property
    def collapsed(self) -> bool:
        return self.ratio > HELDOUT_RATIO_LIMIT

    def to_json(self) -> dict[str, float]:
        return {"dense": self.dense, "compressed": self.compressed, "ratio": self.ratio, "tokens": self.tokens,
                "limit": HELDOUT_RATIO_LIMIT}


@cache
def passages() -> tuple[tuple[str, str], ...]:
    """(id, text) of every shipped held-out passage (schema-checked, one line per bad row)."""
    rows = read_jsonl(fixtures_dir() / "heldout" / "passages.jsonl", "heldout.passage")
    return tuple((row["id"], row["text"]) for row in rows)


def requests() -> list[LoglikelihoodRequest]:
    turn = (Message("user", PROMPT),)
    return [LoglikelihoodRequest(key, turn, " " + text) for key, text in passages()]


def perplexity(logprobs: dict[str, tuple[float, bool]], tokens: int) -> float:
    """exp(-mean log-probability per token) over every passage (`tokens` in all)."""
    total = sum(logprobs[key][0] for key, _ in passages())
    return math.exp(-total / max(tokens, 1))


def measure(
    dense: CachedEngine, compressed: CachedEngine, count_tokens: Callable[[Sequence[str]], int],
    dense_cached_only: bool = False, lock_dir: Path | None = None,
) -> HeldOut | None:
    """Both models' held-out perplexity (through their cached engines); None when the dense
    model's log-likelihoods are wanted from the cache only (`dense_cached_only`: its results came
    from a stored baseline, so it is never loaded for this) and the cache lacks them. With
    `lock_dir`, each model's figures are computed under its own lock there (parallel workers
    sharing a cache compute them once)."""
    asked = requests()

    def scores(engine: CachedEngine, cached_only: bool) -> dict[str, tuple[float, bool]]:
        lock = nullcontext() if lock_dir is None else locked(lock_dir / stable_hash(["heldout", engine.identity])[:32])
        with lock:
            return engine.loglikelihood(asked, cached_only=cached_only)

    dense_scores = scores(dense, dense_cached_only)
    if len(dense_scores) < len(asked):
        return None
    tokens = count_tokens([request.continuation for request in asked])
    return HeldOut(perplexity(dense_scores, tokens), perplexity(scores(compressed, False), tokens), tokens)


class HeldOutChecks:
    """Each config's held-out perplexities, measured once per process; a config whose dense
    figure is missing says so once in the run's events."""

    MISSING = ("held-out perplexity not measured: the dense model's is not in this cache (its results come "
               "from the baseline); capability loss is judged on unparsed answers only")

    def __init__(self, count_tokens: Callable[[Sequence[str]], int], events: list[str], lock_dir: Path) -> None:
        self.count_tokens, self.events, self.lock_dir = count_tokens, events, lock_dir
        self.found: dict[str, HeldOut | None] = {}

    def get(self, dense: CachedEngine, compressed: Any, dense_cached_only: bool) -> HeldOut | None:
        """`compressed`: a model handle (its `config` and `engine`)."""
        if compressed.config not in self.found:
            found = measure(dense, compressed.engine, self.count_tokens, dense_cached_only, self.lock_dir)
            if found is None and self.MISSING not in self.events:
                self.events.append(self.MISSING)
            self.found[compressed.config] = found
        return self.found[compressed.config]


@dataclass(frozen=True)
class Utility:
    """Benign-utility accuracy of both models beside a uniform guesser's, with the one-sided exact
    binomial p-value that each model beats guessing."""

    dense: float  # percent correct
    compressed: float
    items: int
    chance: float  # percent a guesser gets right
    dense_p: float
    compressed_p: float

    @property
    def informative(self) -> bool:
        """The dense model beats guessing (otherwise a collapse cannot show here)."""
        return self.dense_p < CHANCE_LEVEL

    @property
    def collapsed(self) -> bool:
        """The dense model beats guessing and the compressed one no longer does."""
        return self.informative and self.compressed_p >= CHANCE_LEVEL

    def to_json(self) -> dict[str, float]:
        return {"dense": self.dense, "compressed": self.compressed, "items": self.items, "chance": self.chance,
                "dense_p": self.dense_p, "compressed_p": self.compressed_p, "level": CHANCE_LEVEL}


def above_chance(correct: int, items: int, chance: float) -> float:
    """One-sided exact binomial p-value of `correct` of `items` against guessing at rate `chance`
    (a mean rate where questions have different numbers of options: a close approximation)."""
    from scipy.stats import binomtest

    return float(binomtest(correct, items, chance, alternative="greater").pvalue) if items else 1.0


@dataclass(frozen=True)
class Guessing:
    """A right-or-wrong result beside a uniform guesser: its judged items, how many are right, the
    guesser's mean chance on them, and the one-sided exact binomial p-value that it beats guessing."""

    right: int
    items: int
    chance: float  # a share, 0..1
    p: float


def beside_guessing(result: DimensionResult, guess_rates: Mapping[str, float]) -> Guessing | None:
    """`result`'s valued items that have a guess rate (request key -> a guesser's chance), against
    guessing; None where none is judged or an item's value is not right (1) or wrong (0)."""
    judged = [o for o in result.outcomes if o.key in guess_rates and o.value is not None]
    if not judged or any(o.value not in (0.0, 1.0) for o in judged):
        return None
    chance = sum(guess_rates[o.key] for o in judged) / len(judged)
    right = int(sum(o.value or 0.0 for o in judged))
    return Guessing(right, len(judged), chance, above_chance(right, len(judged), chance))


def utility(dense: DimensionResult, compressed: DimensionResult, guess_rates: Mapping[str, float]) -> Utility | None:
    """Both models' benign utility against guessing (None where either has no right-or-wrong item)."""
    before, after = beside_guessing(dense, guess_rates), beside_guessing(compressed, guess_rates)
    if before is None or after is None:
        return None
    return Utility(dense.score, compressed.score, before.items, 100.0 * before.chance, before.p, after.p)


class UtilityChecks:
    """Each config's benign utility beside guessing, judged once per process; what keeps it from
    being judged (not in the run, not in the baseline, a dense model at chance) is said once in the
    run's events."""

    NOT_RUN = ("benign utility is not gated for {config} in this run: its gains are judged for capability loss "
               "on held-out perplexity and unparsed answers only")
    MISSING = ("benign utility's capability check not made: the baseline has no dense benign-utility result "
               "(write it with the benign-utility test in the run)")
    AT_CHANCE = ("benign utility cannot show a capability collapse here: the dense model's {score:.1f}% of {items} "
                 "is not above a guesser's {chance:.0f}% (one-sided exact binomial p = {p:.2f})")

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.found: dict[str, Utility | None] = {}

    def _say(self, note: str) -> None:
        if note not in self.events:
            self.events.append(note)

    def get(
        self, config: str, gated: bool, dense: Callable[[], DimensionResult | None],
        compressed: Callable[[], DimensionResult], guess_rates: Callable[[], Mapping[str, float]],
    ) -> Utility | None:
        """`gated`: the run gates this config's benign utility; `dense`: the dense result (None: the
        baseline lacks it); `compressed`: the compressed result; `guess_rates`: a guesser's chances."""
        if config not in self.found:
            self.found[config] = None
            if not gated:
                self._say(self.NOT_RUN.format(config=config))
                return None
            dense_result = dense()
            if dense_result is None:
                self._say(self.MISSING)
                return None
            found = utility(dense_result, compressed(), guess_rates())
            if found is not None and not found.informative:
                self._say(self.AT_CHANCE.format(score=found.dense, items=found.items, chance=found.chance,
                                                p=found.dense_p))
            self.found[config] = found
        return self.found[config]
