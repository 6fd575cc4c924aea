"""Paired statistics of dense vs compressed over the same items: bootstrap intervals and McNemar's test.

Pure: item outcomes in, numbers out. The paired bootstrap (percentile or BCa) gives the interval
of a dimension's delta with its own aggregate formula; McNemar's exact test asks whether the share
of favourable binary items changed. gate.py turns them into verdicts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from .dimensions.result import ItemOutcome

BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95
# Minimum detectable difference = (z_{1-alpha/2} + z_{power}) x standard error of the delta:
# the smallest true drop a two-sided 5% test detects with 80% power at this n.
MDD_FACTOR = 1.959964 + 0.841621


@dataclass(frozen=True)
class Interval:
    """Bootstrap interval of (compressed - dense), in score points."""

    low: float
    high: float
    level: float
    replicates: int
    se: float  # standard deviation of the bootstrap deltas
    units: int  # items (resampling units) present in both runs
    method: str = "percentile"  # or "bca" (bias-corrected and accelerated)
    # One-sided bootstrap p-value of "no drop beyond the threshold" (paired_bootstrap's `threshold`):
    # (1 + replicates at or above it) / (1 + replicates). None when no threshold was given.
    p_worse: float | None = None
    seeds: int = 1  # calibration seeds drawn at the first level (seeded_bootstrap); 1: items only
    # standard deviations of each side's own score over the same replicates (the standard error
    # of the dense and of the compressed score, e.g. lm-eval's `score_stderr`); None if not drawn
    se_dense: float | None = None
    se_compressed: float | None = None

    @property
    def mdd(self) -> float:
        return MDD_FACTOR * self.se


def paired_bootstrap(
    dense: Sequence[ItemOutcome], compressed: Sequence[ItemOutcome],
    aggregate: Callable[[list[ItemOutcome]], float], unit: Callable[[str], str] = lambda key: key,
    replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0, level: float = CONFIDENCE,
    method: str = "percentile", threshold: float | None = None,
) -> Interval | None:
    """Paired bootstrap of aggregate(compressed) - aggregate(dense) over items.

    Items are grouped into resampling units (`unit(key)`; items that are not independent, like
    the two twins of one fairness profile, share a unit). Each replicate draws units with
    replacement and recomputes both scores from the same units, so the pairing (the same
    prompts seen by both models) is kept. Seeded: the same inputs give the same interval.
    None when no unit is present in both runs or replicates < 2.

    `method`: "percentile", or "bca" (Efron's bias-corrected and accelerated interval: the
    percentiles moved by the bias z0 = Φ⁻¹(share of replicates below the observed delta, ties
    counted half) and the acceleration a from a leave-one-unit-out jackknife). BCa is undefined
    when every replicate lies on one side of the observed delta; the percentile interval is
    given then (its `method` says so).

    `threshold` (a delta, e.g. -tolerance): the interval also carries `p_worse`, the share of
    replicates at or above it (one added to both counts, so it is never 0): small when the drop
    is beyond the threshold. The percentile interval's upper end lies below the threshold
    exactly when that share is under the interval's upper tail, so p_worse < 0.025 is the
    95% interval's FAIL, and p_worse <= 0.025 / m the same test at a Bonferroni level.
    """
    before, after = _grouped(dense, unit), _grouped(compressed, unit)
    units = sorted(set(before) & set(after))
    if not units or replicates < 2:
        return None
    rng = random.Random(seed)
    deltas: list[float] = []
    sides: tuple[list[float], list[float]] = ([], [])  # (dense, compressed) score of each replicate
    for _ in range(replicates):
        drawn = [units[rng.randrange(len(units))] for _ in units]
        sides[0].append(aggregate([o for u in drawn for o in before[u]]))
        sides[1].append(aggregate([o for u in drawn for o in after[u]]))
        deltas.append(sides[1][-1] - sides[0][-1])
    deltas.sort()
    tail = (1.0 - level) / 2.0
    low_q, high_q, used = tail, 1.0 - tail, "percentile"
    if method == "bca":

        def delta_of(kept: list[str]) -> float:
            return aggregate([o for u in kept for o in after[u]]) - aggregate([o for u in kept for o in before[u]])

        jackknife = [delta_of(units[:i] + units[i + 1:]) for i in range(len(units))] if len(units) > 2 else []
        adjusted = _bca_quantiles(delta_of(units), deltas, jackknife, tail)
        if adjusted is not None:
            (low_q, high_q), used = adjusted, "bca"
    return Interval(
        low=_quantile(deltas, low_q), high=_quantile(deltas, high_q), level=level,
        replicates=replicates, se=_spread(deltas), units=len(units), method=used,
        se_dense=_spread(sides[0]), se_compressed=_spread(sides[1]),
        p_worse=_p_worse(deltas, threshold),
    )


def seeded_bootstrap(
    dense: Sequence[ItemOutcome], builds: Sequence[Sequence[ItemOutcome]],
    aggregate: Callable[[list[ItemOutcome]], float], unit: Callable[[str], str] = lambda key: key,
    replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0, level: float = CONFIDENCE, threshold: float | None = None,
) -> Interval | None:
    """Two-level paired bootstrap of mean over builds of aggregate(build) - aggregate(dense).

    `builds`: the outcomes of one config compressed with different calibration seeds. Each
    replicate first draws the builds with replacement (the compression's own randomness), then
    the units with replacement, shared by dense and every drawn build (the same prompts), and
    recomputes every score from them: the interval's width covers both which items were drawn
    and which calibration windows were. Percentile interval; `threshold` as in paired_bootstrap.
    None when no unit is present in dense and every build, or replicates < 2."""

    before, afters = _grouped(dense, unit), [_grouped(build, unit) for build in builds]
    units = sorted(set(before).intersection(*afters)) if afters else []
    if not units or replicates < 2:
        return None
    rng = random.Random(seed)
    deltas: list[float] = []
    sides: tuple[list[float], list[float]] = ([], [])
    for _ in range(replicates):
        chosen = [rng.randrange(len(afters)) for _ in afters]
        drawn = [units[rng.randrange(len(units))] for _ in units]
        scores = {k: aggregate([o for u in drawn for o in afters[k][u]]) for k in sorted(set(chosen))}
        sides[0].append(aggregate([o for u in drawn for o in before[u]]))
        sides[1].append(sum(scores[k] for k in chosen) / len(chosen))
        deltas.append(sides[1][-1] - sides[0][-1])
    deltas.sort()
    tail = (1.0 - level) / 2.0
    return Interval(
        low=_quantile(deltas, tail), high=_quantile(deltas, 1.0 - tail), level=level,
        replicates=replicates, se=_spread(deltas), units=len(units), method="percentile",
        se_dense=_spread(sides[0]), se_compressed=_spread(sides[1]),
        p_worse=_p_worse(deltas, threshold),
        seeds=len(afters),
    )


def _p_worse(deltas: list[float], threshold: float | None) -> float | None:
    """Share of replicate deltas at or above `threshold`, one added to both counts (never 0)."""
    if threshold is None:
        return None
    return (1 + sum(d >= threshold for d in deltas)) / (1 + len(deltas))


def _grouped(outcomes: Sequence[ItemOutcome], unit: Callable[[str], str]) -> dict[str, list[ItemOutcome]]:
    groups: dict[str, list[ItemOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(unit(outcome.key), []).append(outcome)
    return groups


def _spread(values: list[float]) -> float:
    """Sample standard deviation (n - 1) of the replicates: the bootstrap standard error."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _bca_quantiles(
    observed: float, ordered: list[float], jackknife: list[float], tail: float
) -> tuple[float, float] | None:
    """The BCa interval's quantile levels, or None where BCa is undefined (see paired_bootstrap)."""
    below = sum(d < observed for d in ordered) + 0.5 * sum(d == observed for d in ordered)
    share = below / len(ordered)
    if not 0.0 < share < 1.0:
        return None
    normal = NormalDist()
    z0 = normal.inv_cdf(share)
    acceleration = 0.0
    if jackknife:
        centre = sum(jackknife) / len(jackknife)
        spread = sum((centre - t) ** 2 for t in jackknife)
        if spread > 0:
            acceleration = sum((centre - t) ** 3 for t in jackknife) / (6.0 * spread**1.5)
    levels = []
    for z in (normal.inv_cdf(tail), normal.inv_cdf(1.0 - tail)):
        shifted = z0 + z
        denominator = 1.0 - acceleration * shifted
        if denominator <= 0:
            return None
        levels.append(normal.cdf(z0 + shifted / denominator))
    return levels[0], levels[1]


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired binary items: did the share of favourable items change?

    `worse`: items favourable (value 1) under dense and not under compressed; `better`: the
    reverse. p is the two-sided exact binomial p-value of `worse` among the discordant pairs
    (scipy's binomtest, p = 1/2): the exact form of McNemar's test."""

    worse: int
    better: int
    p: float


def mcnemar(dense: Sequence[ItemOutcome], compressed: Sequence[ItemOutcome]) -> McNemar | None:
    """McNemar's exact test over the items present in both runs with a value; None unless every
    such value is 0 or 1 (a dimension whose items are not binary)."""
    from scipy.stats import binomtest

    before = {o.key: o.value for o in dense if o.value is not None}
    pairs = [(before[o.key], o.value) for o in compressed if o.value is not None and o.key in before]
    if not pairs or any(v not in (0.0, 1.0) for pair in pairs for v in pair):
        return None
    worse = sum(1 for a, b in pairs if a == 1.0 and b == 0.0)
    better = sum(1 for a, b in pairs if a == 0.0 and b == 1.0)
    p = 1.0 if worse + better == 0 else float(binomtest(worse, worse + better, 0.5).pvalue)
    return McNemar(worse, better, p)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default method)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
