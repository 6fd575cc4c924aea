"""What a trust run collected: its tests, this shard's share, the multiplicity family.

Each trust test is a (config, dimension); a shard keeps its share of them (shards.py decides
which); the multiplicity correction's family is the gated tests of the whole run, and the configs
whose benign utility the whole run gates are those the capability check may judge by it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from .options import TrustOptions


def gated_tests(items: Sequence[pytest.Item]) -> int:
    """How many collected trust tests gate a compressed config (a multiplicity correction's family)."""
    count = 0
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "trust_check" in getattr(item, "fixturenames", ()) and callspec is not None:
            count += callspec.params.get("compressed_model") is not None
    return count


def with_family(options: TrustOptions, family: int, items: Sequence[pytest.Item]) -> TrustOptions:
    """The options with the multiplicity correction's family (at least 1) and the configs whose
    benign utility `items` (the whole run's trust tests) gate."""
    tests = [test for test in map(trust_test, items) if test is not None]
    utility = frozenset(config for config, dimension in tests if dimension == "benign_utility")
    return dataclasses.replace(options, family=max(1, family), utility_configs=utility - {"profile"})


def trust_test(item: pytest.Item) -> tuple[str, str] | None:
    """A trust test's (config, dimension): "profile" in a dense-only run, the module's stem as the
    dimension (`test_<dimension>.py`); None for a test that is not a trust test."""
    if "trust_check" not in getattr(item, "fixturenames", ()):
        return None
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("compressed_model") if callspec is not None else None
    stem = getattr(getattr(item, "module", None), "__name__", item.nodeid).rsplit(".", 1)[-1]
    return ("profile" if spec is None else spec.canonical, stem.removeprefix("test_"))


def select_shard(config: pytest.Config, items: list[pytest.Item], options: TrustOptions) -> TrustOptions:
    """Keep shard I/N's trust tests (tests of other kinds run on shard 1) and report the others as
    deselected, as -k does; returns the options with the whole run's collection (with_family)."""
    from .errors import TrustError
    from .shards import keep

    whole = with_family(options, gated_tests(items), items)
    try:
        kept = keep([trust_test(item) for item in items], options.shard, options.samples, options.seed)
    except TrustError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    if not all(kept):
        config.hook.pytest_deselected(items=[item for item, k in zip(items, kept) if not k])
        items[:] = [item for item, k in zip(items, kept) if k]
    return whole
