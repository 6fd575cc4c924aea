"""FP8 and INT8 weights and activations, quantized as compressed-tensors' schemes compute them.

compressed-tensors (what llm-compressor writes and vLLM serves) defines `FP8` weights (e4m3,
per output channel or per tensor), `FP8_DYNAMIC` (plus e4m3 activations, per token, computed
at run time) and `W8A8` (int8 weights per channel, int8 activations per token), all symmetric.
Its numerics (`calculate_qparams`, `compute_dynamic_scales_and_zp`, `fake_quantize`), which this
module follows step for step in the tensor's own dtype:
- m = max(|min(x, 0)|, |max(x, 0)|) over the channel, tensor or token;
- scale = m / (range / 2), range = q_max - q_min: 896 for e4m3 (±448), 255 for int8 (-128..127),
  so an int8 scale is m / 127.5, not m / 127 (the package's formula, kept); a zero scale
  becomes the dtype's machine epsilon;
- value = R(clamp(x / scale, q_min, q_max)) x scale, where R casts to float8_e4m3fn and back
  (round to nearest even) for FP8 and is torch.round (half to even) for int8.
Tests compare every step with the package's own functions, in float32 and bfloat16.

Which tensors: the decoder blocks' Linears (weights once, their inputs at every call);
embeddings, norms and the output head stay as they are, as llm-compressor's recipes leave
`lm_head` out. Activations are quantized per token over the hidden dimension of the Linear's
input (for the (batch, tokens, hidden) inputs every block passes; the package's `token`
strategy reduces over the dimensions after the second, the same thing for those inputs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .layers import model_linears

FP8_MAX = 448.0  # float8_e4m3fn's largest finite value
INT8_MIN, INT8_MAX = -128.0, 127.0
KINDS = ("fp8", "int8")


def _bounds(kind: str) -> tuple[float, float]:
    if kind == "fp8":
        return -FP8_MAX, FP8_MAX
    if kind == "int8":
        return INT8_MIN, INT8_MAX
    raise ValueError(f"unknown 8-bit kind {kind!r}; choose from {', '.join(KINDS)}")


def scales(low: torch.Tensor, high: torch.Tensor, kind: str) -> torch.Tensor:
    """Symmetric scales from observed minima and maxima (same dtype out as in)."""
    q_min, q_max = _bounds(kind)
    low = torch.minimum(low, torch.zeros_like(low))
    high = torch.maximum(high, torch.zeros_like(high))
    extreme = torch.maximum(low.abs(), high.abs())
    half_range = torch.tensor(q_max - q_min, dtype=extreme.dtype) / 2
    scale = extreme / half_range
    return torch.where(scale == 0, torch.tensor(torch.finfo(scale.dtype).eps, dtype=scale.dtype), scale)


def round_trip(x: torch.Tensor, scale: torch.Tensor, kind: str) -> torch.Tensor:
    """x onto the grid of `scale` (broadcast) and back, in x's dtype."""
    q_min, q_max = _bounds(kind)
    scaled = torch.clamp(x / scale, q_min, q_max)
    rounded = scaled.to(torch.float8_e4m3fn).to(x.dtype) if kind == "fp8" else torch.round(scaled)
    return rounded.to(scale.dtype) * scale


def quantize_weight(weight: torch.Tensor, kind: str, per_tensor: bool = False) -> torch.Tensor:
    """A Linear's weight (out x in) through `kind` with one scale per output row (or per tensor)."""
    if per_tensor:
        low, high = torch.aminmax(weight)
    else:
        low, high = weight.amin(dim=1, keepdim=True), weight.amax(dim=1, keepdim=True)
    return round_trip(weight, scales(low, high, kind), kind)


def quantize_tokens(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Activations through `kind` with one dynamic scale per token (over the last dimension)."""
    if x.numel() == 0:
        return x
    low, high = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
    return round_trip(x, scales(low, high, kind), kind)


def quantize_weights_(model: nn.Module, kind: str, per_tensor: bool = False) -> None:
    """Every decoder-block Linear's weight in place."""
    for linear in model_linears(model).values():
        linear.weight.data = quantize_weight(linear.weight.data, kind, per_tensor)


def attach_activation_quantization(model: nn.Module, kind: str) -> int:
    """Quantize the input of every decoder-block Linear per token at run time (a forward
    pre-hook each; the model object carries them for as long as it lives). Returns how many."""
    _bounds(kind)

    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (quantize_tokens(args[0], kind), *args[1:])

    linears = model_linears(model)
    for linear in linears.values():
        linear.register_forward_pre_hook(hook)
    return len(linears)
