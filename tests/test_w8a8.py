"""FP8 and INT8 W8A8 (with SmoothQuant): numerics equal to compressed-tensors' own, step by step and
through a whole model (its quantized Linear forward vs our weights plus activation hooks)."""

from __future__ import annotations

import copy
from dataclasses import replace

import compressed_tensors  # noqa: F401  (a dev dependency: never skipped for want of it)
import pytest
import torch
from compressed_tensors.quantization import (
    QuantizationArgs,
    QuantizationConfig,
    QuantizationStatus,
    QuantizationStrategy,
    QuantizationType,
    apply_quantization_config,
)
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme
from compressed_tensors.quantization.utils.helpers import calculate_qparams, compute_dynamic_scales_and_zp
from torch import nn

from comptrust_plugin.compress import smoothquant, w8a8
from comptrust_plugin.compress.apply import compress_model, quantize_activations
from comptrust_plugin.compress.layers import find_blocks, model_linears
from comptrust_plugin.spec import CompressionSpec, parse_spec

from .tiny_models import CharTokenizer, tiny_llama

TYPES = {"fp8": QuantizationType.FLOAT, "int8": QuantizationType.INT}
DTYPES = (torch.float32, torch.bfloat16)


def args(kind: str, strategy: QuantizationStrategy, dynamic: bool = False) -> QuantizationArgs:
    return QuantizationArgs(num_bits=8, type=TYPES[kind], strategy=strategy, symmetric=True, dynamic=dynamic)


def awkward(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Rows of very different ranges, an all-zero row, one-signed rows, values past e4m3's 448."""
    torch.manual_seed(0)
    x = torch.randn(*shape) * torch.exp(torch.randn(*shape[:-1], 1) * 2)
    x[..., 0, :] = 0
    x[..., 1, :] = x[..., 1, :].abs()
    x[..., 2, :] = -x[..., 2, :].abs() * 1000
    return x.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("per_tensor", [False, True])
def test_weights_equal_the_package(kind: str, per_tensor: bool, dtype: torch.dtype) -> None:
    w = awkward((48, 96), dtype)
    strategy = QuantizationStrategy.TENSOR if per_tensor else QuantizationStrategy.CHANNEL
    low, high = torch.aminmax(w) if per_tensor else (w.amin(1, keepdim=True), w.amax(1, keepdim=True))
    scale, zero = calculate_qparams(low, high, args(kind, strategy))
    expected = fake_quantize(w, scale, zero, args(kind, strategy))
    ours = w8a8.quantize_weight(w, kind, per_tensor)
    assert ours.dtype == dtype and torch.equal(ours, expected)
    assert torch.equal(w8a8.scales(low, high, kind).reshape(scale.shape), scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", TYPES)
def test_token_activations_equal_the_package(kind: str, dtype: torch.dtype) -> None:
    x = awkward((3, 21, 64), dtype)
    token = args(kind, QuantizationStrategy.TOKEN, dynamic=True)
    scale, zero = compute_dynamic_scales_and_zp(x, token, None)
    assert torch.equal(w8a8.quantize_tokens(x, kind), fake_quantize(x, scale, zero, token))


def test_int8_scale_is_the_packages_range_over_two() -> None:
    """compressed-tensors divides by (127 - -128) / 2 = 127.5, not 127: kept, since vLLM serves its scales."""
    scale = w8a8.scales(torch.tensor([-1.0]), torch.tensor([2.55]), "int8")
    assert torch.equal(scale, torch.tensor([2.55]) / 127.5)
    eps = torch.tensor([torch.finfo(torch.float32).eps])
    assert torch.equal(w8a8.scales(torch.tensor([0.0]), torch.tensor([0.0]), "fp8"), eps)


def package_model(model: nn.Module, preset: str) -> nn.Module:
    """`model` under compressed-tensors' own quantized forward (weights fake-quantized from their
    scales, dynamic activations), with the scales its weight observer would compute."""
    ref = copy.deepcopy(model)
    scheme = preset_name_to_scheme(preset, ["Linear"])
    config = QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"],
                                quantization_status=QuantizationStatus.CALIBRATION)
    apply_quantization_config(ref, config)
    for module in ref.modules():
        if hasattr(module, "weight_scale"):
            w = module.weight.data
            scale, zero = calculate_qparams(w.amin(1, keepdim=True), w.amax(1, keepdim=True), scheme.weights)
            for name, value in (("weight_scale", scale), ("weight_zero_point", zero)):
                held = getattr(module, name)
                held.data = value.reshape(held.shape).to(held.dtype)
    return ref


def ours(model: nn.Module, spec: CompressionSpec) -> nn.Module:
    model = copy.deepcopy(model)
    compress_model(model, spec, CharTokenizer())
    assert quantize_activations(model, spec) == len(model_linears(model))
    return model


def logits(model: nn.Module) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.randint(2, 120, (2, 40))).logits


