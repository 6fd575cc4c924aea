"""`--trust-shard=I/N`: which (config, dimension) tests one of N jobs runs, the same answer on every machine.

The N jobs of one run (a Slurm array, Kubernetes jobs, a CI matrix) each collect every test and
keep their share; `comptrust merge` joins their reports into the one a single run would write.

How tests are shared out:
- Each share is a *unit*: a whole config when the run has at least N configs (compressing a
  config takes minutes on a 7B model, hours on a 70B one, and loads it on the accelerator; a
  config split over shards is compressed again on each shard whose cache is not shared), else
  one (config, dimension) test (fewer configs than shards: splitting them is the only way to
  use every job, and their compression is repeated on the shards that hold them).
- A unit weighs what its dimensions generate: the token budget of every request (max new
  tokens x samples) of the shipped probe set at the run's tier and seed. Decoding dominates a
  trust test's time, and dimensions differ by 50x here (toxicity's full tier samples 25
  continuations of 150 tokens for each prompt; benign utility asks for a few tokens).
- Units go heaviest first to the lightest shard so far (ties: the lower shard), over a list
  sorted by weight then name. Nothing depends on the process: no hash seed, no collection order.

Pure: names and numbers in, sets out; the pytest side (items, deselection) is in collection.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import TrustError, one_line

Unit = tuple[str, str]  # (config, dimension); a whole config's unit has dimension "*"


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based, as Slurm array ids and CI matrix lists usually count) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard | None:
    """"2/4" -> Shard(2, 4); None or "" -> None; anything else is a one-line TrustError."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    index, _, count = raw.partition("/")
    flag = f"--trust-shard={one_line(raw)}"
    if not (index.isascii() and index.isdigit() and count.isascii() and count.isdigit()):
        raise TrustError(f"{flag}: give I/N, shard I of N counted from 1, e.g. --trust-shard=1/4")
    shard = Shard(int(index), int(count))
    if shard.count < 1:
        raise TrustError(f"{flag}: N must be at least 1 shard")
    if not 1 <= shard.index <= shard.count:
        raise TrustError(f"{flag}: shards count from 1: I must be 1..{shard.count}")
    return shard


def dimension_cost(name: str, samples: str | int, seed: int) -> int | None:
    """Tokens a dimension may generate per model at this tier (its shipped probes); None when
    the dimension is not registered or ships no probes here."""
    from . import dimensions
    from .data.probes import shipped_probe_set

    if name not in dimensions.names():
        return None
    dimension = dimensions.get(name)
    try:
        probes = shipped_probe_set(name).probes
    except (TrustError, OSError):
        return None
    requests = dimension.build_requests(dimension.select(probes, samples, seed))
    return sum(r.settings.max_new_tokens * r.settings.num_samples for r in requests) or 1


def units(tests: Iterable[Unit], count: int) -> dict[Unit, Unit]:
    """Each test's unit: its whole config when there are at least `count` configs, else itself."""
    tests = list(tests)
    by_config = len({config for config, _ in tests}) >= count
    return {test: (test[0], "*") if by_config else test for test in tests}


def assign(tests: Iterable[Unit], costs: Mapping[str, int | None], shard: Shard) -> set[Unit]:
    """The tests shard `shard` runs. Every test lands on exactly one of the `shard.count` shards.

    `costs` maps a dimension to its weight; a dimension without one weighs the mean of the others
    (a test of the user's own, outside the registry)."""
    tests = sorted(set(tests))
    known = [c for c in costs.values() if c]
    fallback = sum(known) // len(known) if known else 1
    unit_of = units(tests, shard.count)
    weight: dict[Unit, int] = {}
    for test in tests:
        unit = unit_of[test]
        weight[unit] = weight.get(unit, 0) + (costs.get(test[1]) or fallback)
    loads = [0] * shard.count
    owner: dict[Unit, int] = {}
    for unit in sorted(weight, key=lambda u: (-weight[u], u)):
        lightest = min(range(shard.count), key=lambda i: (loads[i], i))
        owner[unit] = lightest
        loads[lightest] += weight[unit]
    return {test for test in tests if owner[unit_of[test]] == shard.index - 1}


def keep(tests: Sequence[Unit | None], shard: Shard | None, samples: str | int, seed: int) -> list[bool]:
    """For each collected test, whether shard `shard` runs it: its trust tests (None marks a test of
    another kind, which runs on shard 1 only). Fewer shares than shards is a one-line TrustError."""
    assert shard is not None
    trust = {test for test in tests if test is not None}
    shares = len(set(units(trust, shard.count).values()))
    if 0 < shares < shard.count:
        raise TrustError(f"--trust-shard={shard}: this run has {shares} share(s) of trust tests to hand out "
                         f"(configs, or (config, dimension) tests); use at most {shares} shards")
    costs = {dimension: dimension_cost(dimension, samples, seed) for _, dimension in trust}
    mine = assign(trust, costs, shard)
    return [test in mine if test is not None else shard.index == 1 for test in tests]
