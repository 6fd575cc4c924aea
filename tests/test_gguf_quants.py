"""llama.cpp's block quants: our round trip is bit for bit the `gguf` package's (itself bit-exact
with ggml-quants.c), and only the decoder blocks' Linears are quantized."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from comptrust_plugin.compress.apply import compress_model
from comptrust_plugin.compress.gguf import quantize_dequantize
from comptrust_plugin.compress.layers import model_linears
from comptrust_plugin.errors import TrustError
from comptrust_plugin.spec import GGUF_TYPES, parse_spec


def reference(weight: torch.Tensor, kind: str) -> np.ndarray:
    qtype = getattr(GGMLQuantizationType, kind.upper())
    return quants.dequantize(quants.quantize(weight.numpy(), qtype), qtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("kind", GGUF_TYPES)
def test_edge_blocks_match_the_package(kind: str) -> None:
    """Ties of the largest magnitude (+x and -x: the first wins), all-zero blocks, blocks of one
    value, tiny values, wide ranges: bit for bit, signed zeros included."""
    torch.manual_seed(0)
    blocks = [
        torch.randn(16, 64) * 0.05, torch.randn(4, 32) * 300, torch.zeros(2, 32),
        torch.tensor([[1.0] * 16 + [-1.0] * 16, [-0.5, 0.5] * 16, [0.25] * 32]),
        torch.cat([torch.full((1, 31), 1e-9), torch.tensor([[-2.0]])], dim=1),
    ]
    for weight in blocks:
        assert same_bits(quantize_dequantize(weight, kind).numpy(), reference(weight, kind)), weight.shape


def test_a_width_off_the_block_is_one_line() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=80, intermediate_size=160, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2)
    with pytest.raises(TrustError, match=r"--compress=gguf-q4_0: model\.layers\.0\.self_attn\.q_proj has 80 input "
                                         r"columns, not a multiple of GGUF's 32-wide blocks"):
        compress_model(LlamaForCausalLM(config), parse_spec("gguf-q4_0"))


@pytest.mark.embedded
def test_embedded_model_linears_are_bit_identical_to_the_package(model_cache_dir) -> None:
    """Every decoder-block Linear of SmolLM2-135M through each type, ours vs `gguf.quants`; then
    the model through compress_model: those Linears changed, everything else (embedding, output
    head, norms) as the dense model."""
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    loaded = load_model(resolve_model("smollm2-135m"), model_cache_dir, torch.device("cpu"), torch.float32)
    dense = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    linears = model_linears(loaded.model)
    for kind in GGUF_TYPES:
        for name, linear in linears.items():
            weight = linear.weight.detach()
            assert same_bits(quantize_dequantize(weight, kind).numpy(), reference(weight, kind)), (kind, name)
    compress_model(loaded.model, parse_spec("gguf-q4_0"))
    quantized = {id(linear.weight) for linear in linears.values()}
    for name, param in loaded.model.named_parameters():
        if id(param) in quantized:
            assert not torch.equal(param, dense[name]), name
        else:
            assert torch.equal(param, dense[name]), name
