"""The in-place KV cache holds exactly what transformers' concatenating cache holds."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from comptrust_plugin.engine.kvcache import ReservedCache


def _states(batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, length, 8, generator=generator),
            torch.randn(batch, 3, length, 4, generator=generator))  # values may be narrower than keys


def _same(reserved: ReservedCache, plain: DynamicCache) -> None:
    assert reserved.get_seq_length() == plain.get_seq_length()
    for mine, theirs in zip(reserved.layers, plain.layers):
        assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)


def test_updates_row_selection_and_overflow_match_dynamic_cache() -> None:
    reserved, plain = ReservedCache(spare=3), DynamicCache()
    for cache in (reserved, plain):
        for layer in range(2):
            cache.update(*_states(2, 5, layer), layer)
    _same(reserved, plain)
    room = reserved.layers[0]._room[0]
    for step in range(6):  # 3 steps fit in the room, then it moves to a larger one
        if step == 2:
            for cache in (reserved, plain):
                cache.batch_select_indices(torch.tensor([1, 1, 0]))
        for cache in (reserved, plain):
            for layer in range(2):
                returned = cache.update(*_states(cache.layers[layer].keys.shape[0], 1, 10 + step), layer)
                assert torch.equal(returned[0], cache.layers[layer].keys)
        _same(reserved, plain)
        if step == 0:
            assert reserved.layers[0]._room[0] is room  # written in place, not copied
    assert reserved.layers[0]._room[0].shape[-2] == 9 + 3  # moved once, at the 9th position


def test_a_base_class_method_that_replaces_the_tensors_is_followed() -> None:
    reserved, plain = ReservedCache(spare=4), DynamicCache()
    for cache in (reserved, plain):
        cache.update(*_states(2, 3, 0), 0)
        cache.batch_repeat_interleave(2)  # replaces keys/values with new tensors
        cache.update(*_states(4, 1, 1), 0)
        cache.crop(-1)
        cache.update(*_states(4, 2, 2), 0)
    _same(reserved, plain)
