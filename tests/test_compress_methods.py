"""Calibrated compression methods (Wanda, SparseGPT, GPTQ, AWQ) and their shared runner.

Fast tests use a tiny random Llama (2 blocks, hidden 80: not divisible by the group size 32,
so every quantized row has a shorter last group) whose input norms carry a few outlier
channels, the activation shape that makes activation-aware methods matter. Calibration in
these tests is 8 windows of 64 byte-level tokens of the shipped corpus; the embedded-model
test uses 8 windows of 256 tokens (not the default 128 x 512) to limit its CPU time.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from comptrust_plugin.compress.apply import compress_model
from comptrust_plugin.compress.calibration import calibration_windows
from comptrust_plugin.compress.grid import group_bounds
from comptrust_plugin.compress.layers import block_linears, find_blocks
from comptrust_plugin.compress.runner import run_layerwise
from comptrust_plugin.errors import TrustError
from comptrust_plugin.spec import CompressionSpec, parse_spec

from . import tiny_models
from .tiny_models import CharTokenizer, one_thread  # noqa: F401 (one_thread: autouse)

HIDDEN = 80
GROUP = 32


def tiny_llama(seed: int = 0) -> nn.Module:
    return tiny_models.tiny_llama(HIDDEN, 192, seed=seed, outliers=True)


def spec_for(text: str) -> CompressionSpec:
    spec = parse_spec(text)
    if spec.is_quantization:
        spec = replace(spec, group_size=GROUP)
    return replace(spec, n_samples=8, seqlen=64)



AWQ_SCALES: dict[str, dict[tuple[int, str], torch.Tensor]] = {}


@pytest.fixture(scope="module")
def compressed() -> dict[str, nn.Module]:
    """Each spec applied once to a fresh copy of the same tiny model."""
    from comptrust_plugin.compress.awq import AWQCompressor

    base = tiny_llama()
    out = {"dense": base}
    for text in ("mag-50", "wanda-50", "sparsegpt-50", "rtn-4", "gptq-4", "gptq-3-act",
                 "wanda-2:4", "sparsegpt-2:4", "sparsegpt-3:5", "rtn-3"):
        model = copy.deepcopy(base)
        compress_model(model, spec_for(text), CharTokenizer())
        out[text] = model
    for text in ("awq-4", "awq-3"):
        # Through the runner directly (as compress_model does) to read the folded scales.
        spec, model = spec_for(text), copy.deepcopy(base)
        assert spec.bits is not None
        compressor = AWQCompressor(spec.bits, spec.group_size)
        run_layerwise(model, calibration_windows(spec, CharTokenizer()), compressor)
        AWQ_SCALES[text] = {f"{i}.{name}": s for (i, name), s in compressor.applied_scales.items()}
        out[text] = model
    return out


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{i}.{name}": lin.weight.detach()
        for i, block in enumerate(find_blocks(model)) for name, lin in block_linears(block).items()
    }


@pytest.mark.parametrize("text", ["wanda-50", "sparsegpt-50"])
def test_unstructured_sparsity_is_exact(compressed: dict[str, nn.Module], text: str) -> None:
    for name, w in weights(compressed[text]).items():
        zeros = (w == 0)
        if text.startswith("wanda"):  # per output row
            assert bool((zeros.sum(dim=1) == w.shape[1] // 2).all()), name
        else:  # per 128-column block of each Linear
            expected = sum((w.shape[0] * (end - start)) // 2 for start, end in group_bounds(w.shape[1], 128))
            assert int(zeros.sum()) == expected, name


@pytest.mark.parametrize(
    "text,n,m", [("wanda-2:4", 2, 4), ("sparsegpt-2:4", 2, 4), ("sparsegpt-3:5", 3, 5)]
)
def test_n_m_pattern_holds_in_every_group(
    compressed: dict[str, nn.Module], text: str, n: int, m: int
) -> None:
    for name, w in weights(compressed[text]).items():
        for start in range(0, w.shape[1], m):
            run = w[:, start : start + m]
            kept = (run != 0).sum(dim=1)
            assert bool((kept <= n).all()), (name, start)
            if run.shape[1] == m:  # full runs prune exactly M - N (random weights are never 0)
                assert bool((kept == n).all()), (name, start)


@pytest.mark.parametrize("text", ["gptq-4", "awq-4", "gptq-3-act", "awq-3"])
def test_quantized_groups_have_at_most_2_pow_bits_values_on_their_grid(
    compressed: dict[str, nn.Module], text: str
) -> None:
    bits = parse_spec(text).bits
    assert bits is not None
    for name, w in weights(compressed[text]).items():
        bounds = group_bounds(w.shape[1], GROUP)
        assert bounds[-1][1] - bounds[-1][0] == HIDDEN % GROUP or w.shape[1] % GROUP == 0
        for start, end in bounds:
            group = w[:, start:end].double()
            for row in group:
                values = torch.unique(row)
                assert values.numel() <= 2**bits, (name, start)
                assert on_grid(values, bits), (name, start, values)


def on_grid(values: torch.Tensor, bits: int) -> bool:
    """Sorted distinct values lie on one uniform grid of 2^bits levels: every difference is an
    integer multiple of one step, spanning at most 2^bits - 1 steps. The step is the smallest
    gap divided by some k (a row need not use two adjacent levels)."""
    if values.numel() < 2:
        return True
    offsets = values - values[0]
    smallest = (values[1:] - values[:-1]).min()
    for k in range(1, 2**bits):
        ratio = offsets / (smallest / k)
        if torch.allclose(ratio, ratio.round(), atol=1e-3) and float(ratio[-1]) <= 2**bits - 1 + 1e-3:
            return True
    return False


def test_on_grid_rejects_off_grid_values() -> None:
    grid = torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64) * 0.1  # levels 0, 2, 5 of step 0.1
    assert on_grid(grid, 3) and not on_grid(grid, 2)  # 5 steps need 3 bits
    assert not on_grid(torch.tensor([0.0, 1.0, 1.7], dtype=torch.float64), 4)


def dense_block0_inputs(model: nn.Module, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inputs of every Linear of block 0 on the calibration windows (same for every method:
    all of them gather block-0 statistics from the dense block)."""
    captured: dict[str, torch.Tensor] = {}
    block = find_blocks(model)[0]

    def keep(name: str):  # noqa: ANN202
        return lambda module, args: captured.__setitem__(name, args[0].reshape(-1, args[0].shape[-1]))

    handles = [lin.register_forward_pre_hook(keep(name)) for name, lin in block_linears(block).items()]
    with torch.no_grad():
        model(input_ids=ids)
    for handle in handles:
        handle.remove()
    return captured


