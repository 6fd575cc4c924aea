"""Calibrated compression with the weights kept on the host and one block at a time on the accelerator.

No second device exists on a CPU-only machine, so the accelerator here is `cpu:0`, a device
name distinct from the model's `cpu` that tensors can really be moved to: every move the runner
makes is recorded by name, and the result must equal compressing where the model is.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from comptrust_plugin.compress.apply import compress_model
from comptrust_plugin.compress.calibration import calibration_windows
from comptrust_plugin.compress.layers import find_blocks
from comptrust_plugin.compress.runner import TOKENS_PER_BATCH, capture_block_inputs, run_layerwise
from comptrust_plugin.spec import parse_spec

from .tiny_models import CharTokenizer, one_thread, tiny_llama  # noqa: F401 (one_thread: autouse)

ACCELERATOR = torch.device("cpu", 0)


def spec_for(text: str) -> Any:
    from dataclasses import replace

    return replace(parse_spec(text), n_samples=4, seqlen=32)


def record_moves(model: nn.Module, log: list[tuple[str, int, str]]) -> None:
    """Log every `.to(device=...)` of a decoder block as ("to", index, device name)."""
    for index, block in enumerate(find_blocks(model)):
        original = block.to

        def spy(*args: Any, _index: int = index, _original: Any = original, **kwargs: Any) -> nn.Module:
            if "device" in kwargs:
                log.append(("to", _index, str(torch.device(kwargs["device"]))))
            return _original(*args, **kwargs)

        block.to = spy  # type: ignore[method-assign]


def test_one_block_at_a_time_visits_the_accelerator() -> None:
    """Each block goes to the accelerator, is compressed there, and goes home before the next."""
    log: list[tuple[str, int, str]] = []

    class Recorder:
        compute_dtype = None

        def compress_block(self, step) -> dict[str, float]:  # noqa: ANN001
            devices = {str(p.device) for p in step.block.parameters()}
            log.append(("compress", step.index, f"{devices} inputs {step.inputs.device}"))
            return {}

    model = tiny_llama(layers=3)
    record_moves(model, log)
    ids = calibration_windows(spec_for("wanda-50"), CharTokenizer())
    run_layerwise(model, ids, Recorder(), accelerator=ACCELERATOR)
    expected = []
    for index in range(3):
        expected += [("to", index, "cpu:0"), ("compress", index, "{'cpu'} inputs cpu"), ("to", index, "cpu")]
    assert log == expected


@pytest.mark.parametrize("spec_text", ["gptq-4-g32", "sparsegpt-50", "wanda-2:4", "awq-4-g32"])
def test_compressing_on_the_accelerator_equals_compressing_in_place(spec_text: str) -> None:
    spec = spec_for(spec_text)
    here, there = tiny_llama(outliers=True), tiny_llama(outliers=True)
    stats_here = compress_model(here, spec, CharTokenizer())
    stats_there = compress_model(there, spec, CharTokenizer(), accelerator=ACCELERATOR)
    for (name, a), b in zip(here.state_dict().items(), there.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert stats_here.grids.keys() == stats_there.grids.keys()
    for name, grid in stats_here.grids.items():
        assert torch.equal(grid.scale, stats_there.grids[name].scale), name
        assert torch.equal(grid.zero, stats_there.grids[name].zero), name


def test_no_block_runs_where_the_weights_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every block's keyword arguments runs no block (on the host that would be a pass of
    one window through a 70B model on CPU); blocks run normally afterwards."""
    model = tiny_llama(layers=3)
    block_type = type(find_blocks(model)[0])
    calls = [0]
    original = block_type.forward

    def counted(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(block_type, "forward", counted)
    ids = calibration_windows(spec_for("wanda-50"), CharTokenizer())
    blocks = find_blocks(model)
    inputs, kwargs = capture_block_inputs(model, blocks, ids, TOKENS_PER_BATCH // ids.shape[1])
    assert calls[0] == 0
    assert len(kwargs) == 3 and inputs.shape == (*ids.shape, 64)
    with torch.no_grad():
        model(input_ids=ids[:1])
    assert calls[0] == 3


def tiny_gemma3() -> nn.Module:
    """Sliding and full attention layers, which take different masks and rotary embeddings."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, sliding_window=8, max_position_embeddings=128,
        layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
    )
    return Gemma3ForCausalLM(config).eval()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_skipped_blocks_give_every_block_the_kwargs_a_real_pass_gives() -> None:
    model = tiny_gemma3()
    blocks = find_blocks(model)
    ids = calibration_windows(spec_for("wanda-50"), CharTokenizer())
    _, captured = capture_block_inputs(model, blocks, ids, 4)
    real: list[dict[str, Any]] = []
    hooks = [
        block.register_forward_pre_hook(
            lambda module, args, kwargs: real.append({k: v for k, v in kwargs.items() if k != "hidden_states"}),
            with_kwargs=True,
        )
        for block in blocks
    ]
    with torch.no_grad():
        model(input_ids=ids[:1], use_cache=False)
    for hook in hooks:
        hook.remove()
    assert len(real) == len(captured) == 4
    differs = [not _same(real[i]["position_embeddings"], real[2]["position_embeddings"]) for i in (0, 1, 3)]
    assert all(differs)  # the full-attention layer really gets its own rotary embeddings
    for index, (got, want) in enumerate(zip(captured, real, strict=True)):
        want = {**want, "use_cache": False}
        assert _same(got, want), index


def test_gemma3_compresses_the_same_on_the_accelerator() -> None:
    spec = spec_for("gptq-4-g16")
    here, there = tiny_gemma3(), tiny_gemma3()
    compress_model(here, spec, CharTokenizer())
    compress_model(there, spec, CharTokenizer(), accelerator=ACCELERATOR)
    for (name, a), b in zip(here.state_dict().items(), there.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

