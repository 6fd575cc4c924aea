"""Coverage of the gate's paired bootstrap interval on synthetic paired data with a known delta.

Usage:
    python benchmarks/bench_interval_coverage.py [--sims 400] [--replicates 1000] [--workers 2]

Each scenario draws `--sims` synthetic (dense, compressed) runs whose true delta is known, builds
the interval with `paired.paired_bootstrap` (the very function the gate uses, percentile and BCa)
and counts how often it contains the true delta. Nominal level 95%; the target is 93-97%. With
400 runs the coverage estimate itself has a standard error of about 1.1 points.

Scenarios (item outcomes as the dimensions produce them):
- mean-type (machine ethics, AdvGLUE++, benign utility: the score is 100 x the share of right
  answers): n items, dense right with probability p; compressed keeps a right answer with
  probability 1 - lose and turns a wrong one right with probability gain, on the same items
  (paired). True delta = 100 x (p (1 - lose) + (1 - p) gain - p). Near 100 and near 0 the
  percentile interval is known to cover poorly; that is where BCa should help.
- DPD-type (fairness: 100 - 100 x |P(yes | male) - P(yes | female)|, the two twins of a profile
  one resampling unit): each profile's twins share a latent u ~ U(0, 1), and a model answers yes
  for a sex when u < its rate for that sex; true delta = 100 x (|dense gap| - |compressed gap|).
  A true gap of 0 puts the statistic on its bound (|.| >= 0), the hardest case.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comptrust_plugin.dimensions.result import ItemOutcome  # noqa: E402
from comptrust_plugin.paired import paired_bootstrap  # noqa: E402

# name, kind, parameters
SCENARIOS = (
    ("mean, p=0.50, n=100, lose 10%, gain 10%", "mean", dict(n=100, p=0.50, lose=0.10, gain=0.10)),
    ("mean, p=0.95, n=100, lose 5%, gain 30%", "mean", dict(n=100, p=0.95, lose=0.05, gain=0.30)),
    ("mean, p=0.97, n=60, lose 3%, gain 0%", "mean", dict(n=60, p=0.97, lose=0.03, gain=0.0)),
    ("mean, p=0.05, n=100, lose 0%, gain 2%", "mean", dict(n=100, p=0.05, lose=0.0, gain=0.02)),
    ("DPD, 100 profiles, gap 0.10 -> 0.00", "dpd", dict(n=100, dense=(0.60, 0.50), compressed=(0.55, 0.55))),
    ("DPD, 100 profiles, gap 0.00 -> 0.15", "dpd", dict(n=100, dense=(0.50, 0.50), compressed=(0.60, 0.45))),
    ("DPD, 100 profiles, gap 0.20 -> 0.10", "dpd", dict(n=100, dense=(0.70, 0.50), compressed=(0.65, 0.55))),
)


def mean_score(outcomes: list[ItemOutcome]) -> float:
    values = [o.value for o in outcomes if o.value is not None]
    return 100.0 * sum(values) / len(values) if values else 0.0


def dpd_score(outcomes: list[ItemOutcome]) -> float:
    rates = []
    for sex in ("male", "female"):
        values = [o.value for o in outcomes if o.subset == sex and o.value is not None]
        rates.append(sum(values) / len(values) if values else 0.0)
    return 100.0 - 100.0 * abs(rates[0] - rates[1])


def profile_unit(key: str) -> str:
    return key.rsplit("/", 1)[0]


def draw(kind: str, params: dict, rng: random.Random) -> tuple[list[ItemOutcome], list[ItemOutcome], float]:
    """One synthetic (dense, compressed) pair of runs and the true delta."""
    dense, compressed = [], []
    if kind == "mean":
        p, lose, gain = params["p"], params["lose"], params["gain"]
        for i in range(params["n"]):
            right = rng.random() < p
            after = (rng.random() >= lose) if right else (rng.random() < gain)
            dense.append(ItemOutcome(f"q{i}", "all", "", float(right), ""))
            compressed.append(ItemOutcome(f"q{i}", "all", "", float(after), ""))
        truth = 100.0 * (p * (1 - lose) + (1 - p) * gain - p)
        return dense, compressed, truth
    (dm, df), (cm, cf) = params["dense"], params["compressed"]
    for i in range(params["n"]):
        u = rng.random()
        for sex, d_rate, c_rate in (("male", dm, cm), ("female", df, cf)):
            dense.append(ItemOutcome(f"p{i}/{sex}", sex, "", float(u < d_rate), ""))
            compressed.append(ItemOutcome(f"p{i}/{sex}", sex, "", float(u < c_rate), ""))
    return dense, compressed, 100.0 * (abs(dm - df) - abs(cm - cf))


def simulate(task: tuple[str, dict, int, int, int]) -> dict[str, float]:
    """Coverage counts of both methods over `count` runs starting at `start` (one worker's share)."""
    kind, params, start, count, replicates = task
    aggregate, unit = (mean_score, lambda key: key) if kind == "mean" else (dpd_score, profile_unit)
    covered = {"percentile": 0, "bca": 0}
    width = {"percentile": 0.0, "bca": 0.0}
    fallback = 0
    for index in range(start, start + count):
        dense, compressed, truth = draw(kind, params, random.Random(index))
        for method in covered:
            interval = paired_bootstrap(dense, compressed, aggregate, unit, replicates, seed=index, method=method)
            assert interval is not None
            covered[method] += interval.low <= truth <= interval.high
            width[method] += interval.high - interval.low
            fallback += method == "bca" and interval.method != "bca"
    return {**{f"{m}_covered": float(c) for m, c in covered.items()},
            **{f"{m}_width": w for m, w in width.items()}, "fallback": float(fallback)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=400, help="synthetic runs per scenario")
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates (the gate's default)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')}, CPU x{os.cpu_count()}, {args.sims} runs per scenario, "
          f"{args.replicates} replicates, nominal 95% (target 93-97%)")
    print("| scenario | true delta | percentile coverage | BCa coverage | mean width pct / BCa | BCa undefined |")
    print("|---|---|---|---|---|---|")
    share = -(-args.sims // args.workers)
    with ProcessPoolExecutor(args.workers) as pool:
        for name, kind, params in SCENARIOS:
            start = time.perf_counter()
            tasks = [(kind, params, s, min(share, args.sims - s), args.replicates) for s in range(0, args.sims, share)]
            totals: dict[str, float] = {}
            for part in pool.map(simulate, tasks):
                for key, value in part.items():
                    totals[key] = totals.get(key, 0.0) + value
            truth = draw(kind, params, random.Random(0))[2]
            seconds = time.perf_counter() - start
            print(f"| {name} | {truth:+.1f} | {100 * totals['percentile_covered'] / args.sims:.1f}% | "
                  f"{100 * totals['bca_covered'] / args.sims:.1f}% | {totals['percentile_width'] / args.sims:.1f} / "
                  f"{totals['bca_width'] / args.sims:.1f} | {int(totals['fallback'])} |  ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
