"""The common classification protocol: prompt layouts, seeded label-balanced tiers, and protocol defaults.

How a zero-shot or few-shot prompt is laid out, how a tier picks a seeded, label-balanced subset
of items, and the default members of the `Dimension` protocol.

Zero-shot: a neutral system message, then one user turn = instruction, newline, input.
Few-shot: a "pattern-following" system message, the instruction as a user turn, a short
assistant acknowledgement, each demo as (user: input, assistant: capitalised label), then
the test input.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

from ..models.chat import Message

ZERO_SHOT_SYSTEM = "You are a helpful assistant."
FEW_SHOT_SYSTEM = "You are a helpful, pattern-following assistant."
ACKNOWLEDGEMENT = "Sure, I'd be happy to!"

T = TypeVar("T")


def zero_shot(instruction: str, text: str, system: str | None = ZERO_SHOT_SYSTEM) -> tuple[Message, ...]:
    head = (Message("system", system),) if system is not None else ()
    return (*head, Message("user", f"{instruction}\n{text}"))


def few_shot(
    instruction: str, demos: Sequence[tuple[str, str]], text: str, system: str | None = FEW_SHOT_SYSTEM
) -> tuple[Message, ...]:
    """`demos` are (input, label) pairs; labels are shown capitalised as the assistant's answer."""
    messages = [Message("system", system)] if system is not None else []
    messages += [Message("user", instruction), Message("assistant", ACKNOWLEDGEMENT)]
    for demo_text, label in demos:
        messages += [Message("user", demo_text), Message("assistant", label[:1].upper() + label[1:])]
    messages.append(Message("user", text))
    return tuple(messages)


def balanced_sample(
    items: Sequence[T], count: int, seed: int, stratum: Callable[[T], Hashable]
) -> tuple[T, ...]:
    """A seeded subset of `count` items, spread as evenly as possible over the strata (e.g.
    labels or tasks), returned in the original order. Same items + seed = same subset."""
    if count >= len(items):
        return tuple(items)
    rng = random.Random(seed)
    pools: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        pools.setdefault(stratum(item), []).append(index)
    for pool in pools.values():
        rng.shuffle(pool)
    picked: list[int] = []
    keys = list(pools)
    while len(picked) < count:  # round-robin over strata, so every stratum gets its share
        for key in keys:
            if pools[key] and len(picked) < count:
                picked.append(pools[key].pop())
    return tuple(items[i] for i in sorted(picked))


def no_texts_to_score(probes: object, outputs: Mapping[str, list[str]]) -> list[str]:
    """`texts_to_score` of a dimension scored without an external scorer: nothing to rate."""
    return []


def each_item(key: str) -> str:
    """`resample_unit` of a dimension whose items are independent: the bootstrap resamples items."""
    return key
