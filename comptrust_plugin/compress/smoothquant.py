"""INT8 W8A8 with SmoothQuant smoothing: move activation outliers into the weights, then int8.

Per block, with llm-compressor's SmoothQuant as the reference for every rule:
1. For each input group whose input is a norm's output (q/k/v after the attention norm,
   gate/up after the MLP norm: the reference's default mappings; o_proj and down_proj read
   inline-computed inputs and are not smoothed), the per-channel dynamic range of that input
   over the calibration tokens, r_j = max_j - min_j, is measured.
2. Scales s_j = r_j^α / w_j^(1-α), w_j = 2 x the largest |W[:, j]| over the group's Linears
   (where w_j = 0, s_j = r_j), floored at 1e-5. The norm's weight is divided by s (Gemma's
   x̂·(1 + w) form too, via the same fold as AWQ, checked numerically on the norm) and the
   Linears' input columns multiplied by it, which leaves the float block unchanged.
3. Every Linear of the block gets int8 weights, one symmetric scale per output channel, by
   compressed-tensors' W8A8 numerics (w8a8.py), computed in the dtype the model keeps.
   Activations are quantized per token at run time by hooks the engine attaches
   (w8a8.attach_activation_quantization).

Calibration passes run without activation quantization (the reference calibrates smoothing
on the float model; here each block sees what the previous, int8-weight block produces).
"""

from __future__ import annotations

import torch
from torch import nn

from .awq import _fold_into_norm
from .runner import BlockStep, InputGroup
from .w8a8 import quantize_weight

MINIMUM_SCALE = 1e-5


def smoothing_scales(value_range: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """s_j from the inputs' per-channel range and the Linears' weights (float32)."""
    column_max = torch.stack([w.float().abs().amax(dim=0) for w in weights]).amax(dim=0) * 2.0
    scales = value_range.pow(alpha) / column_max.pow(1 - alpha)
    scales = torch.where(column_max > 0, scales, value_range)
    return torch.clamp(scales, min=MINIMUM_SCALE)


class SmoothQuantCompressor:
    # float32 block passes: the fold into the norm is checked numerically, which bf16's rounding
    # would fail (leaving the group unsmoothed); the weights are rounded to the model's dtype after.
    compute_dtype: torch.dtype | None = torch.float32

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def compress_block(self, step: BlockStep) -> dict[str, float]:
        low: dict[InputGroup, torch.Tensor] = {}
        high: dict[InputGroup, torch.Tensor] = {}

        def observe(group: InputGroup, x: torch.Tensor) -> None:
            lo, hi = x.amin(dim=0), x.amax(dim=0)
            low[group] = torch.minimum(low[group], lo) if group in low else lo
            high[group] = torch.maximum(high[group], hi) if group in high else hi

        step.observe_inputs(observe)
        modules = dict(step.block.named_modules())
        smoothed = 0
        for group in step.input_groups:
            producer = modules.get(group.producer) if group.producer is not None else None
            if producer is None or isinstance(producer, nn.Linear):
                continue  # only a norm's output is smoothed (the reference's mappings)
            linears = [step.linears[name] for name in group.names]
            scales = smoothing_scales(high[group] - low[group], [lin.weight.data for lin in linears], self.alpha)
            scales = scales.to(linears[0].weight.device)
            if _fold_into_norm(producer, scales.to(producer.weight.dtype)):
                for linear in linears:
                    linear.weight.data = (linear.weight.data.float() * scales).to(linear.weight.dtype)
                smoothed += 1
        for linear in step.linears.values():  # in the stored dtype, as the package quantizes a model's weights
            weight = linear.weight.data
            linear.weight.data = quantize_weight(weight.to(step.stored_dtype), "int8").to(weight.dtype)
        return {"smoothed_groups": float(smoothed)}
