"""Apply a CompressionSpec to a loaded model in place: the one entry point for every method."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import TrustError
from ..spec import CompressionSpec
from .gguf import BLOCK as GGUF_BLOCK
from .gguf import quantize_dequantize as gguf_round_trip
from .grid import Grid, quantize_rtn_grid
from .layers import blocks_name, model_linears
from .magnitude import magnitude_prune_
from .nf4 import KINDS as NF4_KINDS
from .nf4 import quantize_dequantize as nf4_round_trip
from .runner import BlockCompressor
from .w8a8 import attach_activation_quantization, quantize_weight

# Bumped whenever a method's numerics change: part of every artifact's identity.
# sparsegpt/gptq 2: sink-weighted Hessian; wanda 2, sparsegpt/gptq 3: block passes in the model's dtype;
# awq 2: the alpha search really uses SEARCH_TOKENS (it used a whole 4096-token batch)
METHOD_VERSIONS = {
    "mag": 1, "rtn": 1, "wanda": 2, "sparsegpt": 4, "gptq": 4, "awq": 2, "gguf": 1,
    "fp8": 1, "int8": 1, "nf4": 1, "fp4": 1,
}


@dataclass
class CompressionStats:
    spec: str
    seconds: float
    layers: int
    sparsity: float  # share of zeros over all compressed Linear weights
    extra: dict[str, float] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)  # quantized Linears' grids, by name in the model


def method_version(spec: CompressionSpec) -> int:
    if spec.method not in METHOD_VERSIONS:
        raise TrustError(
            f"--compress={spec.canonical}: method '{spec.method}' is not implemented yet "
            f"(available: {', '.join(sorted(METHOD_VERSIONS))}, dense, hub:REPO)"
        )
    return METHOD_VERSIONS[spec.method]


def compression_identity(spec: CompressionSpec) -> dict[str, object]:
    """What, beyond the spec itself, decides the compressed weights: the method's code
    version and, for calibrated methods, the calibration data's identity."""
    version = method_version(spec)
    if not spec.is_calibrated:
        return {"method_version": version, "calibration": None}
    from .calibration import calibration_identity

    return {"method_version": version, "calibration": calibration_identity(spec)}


def make_compressor(spec: CompressionSpec) -> BlockCompressor:
    """The block step of a calibrated method, configured from the spec's resolved knobs."""
    fraction = spec.sparsity / 100 if spec.sparsity is not None else None
    if spec.method == "wanda":
        from .wanda import WandaCompressor

        return WandaCompressor(fraction, spec.n_m)
    if spec.method == "int8":
        from .smoothquant import SmoothQuantCompressor

        assert spec.alpha is not None
        return SmoothQuantCompressor(spec.alpha)
    if spec.method == "sparsegpt":
        from .sparsegpt import SparseGPTCompressor

        return SparseGPTCompressor(fraction, spec.n_m, spec.damp, spec.sink)
    assert spec.bits is not None
    if spec.method == "gptq":
        from .gptq import GPTQCompressor

        return GPTQCompressor(spec.bits, spec.group_size, spec.act_order, spec.damp, spec.sink)
    if spec.method == "awq":
        from .awq import AWQCompressor

        return AWQCompressor(spec.bits, spec.group_size)
    raise TrustError(f"--compress={spec.canonical}: '{spec.method}' is not a calibrated method")


@torch.no_grad()
def compress_model(
    model: nn.Module, spec: CompressionSpec, tokenizer: object = None, accelerator: torch.device | None = None,
) -> CompressionStats:
    """Compress every Linear of every decoder block of `model` in place.

    `tokenizer` is needed by calibrated methods to tokenize their calibration text. Weights only:
    a spec that quantizes activations too needs `quantize_activations` on the model that runs.
    `accelerator`: where a calibrated method compresses each block of a model kept on the host
    (runner.py); None: where the model is.
    """
    method_version(spec)
    start = time.perf_counter()
    linears = model_linears(model)
    extra: dict[str, float] = {}
    grids: dict[str, Grid] = {}
    if spec.is_calibrated:
        from .calibration import calibration_windows
        from .runner import run_layerwise

        run = run_layerwise(
            model, calibration_windows(spec, tokenizer), make_compressor(spec), accelerator=accelerator
        )
        extra = {**run.extra, "calibration_tokens": float(run.samples * run.seqlen)}
        grids = run.grids
    else:
        prefix = blocks_name(model)
        for name, linear in linears.items():
            weight, full = linear.weight.data, f"{prefix}.{name}"
            if spec.method == "mag":
                fraction = spec.sparsity / 100 if spec.sparsity is not None else None
                magnitude_prune_(linear, fraction, spec.n_m)
            elif spec.method == "rtn":
                assert spec.bits is not None
                quantized, grids[full] = quantize_rtn_grid(weight.float(), spec.bits, spec.group_size)
                weight.copy_(quantized.to(weight.dtype))
            elif spec.method == "gguf":
                assert spec.gguf_type is not None
                if weight.shape[1] % GGUF_BLOCK:
                    raise TrustError(f"--compress={spec.canonical}: {full} has {weight.shape[1]} input columns, "
                                     f"not a multiple of GGUF's {GGUF_BLOCK}-wide blocks")
                weight.copy_(gguf_round_trip(weight, spec.gguf_type).to(weight.dtype))
            elif spec.method == "fp8":
                weight.copy_(quantize_weight(weight, "fp8", spec.per_tensor))
            elif spec.method in NF4_KINDS:
                assert spec.block is not None
                weight.copy_(nf4_round_trip(weight, spec.method, spec.block, spec.double_quant).to(weight.dtype))
    zeros = sum(int((lin.weight == 0).sum()) for lin in linears.values())
    total = sum(lin.weight.numel() for lin in linears.values())
    return CompressionStats(
        spec=spec.canonical, seconds=time.perf_counter() - start, layers=len(linears),
        sparsity=zeros / total, extra=extra, grids=grids,
    )


def quantize_activations(model: nn.Module, spec: CompressionSpec) -> int:
    """Attach `spec`'s run-time activation quantization (fp8-dyn, int8-w8a8) to a model holding its
    compressed weights, however they were obtained (compressed now or loaded from the store).
    Returns the number of Linears whose inputs are quantized (0 for weight-only specs)."""
    if spec.activations is None:
        return 0
    return attach_activation_quantization(model, spec.activations)