def reconstruction_errors(compressed: dict[str, nn.Module]) -> dict[str, float]:
    """Σ over block-0 Linears of ||X Wᵀ − X Ŵᵀ||² / ||X Wᵀ||² on the calibration data.

    For AWQ, Ŵ is the effective weight in the original basis: the stored weight divided by the
    scales folded into its input, and, for a producer whose output rows took its consumer's
    scales (up_proj for down_proj, v_proj for o_proj), multiplied back by those.
    """
    dense = compressed["dense"]
    ids = calibration_windows(spec_for("gptq-4"), CharTokenizer())
    inputs = dense_block0_inputs(dense, ids)
    dense_w = {k: v for k, v in weights(dense).items() if k.startswith("0.")}
    errors: dict[str, float] = {}
    for text, model in compressed.items():
        total = 0.0
        for key, w in weights(model).items():
            if not key.startswith("0."):
                continue
            x = inputs[key[2:]]
            folded = AWQ_SCALES.get(text, {})
            if key in folded:
                w = w / folded[key]
            consumer = {"mlp.up_proj": "mlp.down_proj", "self_attn.v_proj": "self_attn.o_proj"}.get(key[2:])
            if consumer and f"0.{consumer}" in folded:
                w = w * folded[f"0.{consumer}"][:, None]
            reference = x @ dense_w[key].T
            total += float(((reference - x @ w.T) ** 2).sum() / (reference**2).sum())
        errors[text] = total
    return errors


def test_calibrated_methods_reconstruct_layers_better_than_their_baselines(
    compressed: dict[str, nn.Module],
) -> None:
    err = reconstruction_errors(compressed)
    assert err["gptq-4"] < err["rtn-4"]
    assert err["sparsegpt-50"] < err["mag-50"]
    assert err["wanda-50"] <= err["mag-50"]
    assert err["awq-4"] <= err["rtn-4"]
    assert err["awq-3"] <= err["rtn-3"]


