"""What a trust run collected: its tests, this shard's share, the multiplicity family.

Each trust test is a (config, dimension); a shard keeps its share of them (shards.py decides
which); the multiplicity correction's family is the gated tests of the whole run."""

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


def with_family(options: TrustOptions, family: int) -> TrustOptions:
    """The options with the multiplicity correction's family (at least 1)."""
    return dataclasses.replace(options, family=max(1, family))


def trust_test(item: pytest.Item) -> tuple[str, str] | None:
    """A trust test's (config, dimension): "profile" in a dense-only run, the module's stem as the
    dimension (`test_<dimension>.py`); None for a test that is not a trust test."""
    if "trust_check" not in getattr(item, "fixturenames", ()):
        return None
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("compressed_model") if callspec is not None else None
    stem = getattr(getattr(item, "module", None), "__name__", item.nodeid).rsplit(".", 1)[-1]
    return ("profile" if spec is None else spec.canonical, stem.removeprefix("test_"))


def select_shard(config: pytest.Config, items: list[pytest.Item], options: TrustOptions) -> int:
    """Keep shard I/N's trust tests (tests of other kinds run on shard 1) and report the others as
    deselected, as -k does; returns the whole run's gated tests (the multiplicity family)."""
    from .errors import TrustError
    from .shards import keep

    family = gated_tests(items)
    try:
        kept = keep([trust_test(item) for item in items], options.shard, options.samples, options.seed)
    except TrustError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    if not all(kept):
        config.hook.pytest_deselected(items=[item for item, k in zip(items, kept) if not k])
        items[:] = [item for item, k in zip(items, kept) if k]
    return family
