"""Pruning masks, magnitude pruning and round-to-nearest: exact patterns, grid membership, determinism."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from comptrust_plugin.compress.apply import compress_model
from comptrust_plugin.compress.grid import group_bounds, quantize_rtn
from comptrust_plugin.compress.layers import model_linears
from comptrust_plugin.compress.masks import lowest_mask, prune_mask_n_m, prune_mask_per_row, prune_mask_unstructured
from comptrust_plugin.spec import parse_spec


def _model(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128, hidden_size=96, intermediate_size=200, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24,
    )
    return LlamaForCausalLM(config).eval()


def test_unstructured_mask_is_exact_even_with_ties() -> None:
    score = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 0.5, 1.0]])
    mask = prune_mask_unstructured(score, 0.5)
    assert int(mask.sum()) == 4 and bool(mask[1, 2])
    row_mask = prune_mask_per_row(score, 0.5)
    assert row_mask.sum(dim=1).tolist() == [2, 2]


def test_lowest_mask_is_the_same_whichever_way_it_selects() -> None:
    """One row goes through the k-th value, several through a stable sort: same masks, ties in
    index order (so magnitude, Wanda and SparseGPT keep their masks bit for bit)."""
    generator = torch.Generator().manual_seed(0)
    for score in (torch.rand(7, 50, generator=generator), torch.randint(0, 3, (7, 50), generator=generator).float()):
        for count in (0, 1, 17, 25, 49, 50):
            together = lowest_mask(score, count)
            alone = torch.cat([lowest_mask(score[row : row + 1], count) for row in range(score.shape[0])])
            assert torch.equal(together, alone) and (together.sum(dim=1) == count).all()
            sorted_first = torch.sort(score, dim=1, stable=True).indices[:, :count]
            assert torch.equal(together, torch.zeros_like(together).scatter_(1, sorted_first, True))


def test_n_m_mask_keeps_n_of_every_m_including_a_short_tail() -> None:
    score = torch.rand(8, 22)
    mask = prune_mask_n_m(score, 2, 4)
    kept = ~mask
    for start in range(0, 20, 4):
        assert (kept[:, start : start + 4].sum(dim=1) == 2).all()
    assert (kept[:, 20:].sum(dim=1) == 2).all()  # tail of 2 keeps both (at most N)


def test_mag_50_exact_sparsity_per_layer_and_embeddings_untouched() -> None:
    model = _model()
    embed_before = model.model.embed_tokens.weight.clone()
    head_before = model.lm_head.weight.clone()
    stats = compress_model(model, parse_spec("mag-50"))
    for linear in model_linears(model).values():
        weight = linear.weight
        assert int((weight == 0).sum()) == weight.numel() // 2
    assert torch.equal(model.model.embed_tokens.weight, embed_before)
    assert torch.equal(model.lm_head.weight, head_before)
    assert abs(stats.sparsity - 0.5) < 1e-3 and stats.layers == 14


def test_mag_2_4_pattern_in_every_group() -> None:
    model = _model()
    compress_model(model, parse_spec("mag-2:4"))
    for linear in model_linears(model).values():
        groups = (linear.weight != 0).view(linear.weight.shape[0], -1, 4)
        assert (groups.sum(dim=-1) <= 2).all()


def test_rtn_levels_per_group_on_the_grid_with_short_last_group() -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 200)  # 200 = 128 + a short group of 72
    assert group_bounds(200, 128) == [(0, 128), (128, 200)]
    for bits in (2, 3, 4, 8):
        out = quantize_rtn(weight, bits, 128)
        for start, end in group_bounds(200, 128):
            block = out[:, start:end]
            for row in block:
                levels = torch.unique(row)
                assert len(levels) <= 2**bits
                step = (levels[1:] - levels[:-1]).min() if len(levels) > 1 else None
                if step is not None:  # all levels sit on one uniform grid
                    ratios = (levels - levels[0]) / step
                    assert torch.allclose(ratios, ratios.round(), atol=1e-3)
        error = (out - weight).abs().mean()
        assert error < 2.0 / 2**bits


def test_rtn_per_row_group_and_zero_stays_zero() -> None:
    weight = torch.randn(4, 50)
    weight[0, 3] = 0.0
    out = quantize_rtn(weight, 4, -1)
    assert out[0, 3] == 0.0
    assert all(len(torch.unique(row)) <= 16 for row in out)


def test_same_spec_twice_is_bit_identical() -> None:
    for text in ("mag-50", "rtn-4", "rtn-3-g-1", "mag-2:4"):
        first, second = _model(), _model()
        compress_model(first, parse_spec(text))
        compress_model(second, parse_spec(text))
        for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
            assert torch.equal(a, b), (text, name)


@torch.no_grad()
def test_compression_changes_outputs_in_proportion() -> None:
    ids = torch.randint(0, 128, (2, 16))
    dense = _model()(ids).logits
    gaps = {}
    for text in ("rtn-8", "rtn-4", "rtn-2", "mag-20", "mag-80"):
        model = _model()
        compress_model(model, parse_spec(text))
        gaps[text] = float((model(ids).logits - dense).abs().mean())
    assert gaps["rtn-8"] < gaps["rtn-4"] < gaps["rtn-2"]
    assert gaps["mag-20"] < gaps["mag-80"]