def test_awq_folds_scales_and_keeps_the_float_function(compressed: dict[str, nn.Module]) -> None:
    dense, awq = find_blocks(compressed["dense"]), find_blocks(compressed["awq-4"])
    scales = AWQ_SCALES["awq-4"]
    assert "0.self_attn.q_proj" in scales and "0.mlp.down_proj" in scales
    assert "0.self_attn.o_proj" not in scales  # grouped-query attention: no fold, clip only
    # The norm took exactly 1/s: folding leaves the float block's function unchanged.
    ratio = dense[0].input_layernorm.weight / awq[0].input_layernorm.weight
    assert torch.allclose(ratio, scales["0.self_attn.q_proj"], rtol=1e-4)
    assert torch.equal(compressed["dense"].lm_head.weight, compressed["awq-4"].lm_head.weight)
    embed = compressed["dense"].model.embed_tokens.weight
    assert torch.equal(embed, compressed["awq-4"].model.embed_tokens.weight)


@pytest.mark.parametrize("text", ["wanda-50", "sparsegpt-2:4", "gptq-4-act", "awq-4"])
def test_same_spec_and_seed_give_bit_identical_weights(text: str) -> None:
    runs = []
    for _ in range(2):
        model = tiny_llama()
        compress_model(model, spec_for(text), CharTokenizer())
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_a_different_calibration_seed_changes_the_weights() -> None:
    a, b = tiny_llama(), tiny_llama()
    compress_model(a, spec_for("gptq-4"), CharTokenizer())
    compress_model(b, replace(spec_for("gptq-4"), seed=7), CharTokenizer())
    assert not torch.equal(find_blocks(a)[0].mlp.down_proj.weight, find_blocks(b)[0].mlp.down_proj.weight)


def test_gptq_retries_with_more_dampening_when_cholesky_fails() -> None:
    from comptrust_plugin.compress.gptq import gptq_quantize

    hessian = torch.eye(17)
    hessian[0, 1] = hessian[1, 0] = 2.0  # eigenvalue -1: Cholesky fails until λ > 1
    quantized, damp_used = gptq_quantize(torch.randn(8, 17), hessian, 4, 8, damp=0.01)
    assert damp_used == pytest.approx(10.0) and bool(torch.isfinite(quantized).all())
    with pytest.raises(TrustError, match="singular"):
        gptq_quantize(torch.randn(8, 17), -torch.eye(17), 4, 8, damp=0.01)


def test_runner_refuses_a_model_it_cannot_walk() -> None:
    class NoBlocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

    with pytest.raises(TrustError, match="decoder blocks"):
        run_layerwise(NoBlocks(), torch.zeros(1, 4, dtype=torch.long), compressor=None)  # type: ignore[arg-type]


def test_runner_keeps_bf16_models_in_bf16_and_weights_on_their_grid() -> None:
    model = tiny_llama().to(torch.bfloat16)
    compress_model(model, spec_for("gptq-4"), CharTokenizer())
    for w in weights(model).values():
        assert w.dtype == torch.bfloat16
        for start, end in group_bounds(w.shape[1], GROUP):
            assert all(torch.unique(row).numel() <= 16 for row in w[:, start:end])


def test_runner_propagates_compressed_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block 1 must be calibrated on block 0's *compressed* outputs, not the dense ones."""
    seen: list[torch.Tensor] = []

    class Recorder:
        def compress_block(self, step) -> dict[str, float]:  # noqa: ANN001
            seen.append(step.inputs.clone())
            for linear in step.linears.values():
                linear.weight.data.zero_()  # a drastic "compression"
            return {}

    model = tiny_llama()
    ids = calibration_windows(spec_for("wanda-50"), CharTokenizer())
    run_layerwise(model, ids, Recorder())
    # With every Linear of block 0 zeroed, block 0 is the identity (residual only).
    assert torch.allclose(seen[1], seen[0])


# ------------------------------------------------------------------ embedded model
@pytest.fixture(scope="module")
def embedded() -> object:
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    cache = Path(os.environ.get("COMPTRUST_TEST_CACHE", "/tmp/comptrust-test-cache"))
    return load_model(resolve_model("smollm2-135m"), cache, torch.device("cpu"), torch.float32)


