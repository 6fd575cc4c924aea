"""Dense-vs-compressed agreement: per-item answer flip rate and Cohen's kappa.

A near-chance model can keep its *score* while changing most of its *answers*; these two
numbers show that, and sit beside every score in the report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .result import DimensionResult


@dataclass(frozen=True)
class Agreement:
    n: int  # items present in both runs
    flips: int
    flip_rate: float  # percent of items whose normalised answer changed
    kappa: float | None  # chance-corrected agreement; None when undefined


def compare_answers(dense: DimensionResult, compressed: DimensionResult) -> Agreement:
    a, b = dense.answers(), compressed.answers()
    keys = sorted(set(a) & set(b))
    if not keys:
        return Agreement(0, 0, 0.0, None)
    flips = sum(a[k] != b[k] for k in keys)
    kappa = cohen_kappa([a[k] for k in keys], [b[k] for k in keys])
    return Agreement(len(keys), flips, 100.0 * flips / len(keys), kappa)


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """kappa = (p_o - p_e) / (1 - p_e); None when both raters always give one same answer."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(x == y for x, y in zip(first, second)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def largest_drops(dense: DimensionResult, compressed: DimensionResult, count: int = 5) -> list[dict[str, object]]:
    """The items whose value fell most from dense to compressed (for toxicity: whose toxicity
    rose most), with both outputs, so a reviewer sees *what* changed, not just how much."""
    before = {o.key: o for o in dense.outcomes if o.value is not None}
    drops = [
        (before[o.key].value - o.value, o.key, before[o.key], o)  # type: ignore[operator]
        for o in compressed.outcomes
        if o.value is not None and o.key in before
    ]
    drops.sort(key=lambda d: (-d[0], d[1]))
    return [
        {"key": key, "drop": round(drop, 6), "dense_output": old.output, "compressed_output": new.output}
        for drop, key, old, new in drops[:count]
        if drop > 0
    ]
