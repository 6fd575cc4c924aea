"""What a dimension returns: the score, its parts, and one outcome per request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The scoring variants every dimension implements: the study's scoring patch, and DecodingTrust's own.
SCORING_VARIANTS = ("comptrust-paper", "dt")
# Bumped whenever a variant's classification or arithmetic changes, so that a stored result
# (a baseline) scored by another revision is never reused.
SCORING_REVISION = 4
REFUSAL = "<refusal>"
UNPARSED = "<unparsed>"


def percent(count: int, total: int) -> float:
    """count / total in percent; 0 for an empty total (no outputs: nothing refused or unparsed)."""
    return 100.0 * count / total if total else 0.0


def percent_by_subset(outcomes: Sequence[ItemOutcome], subsets: Iterable[str]) -> dict[str, float]:
    """100 x the mean item value of each subset, in the order given; items whose value is None
    are left out, and a subset with no valued item scores 0. Other subsets are ignored."""
    values: dict[str, list[float]] = {subset: [] for subset in subsets}
    for o in outcomes:
        if o.value is not None and o.subset in values:
            values[o.subset].append(o.value)
    return {subset: 100.0 * sum(v) / len(v) if v else 0.0 for subset, v in values.items()}


@dataclass(frozen=True)
class ItemOutcome:
    key: str  # request key, identical across dense and compressed runs
    subset: str  # which sub-score the item feeds
    answer: str  # normalised answer (a label, REFUSAL or UNPARSED)
    value: float | None  # the item's contribution to its sub-score; None = excluded
    output: str  # the raw model output (first sample)


@dataclass(frozen=True)
class DimensionResult:
    dimension: str
    variant: str
    score: float  # 0..100, higher = more trustworthy
    subscores: dict[str, float]
    n: int  # number of model outputs scored
    refusal_rate: float  # percent of outputs that decline to answer (phrase match)
    unparsed_rate: float  # percent of outputs that are neither a label nor a refusal
    outcomes: tuple[ItemOutcome, ...] = field(default=(), repr=False)

    @classmethod
    def from_outcomes(
        cls, dimension: str, variant: str, score: float, subscores: dict[str, float], outcomes: list[ItemOutcome]
    ) -> DimensionResult:
        """A result whose n, refusal rate and unparsed rate are counted from its outcomes."""
        n = len(outcomes)
        return cls(
            dimension, variant, score, subscores, n,
            refusal_rate=percent(sum(o.answer == REFUSAL for o in outcomes), n),
            unparsed_rate=percent(sum(o.answer == UNPARSED for o in outcomes), n),
            outcomes=tuple(outcomes),
        )

    @classmethod
    def mean_of(cls, builds: Sequence[DimensionResult]) -> DimensionResult:
        """One config built with several calibration seeds, as one result: the mean score, sub-scores
        (each over the builds that have it) and rates over the builds; n and the per-item outcomes
        (answers, flips) are the first build's."""
        first = builds[0]

        def mean(values: Iterable[float]) -> float:
            listed = list(values)
            return sum(listed) / len(listed)

        keys = list(dict.fromkeys(k for b in builds for k in b.subscores))
        return cls(
            first.dimension, first.variant, mean(b.score for b in builds),
            {k: mean(b.subscores[k] for b in builds if k in b.subscores) for k in keys}, first.n,
            mean(b.refusal_rate for b in builds), mean(b.unparsed_rate for b in builds), first.outcomes,
        )

    def answers(self) -> dict[str, str]:
        return {o.key: o.answer for o in self.outcomes}

    def summary_json(self) -> dict[str, Any]:
        """The scores and rates, without per-item outcomes (a report's or a re-scoring's view)."""
        return {
            "score": self.score, "subscores": dict(self.subscores), "n": self.n,
            "refusal_rate": self.refusal_rate, "unparsed_rate": self.unparsed_rate,
        }

    def to_json(self) -> dict[str, Any]:
        """Every field, outcomes included (a stored baseline's entry); `from_json` reads it back."""
        return {
            "dimension": self.dimension, "variant": self.variant, **self.summary_json(),
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DimensionResult:
        return cls(
            dimension=data["dimension"], variant=data["variant"], score=data["score"],
            subscores=dict(data["subscores"]), n=data["n"], refusal_rate=data["refusal_rate"],
            unparsed_rate=data["unparsed_rate"],
            outcomes=tuple(ItemOutcome(**o) for o in data["outcomes"]),
        )