def heldout_ids(tokenizer: object) -> torch.Tensor:
    """Held-out text (the machine-ethics scenarios, never part of the calibration corpus)."""
    import json

    from comptrust_plugin.data.files import fixtures_dir

    rows = (fixtures_dir() / "machine_ethics" / "scenarios.jsonl").read_text("utf-8").splitlines()
    text = " ".join(json.loads(line)["scenario"] for line in rows if line.strip())
    ids = tokenizer(text, return_tensors="pt").input_ids  # type: ignore[operator]
    return ids[:, :1024]


def perplexity(model: nn.Module, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.exp(model(input_ids=ids, labels=ids).loss))


def _perplexities(
    embedded: object, specs: tuple[str, ...], n_samples: int = 8, seqlen: int = 256,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Perplexity (always in float32) of each spec compressed from a `dtype` copy of the model."""
    model, tokenizer = embedded.model, embedded.tokenizer  # type: ignore[attr-defined]
    ids = heldout_ids(tokenizer)
    dense_state = {k: v.clone() for k, v in model.state_dict().items()}
    ppl = {"dense": perplexity(model.to(dtype).float(), ids)}
    for text in specs:
        model.load_state_dict(dense_state)
        model.to(dtype)
        compress_model(model, replace(parse_spec(text), n_samples=n_samples, seqlen=seqlen), tokenizer)
        ppl[text] = perplexity(model.float(), ids)
    model.load_state_dict(dense_state)
    print({k: round(v, 2) for k, v in ppl.items()})
    return ppl


@pytest.mark.embedded
def test_embedded_model_perplexity_ordering(embedded: object) -> None:
    """Round-to-nearest by bit width, and Wanda/SparseGPT far better than magnitude at 50%."""
    ppl = _perplexities(embedded, ("rtn-8", "rtn-4", "rtn-3", "mag-50", "wanda-50", "sparsegpt-50"))
    # 8-bit RTN is indistinguishable from dense (measured 23.886 vs 23.888): within 1% either way.
    assert abs(ppl["rtn-8"] - ppl["dense"]) < 0.01 * ppl["dense"]
    assert ppl["dense"] < ppl["rtn-4"] and ppl["rtn-8"] < ppl["rtn-4"] < ppl["rtn-3"]
    assert max(ppl["wanda-50"], ppl["sparsegpt-50"]) < ppl["mag-50"] / 2


@pytest.mark.embedded
@pytest.mark.skipif(
    not os.environ.get("COMPTRUST_SLOW_TESTS"), reason="about 6 minutes on 2 CPUs; set COMPTRUST_SLOW_TESTS=1"
)
def test_embedded_model_gptq_and_awq_beat_rtn(embedded: object) -> None:
    """At the CPU default calibration (16 x 512 tokens), compressing in bf16 as a CPU run of the
    plugin does. Measured in fp32 before the bf16 passes: dense 23.89, rtn-4 30.22, gptq-4 28.43,
    awq-4 26.79, rtn-3 114 (gptq-4 was worse than rtn-4 before the sink-weighted Hessian; see
    compress/hessian.py)."""
    ppl = _perplexities(
        embedded, ("rtn-8", "rtn-4", "rtn-3", "gptq-4", "awq-4"), n_samples=16, seqlen=512, dtype=torch.bfloat16,
    )
    assert max(ppl["rtn-8"], ppl["dense"]) < min(ppl["gptq-4"], ppl["awq-4"])
    assert max(ppl["gptq-4"], ppl["awq-4"]) < ppl["rtn-3"]
    assert ppl["gptq-4"] < ppl["rtn-4"] and ppl["awq-4"] <= ppl["rtn-4"]


def test_sink1_is_the_unweighted_hessian() -> None:
    """`-sink1` reaches the Hessian (weight 1 for each window's first token, as the references):
    the weights differ from the default's (first token weighted 128 times)."""
    from comptrust_plugin.compress.apply import make_compressor

    assert make_compressor(spec_for("gptq-4-sink1")).sink == 1
    assert make_compressor(spec_for("sparsegpt-50-sink1")).sink == 1
    results = {}
    for text in ("gptq-4", "gptq-4-sink1"):
        model = tiny_llama()
        compress_model(model, spec_for(text), CharTokenizer())
        results[text] = weights(model)
    assert any(not torch.equal(results["gptq-4"][n], results["gptq-4-sink1"][n]) for n in results["gptq-4"])