def calibrated(text: str) -> CompressionSpec:
    return replace(parse_spec(text), n_samples=4, seqlen=32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fp8_dynamic_model_equals_the_packages_forward(dtype: torch.dtype) -> None:
    base = tiny_llama(outliers=True).to(dtype)
    expected = logits(package_model(base, "FP8_DYNAMIC"))
    got = logits(ours(base, parse_spec("fp8-dyn")))
    assert torch.equal(got, expected)
    assert not torch.equal(got, logits(base))


@pytest.mark.parametrize("dtype", DTYPES)
def test_int8_w8a8_quantization_step_equals_the_package(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoothed float model through compressed-tensors' W8A8 forward is our int8-w8a8 model (one
    block: a second block's smoothing would see the first block's int8 outputs on our side only)."""
    base = tiny_llama(outliers=True, layers=1).to(dtype)
    spec = calibrated("int8-w8a8")
    with monkeypatch.context() as patch:
        patch.setattr(smoothquant, "quantize_weight", lambda weight, kind: weight)
        smoothed = copy.deepcopy(base)
        compress_model(smoothed, spec, CharTokenizer())
    expected = logits(package_model(smoothed, "W8A8"))
    assert torch.equal(logits(ours(base, spec)), expected)


def test_smoothing_moves_outliers_and_leaves_the_float_model_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    base = tiny_llama(outliers=True)
    monkeypatch.setattr(smoothquant, "quantize_weight", lambda weight, kind: weight)
    smoothed = copy.deepcopy(base)
    compress_model(smoothed, calibrated("int8-w8a8-alpha0.8"), CharTokenizer())
    before, after = logits(base), logits(smoothed)
    assert torch.allclose(after, before, atol=1e-4 * float(before.abs().max()))
    for old, new in zip(find_blocks(base), find_blocks(smoothed), strict=True):
        assert not torch.equal(old.input_layernorm.weight, new.input_layernorm.weight)
        assert not torch.equal(old.post_attention_layernorm.weight, new.post_attention_layernorm.weight)
        assert torch.equal(old.self_attn.o_proj.weight, new.self_attn.o_proj.weight)  # inline input: not smoothed
        spread = lambda norm: float(norm.weight.detach().abs().max() / norm.weight.detach().abs().median())  # noqa: E731
        assert spread(new.input_layernorm) < spread(old.input_layernorm)


def test_smoothing_scales_follow_the_reference_rule() -> None:
    """s_j = r_j^a / (2 max_k |W_kj|)^(1-a); r_j where the weights' column is all zero; floored at 1e-5."""
    value_range = torch.tensor([4.0, 9.0, 1e-12, 2.0])
    w1 = torch.tensor([[1.0, -2.0, 0.5, 0.0]])
    w2 = torch.tensor([[0.5, 3.0, 0.25, 0.0]])
    got = smoothquant.smoothing_scales(value_range, [w1, w2], 0.5)
    expected = torch.tensor([4.0**0.5 / 2.0**0.5, 3.0 / 6.0**0.5, 1e-5, 2.0])
    assert torch.allclose(got, expected)


def test_int8_w8a8_lowers_outlier_error_against_plain_w8a8() -> None:
    """What smoothing is for: on outlier activations, smoothed W8A8 is closer to the float model."""
    base = tiny_llama(outliers=True)
    reference = logits(base)
    smoothed = logits(ours(base, calibrated("int8-w8a8")))
    plain = logits(package_model(base, "W8A8"))
    assert (smoothed - reference).abs().mean() < (plain - reference).abs().mean()


def test_weight_only_fp8_has_no_hooks_and_at_most_256_values_per_row() -> None:
    model = tiny_llama()
    spec = parse_spec("fp8")
    compress_model(model, spec, CharTokenizer())
    assert quantize_activations(model, spec) == 0
    for linear in model_linears(model).values():
        for row in linear.weight:
            assert row.unique().numel() <= 256
