"""Tiny random models and a byte tokenizer for compression tests (built from a config, no download)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from comptrust_plugin.compress.layers import find_blocks


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a shared 2-core machine two OpenMP
    threads per op made these tests 10-30x slower; the embedded test restores the default."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class CharTokenizer:
    """Bytes as token ids (2..121): enough for calibration windows, no vocabulary file."""

    bos_token_id = None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [b % 120 + 2 for b in text.encode("utf-8")]}


def tiny_llama(
    hidden: int = 64, intermediate: int = 128, seed: int = 0, outliers: bool = False, layers: int = 2
) -> nn.Module:
    """A small Llama (2 blocks by default) with grouped-query attention. `outliers`: norm weights with a few channels
    tens of times larger than the rest, as real LLM activations have."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    if outliers:
        with torch.no_grad():
            for block in find_blocks(model):
                for norm in (block.input_layernorm, block.post_attention_layernorm):
                    scale = torch.exp(torch.randn(hidden) * 0.5)
                    scale[torch.randperm(hidden)[:4]] *= 12
                    norm.weight.copy_(scale)
    return model
