"""Tiny llama models with known behaviour, built from a config (no download).

A *scripted* model answers every prompt with the same text: its decoder blocks are zeroed
(the residual stream passes the token embedding straight through), token embeddings are
one-hot by "script position", and the LM head maps each script position to the next
script token, ending with EOS. Gates and reports can then be tested end to end with
outcomes known in advance.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def _config(tokenizer, hidden: int, layers: int, tied: bool) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        head_dim=hidden // 4, max_position_embeddings=2048, tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_scripted_model(directory: Path, tokenizer, answer: str) -> Path:
    script = tokenizer.encode(answer, add_special_tokens=False)
    hidden = 16
    assert len(script) < hidden
    torch.manual_seed(0)
    model = LlamaForCausalLM(_config(tokenizer, hidden, layers=2, tied=False))
    with torch.no_grad():
        for block in model.model.layers:
            for param in block.parameters():
                param.zero_()
            block.input_layernorm.weight.fill_(1.0)
            block.post_attention_layernorm.weight.fill_(1.0)
        model.model.norm.weight.fill_(1.0)
        embed = model.model.embed_tokens.weight
        head = model.lm_head.weight
        embed.zero_()
        head.zero_()
        embed[:, 0] = 1.0  # every ordinary token -> script position 0
        for position, token in enumerate(script, start=1):
            embed[token] = 0.0
            embed[token, position] = 1.0
        head[script[0], 0] = 10.0
        for position in range(1, len(script)):
            head[script[position], position] = 10.0
        head[tokenizer.eos_token_id, len(script)] = 10.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_random_model(directory: Path, tokenizer, hidden: int = 64, layers: int = 2) -> Path:
    torch.manual_seed(1234)
    model = LlamaForCausalLM(_config(tokenizer, hidden, layers=layers, tied=True))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
