"""Scheme configs shipped in their libraries' formats: fp8 / int8-w8a8 as compressed-tensors'
float-quantized / int-quantized (loaded by transformers with compressed-tensors' own activation
quantization from the config), nf4 / fp4 in bitsandbytes' 4-bit format (loaded by transformers
with bitsandbytes on the CPU); each gives back the gated model's logits."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import bitsandbytes  # noqa: F401  (a dev dependency: never skipped for want of it)
import compressed_tensors  # noqa: F401
import pytest
import torch
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme
from safetensors import safe_open
from torch import nn

from comptrust_plugin.compress import w8a8
from comptrust_plugin.compress.apply import compress_model, quantize_activations
from comptrust_plugin.compress.export import packable, save_weights, write_checkpoint
from comptrust_plugin.compress.export_schemes import activation_args, grid_scales, weight_args
from comptrust_plugin.errors import TrustError
from comptrust_plugin.models.quantized import checkpoint_quantization
from comptrust_plugin.spec import CompressionSpec, parse_spec

from .test_nf4 import portable_bitsandbytes
from .tiny_models import CharTokenizer, one_thread, tiny_llama  # noqa: F401 (one_thread: autouse)

Q_PROJ = "model.layers.0.self_attn.q_proj"



def spec_for(text: str) -> CompressionSpec:
    spec = parse_spec(text)
    return replace(spec, n_samples=4, seqlen=32) if spec.is_calibrated else spec


def dense_model(folder: Path, dtype: torch.dtype) -> nn.Module:
    """A tiny Llama with outlier channels, saved and loaded back in `dtype` (so its buffers are
    what from_pretrained makes, as on both sides of a real round trip)."""
    from transformers import AutoModelForCausalLM

    tiny_llama(outliers=True).save_pretrained(folder / "dense")
    return AutoModelForCausalLM.from_pretrained(folder / "dense", dtype=dtype).eval()


def gated(dense: nn.Module, spec: CompressionSpec) -> nn.Module:
    """What the gate runs: compressed in memory, with the spec's activation hooks."""
    model = copy.deepcopy(dense)
    compress_model(model, spec, CharTokenizer())
    quantize_activations(model, spec)
    return model


def logits(model: nn.Module) -> torch.Tensor:
    ids = torch.randint(2, 120, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def load(folder: Path, dtype: torch.dtype, **kwargs: object) -> nn.Module:
    """transformers' own loading of the folder, its quantization taken from config.json."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs).eval()


def args_of(config: dict[str, object] | None) -> QuantizationArgs | None:
    return None if config is None else QuantizationArgs(**config)


def preset_args(args: QuantizationArgs, **update: object) -> QuantizationArgs | None:
    """A preset's args with `update`, no observer (a writer's choice), validated as ours are."""
    return args_of({**args.model_dump(), "observer": None, **update})


@pytest.mark.parametrize(
    ("text", "preset", "weight_type"),
    [("fp8", "FP8_DYNAMIC", torch.float8_e4m3fn), ("fp8-tensor", "FP8", torch.float8_e4m3fn),
     ("fp8-dyn", "FP8_DYNAMIC", torch.float8_e4m3fn), ("int8-w8a8", "W8A8", torch.int8)],
)
def test_compressed_tensors_round_trip_gives_the_gated_logits(
    tmp_path: Path, text: str, preset: str, weight_type: torch.dtype
) -> None:
    dense, spec = dense_model(tmp_path, torch.float32), spec_for(text)
    ours = gated(dense, spec)
    folder = write_checkpoint(ours, None, spec, {}, tmp_path / "out", {"model_name": "tiny"})
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    group = config["config_groups"]["group_0"]
    assert config["format"] == ("int-quantized" if spec.method == "int8" else "float-quantized")
    reference = preset_name_to_scheme(preset, ["Linear"])  # the package's preset, our strategy
    strategy = "tensor" if spec.per_tensor else "channel"
    assert args_of(group["weights"]) == preset_args(reference.weights, strategy=strategy)
    if spec.activations is None:
        assert group["input_activations"] is None
    else:
        assert args_of(group["input_activations"]) == preset_args(reference.input_activations)
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        stored, scale = handle.get_tensor(f"{Q_PROJ}.weight"), handle.get_tensor(f"{Q_PROJ}.weight_scale")
        assert "lm_head.weight" in handle.keys() and f"{Q_PROJ}.weight_zero_point" not in handle.keys()
    assert stored.dtype == weight_type and scale.dtype == torch.float32
    assert scale.shape == ((1,) if spec.per_tensor else (64, 1))

    theirs = load(folder, torch.float32)  # compressed-tensors' route, as the config says
    scheme = theirs.model.layers[1].mlp.down_proj.quantization_scheme  # compressed-tensors' own forward
    assert (scheme.input_activations is not None) == (spec.activations is not None)
    assert torch.equal(logits(theirs), logits(ours))
    if spec.activations is not None:
        # loading the weights alone (dequantize=True) drops the activation quantization: it matters here
        from transformers import CompressedTensorsConfig

        weights_only = load(folder, torch.float32, quantization_config=CompressedTensorsConfig(dequantize=True))
        assert float((logits(weights_only) - logits(ours)).abs().max()) > 1e-3


@pytest.mark.parametrize("text", ["fp8-dyn", "int8-w8a8", "fp8-tensor"])
def test_bf16_round_trip(tmp_path: Path, text: str) -> None:
    dense, spec = dense_model(tmp_path, torch.bfloat16), spec_for(text)
    ours = gated(dense, spec)
    folder = write_checkpoint(ours, None, spec, {}, tmp_path / "out", {})
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        assert handle.get_tensor(f"{Q_PROJ}.weight_scale").dtype == torch.bfloat16
    from transformers import CompressedTensorsConfig

    weights = load(folder, torch.bfloat16, quantization_config=CompressedTensorsConfig(dequantize=True))
    mine = dict(ours.named_parameters())
    assert all(torch.equal(param, mine[name]) for name, param in weights.named_parameters())
    assert torch.equal(logits(load(folder, torch.bfloat16)), logits(ours))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("kind", "per_tensor"), [("fp8", False), ("fp8", True), ("int8", False)])
def test_scales_read_back_put_every_weight_on_its_grid(kind: str, per_tensor: bool, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    w = (torch.randn(96, 80) * torch.exp(torch.randn(96, 1) * 2)).to(dtype)
    w[0] = 0
    w[1] = -w[1].abs()  # the extreme negative: -128 int8 steps
    w[2] = w[2].abs()  # the extreme positive: clamped to 127 steps
    q = w8a8.quantize_weight(w, kind, per_tensor)
    scale = grid_scales("w", q, kind, per_tensor)
    assert scale.dtype == dtype and torch.equal(w8a8.round_trip(q.float(), scale.float(), kind).to(dtype), q)
    off = q.clone()
    middle = int(off[5].abs().argsort()[40])  # one value of row 5, moved to the next number of its dtype
    off[5, middle] = torch.nextafter(off[5, middle], torch.tensor(float("inf"), dtype=dtype))
    with pytest.raises(TrustError, match=r"w: its weight \(row 5\)|w: its weight is not"):
        grid_scales("w", off, kind, per_tensor)


@portable_bitsandbytes
@pytest.mark.parametrize("text", ["nf4", "fp4", "nf4-b128-dq", "fp4-b32-dq"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bitsandbytes_round_trip_gives_the_gated_logits(tmp_path: Path, text: str, dtype: torch.dtype) -> None:
    dense, spec = dense_model(tmp_path, dtype), parse_spec(text)
    ours = gated(dense, spec)
    folder = write_checkpoint(dense, None, spec, {}, tmp_path / "out", {})  # bitsandbytes quantizes the dense
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "bitsandbytes" and config["bnb_4bit_quant_type"] == spec.method
    assert config["bnb_4bit_use_double_quant"] == spec.double_quant
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        assert handle.get_tensor(f"{Q_PROJ}.weight").dtype == torch.uint8
    assert f"{Q_PROJ}.weight.quant_state.bitsandbytes__{spec.method}" in keys and f"{Q_PROJ}.weight.absmax" in keys
    assert (f"{Q_PROJ}.weight.nested_absmax" in keys) == spec.double_quant
    theirs = load(folder, dtype, device_map="cpu")
    linear = theirs.model.layers[0].self_attn.q_proj
    assert type(linear).__name__ == "Linear4bit" and linear.weight.quant_state.blocksize == spec.block
    assert torch.equal(logits(theirs), logits(ours))


def test_the_store_keeps_fp8_and_int8_packed_and_nf4_dense(tmp_path: Path) -> None:
    dense = dense_model(tmp_path, torch.float32)
    for text, form in [("fp8-dyn", "compressed-tensors float-quantized"),
                       ("int8-w8a8", "compressed-tensors int-quantized"), ("nf4", "dense safetensors")]:
        spec = spec_for(text)
        model = copy.deepcopy(dense)
        compress_model(model, spec, CharTokenizer())
        assert packable(model, spec, {}) == (form != "dense safetensors")
        assert save_weights(model, spec, {}, tmp_path / text) == form


def test_our_loader_keeps_a_checkpoints_activation_quantization(tmp_path: Path) -> None:
    """`hub:FOLDER` of an fp8-dyn / int8-w8a8 checkpoint runs compressed-tensors' quantized forward
    (transformers' dequantize=True would drop the activations); a stored artifact, whose spec's
    hooks the engine attaches, loads as weights only."""
    dense, spec = dense_model(tmp_path, torch.float32), spec_for("int8-w8a8")
    folder = write_checkpoint(gated(dense, spec), None, spec, {}, tmp_path / "out", {})
    assert not checkpoint_quantization("m", str(folder), {})["quantization_config"].dequantize
    assert checkpoint_quantization("m", str(folder), {}, dequantize=True)["quantization_config"].dequantize
    weight_only = write_checkpoint(gated(dense, parse_spec("fp8")), None, parse_spec("fp8"), {}, tmp_path / "w", {})
    assert checkpoint_quantization("m", str(weight_only), {})["quantization_config"].dequantize


def test_the_args_written_match_what_the_spec_quantizes() -> None:
    assert weight_args(parse_spec("fp8-tensor"))["strategy"] == "tensor"
    assert activation_args(parse_spec("fp8")) is None
    assert activation_args(parse_spec("int8-w8a8"))["type"] == "int"
