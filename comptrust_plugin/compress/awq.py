"""AWQ: activation-aware scaling before round-to-nearest, then a clipping search. No Hessian.

Per block, following the reference (mit-han-lab/llm-awq, auto_scale / auto_clip):
1. For each input group (Linears reading the same tensor: q/k/v, gate/up, o, down) the
   per-channel activation magnitude x̄ = mean |x| is measured. For α in {0, 1/20, .., 19/20}
   the scales s = x̄^α (normalised by sqrt(max·min)) are tried: the group's Linears get
   Q(W·diag(s))·diag(s)⁻¹ while everything else stays float, and the output of the smallest
   module holding the whole group (self_attn for q/k/v, mlp for gate/up, the Linear itself
   otherwise) is compared with the float output. The α with the lowest MSE wins (α = 0 is
   plain RTN, so the search never does worse than RTN on its data).
2. The winning scales are folded: W ← W·diag(s) and the op producing the group's input is
   divided by s, which leaves the float block unchanged. Foldable producers are
   - a norm found by data flow (the module whose output *is* the group's input): its weight
     is divided by s, or for Gemma-style norms computing x̂·(1 + w), w ← (1 + w)/s − 1;
     each form is checked numerically on the norm itself and used only if it holds;
   - the previous Linear by the reference's rules: down_proj ← up_proj (act(gate)·up is
     linear in up's output) and o_proj ← v_proj only when their shapes match (no grouped-
     query attention), checked by re-running the float block on one window.
   **When no fold is possible** (o_proj under grouped-query attention — SmolLM2, Gemma-3 —
   or a producer that fails its check), the group gets no scaling: exactly what the
   references do for GQA's o_proj. Such a Linear still gets the clipping search below.
3. Clipping search per Linear except the query/key projections (the reference skips them:
   clipping there distorts attention scores): for every row and group, the range
   [-m, m] with m = max|w| · (1 − i/20), i = 0..9, whose quantized output on 512 calibration
   tokens is closest to the float output (i = 0 is no clipping).
4. Round-to-nearest of every Linear on the shared grid of grid.py.

Cost concession (documented): the α search runs its forward passes on the first
`SEARCH_TOKENS` calibration tokens (whole windows), while x̄ uses every token; with the
default 128 x 512 calibration the reference searches on all of them, which is 20 passes of
the attention and MLP over 65k tokens per block — too slow for a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .grid import fake_quantize, grid_params, group_bounds, quantize_rtn, quantize_rtn_grid
from .runner import BlockStep, InputGroup

GRID_POINTS = 20
MAX_SHRINK = 0.5  # clipping never cuts more than half of a group's range
CLIP_TOKENS = 512
SEARCH_TOKENS = 512
SKIP_CLIP = ("q_proj", "k_proj", "query", "key")  # attention score projections
# Previous Linear that feeds a Linear whose input is computed inline: (consumer, producer).
LINEAR_FOLDS = (("down_proj", "up_proj"), ("o_proj", "v_proj"))


@dataclass
class _GroupCapture:
    """What one input group's search and clipping need, gathered in one pass over the block."""

    group: InputGroup
    inspect_name: str
    abs_sum: torch.Tensor | None = None
    tokens: int = 0
    clip_rows: list[torch.Tensor] = field(default_factory=list)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    targets: list[torch.Tensor] = field(default_factory=list)


def _first_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def _common_parent(names: tuple[str, ...]) -> str:
    """Smallest module holding all the group's Linears (the Linear itself for a single one)."""
    if len(names) == 1:
        return names[0]
    parts = [name.split(".") for name in names]
    common: list[str] = []
    for pieces in zip(*parts, strict=False):
        if len(set(pieces)) != 1:
            break
        common.append(pieces[0])
    return ".".join(common)


def scale_candidates(abs_mean: torch.Tensor, ratio: float) -> torch.Tensor:
    scales = abs_mean.pow(ratio).clamp(min=1e-4)
    return scales / torch.sqrt(scales.max() * scales.min())


def search_scales(
    linears: list[nn.Linear], abs_mean: torch.Tensor, bits: int, group_size: int,
    loss_of: Callable[[], float],
) -> tuple[torch.Tensor, float]:
    """Grid search over α (see module docstring); returns (best scales, best α).

    `loss_of()` measures the output error with the Linears' current weights; the original
    weights are restored before returning.
    """
    originals = [linear.weight.data.clone() for linear in linears]
    best_loss, best_ratio = math.inf, 0.0
    best_scales = torch.ones_like(abs_mean)
    try:
        for step in range(GRID_POINTS):
            ratio = step / GRID_POINTS
            scales = scale_candidates(abs_mean, ratio)
            for linear, weight in zip(linears, originals, strict=True):
                linear.weight.data = quantize_rtn(weight * scales, bits, group_size) / scales
            loss = loss_of()
            if loss < best_loss:
                best_loss, best_ratio, best_scales = loss, ratio, scales
    finally:
        for linear, weight in zip(linears, originals, strict=True):
            linear.weight.data = weight
    return best_scales, best_ratio


def clip_search(weight: torch.Tensor, x: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Clip each (row, group) of `weight` to the shrink of its range whose quantized output on
    tokens `x` (tokens x in_features) is closest to the float output; returns the clipped weight."""
    steps = int(MAX_SHRINK * GRID_POINTS)
    out = weight.clone()
    for start, end in group_bounds(weight.shape[1], group_size):
        w = weight[:, start:end]
        xg = x[:, start:end]
        reference = xg @ w.T  # tokens x rows
        top = w.abs().amax(dim=1, keepdim=True)
        best_err = torch.full((w.shape[0],), math.inf, device=w.device)
        best = w
        for i in range(steps):
            bound = top * (1 - i / GRID_POINTS)
            clipped = torch.maximum(torch.minimum(w, bound), -bound)
            scale, zero = grid_params(clipped, bits)
            quantized = fake_quantize(clipped, scale, zero, bits)
            err = ((xg @ quantized.T - reference) ** 2).mean(dim=0)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better.unsqueeze(1), clipped, best)
        out[:, start:end] = best
    return out


def _fold_into_norm(norm: nn.Module, scales: torch.Tensor) -> bool:
    """Divide a norm's output by `scales`; True if one of the known forms holds exactly."""
    weight = getattr(norm, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.shape != scales.shape:
        return False
    bias = getattr(norm, "bias", None)
    probe = torch.randn(4, scales.shape[0], device=scales.device, generator=None)
    expected = _first_tensor(norm(probe)) / scales
    original_w = weight.data.clone()
    original_b = bias.data.clone() if isinstance(bias, torch.Tensor) else None
    forms = (lambda w: w / scales, lambda w: (1 + w) / scales - 1)  # x̂·w  and  Gemma's x̂·(1 + w)
    for form in forms:
        weight.data = form(original_w)
        if original_b is not None:
            bias.data = original_b / scales  # type: ignore[union-attr]
        got = _first_tensor(norm(probe))
        if torch.allclose(got, expected, rtol=1e-3, atol=1e-5 * float(expected.abs().max())):
            return True
    weight.data = original_w
    if original_b is not None:
        bias.data = original_b  # type: ignore[union-attr]
    return False


def _fold_into_linear(producer: nn.Linear, scales: torch.Tensor) -> None:
    producer.weight.data = producer.weight.data / scales.unsqueeze(1)
    if producer.bias is not None:
        producer.bias.data = producer.bias.data / scales


class AWQCompressor:
    # float32 block passes: the searches compare outputs of candidate weights, and
    # bf16 rounding noise is of the size of the differences they rank.
    compute_dtype: torch.dtype | None = torch.float32

    def __init__(self, bits: int, group_size: int) -> None:
        self.bits, self.group_size = bits, group_size
        # (block index, Linear name) -> the input scales folded into it, for inspection: the
        # Linear's effective weight on the *unscaled* input is its stored weight / scales.
        self.applied_scales: dict[tuple[int, str], torch.Tensor] = {}

    def _capture(self, step: BlockStep) -> list[_GroupCapture]:
        modules = dict(step.block.named_modules())
        captures = [_GroupCapture(g, _common_parent(g.names)) for g in step.input_groups]
        total_tokens = step.inputs.shape[0] * step.inputs.shape[1]
        stride = max(1, total_tokens // CLIP_TOKENS)
        search_windows = max(1, SEARCH_TOKENS // step.inputs.shape[1])
        state = {"window": 0}  # windows seen before the current batch
        handles = []

        def observe(capture: _GroupCapture) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
                x = args[0].reshape(-1, args[0].shape[-1]).float()
                total = x.abs().sum(dim=0)
                capture.abs_sum = total if capture.abs_sum is None else capture.abs_sum + total
                offset = state["window"] * step.inputs.shape[1]
                first = (-offset) % stride  # keep the global token stride across batches
                capture.clip_rows.append(x[first::stride].clone())
                capture.tokens += x.shape[0]
            return hook

        def record_call(capture: _GroupCapture) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                capture.calls.append((args, kwargs))
            return hook

        def record_target(capture: _GroupCapture) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
                capture.targets.append(_first_tensor(output).detach().clone())
            return hook

        for capture in captures:
            leader = step.linears[capture.group.names[0]]
            handles.append(leader.register_forward_pre_hook(observe(capture)))
        try:
            for hidden in step.batches():
                step.forward(hidden)
                state["window"] += hidden.shape[0]
        finally:
            for handle in handles:
                handle.remove()
        # The search's inputs and float targets: one more pass over its first windows only
        # (a calibration batch holds more windows than the search uses).
        handles = []
        for capture in captures:
            inspect = modules[capture.inspect_name]
            handles.append(inspect.register_forward_pre_hook(record_call(capture), with_kwargs=True))
            handles.append(inspect.register_forward_hook(record_target(capture)))
        try:
            step.forward(step.inputs[:search_windows])
        finally:
            for handle in handles:
                handle.remove()
        return captures

    def compress_block(self, step: BlockStep) -> dict[str, float]:
        modules = dict(step.block.named_modules())
        captures = self._capture(step)
        folded = 0
        ratios: list[float] = []
        for capture in captures:
            names = capture.group.names
            linears = [step.linears[name] for name in names]
            assert capture.abs_sum is not None
            abs_mean = capture.abs_sum / capture.tokens
            inspect = modules[capture.inspect_name]

            def loss_of(inspect: nn.Module = inspect, capture: _GroupCapture = capture) -> float:
                total, count = 0.0, 0
                for (args, kwargs), target in zip(capture.calls, capture.targets, strict=True):
                    out = _first_tensor(inspect(*args, **kwargs))
                    total += float(((out - target) ** 2).sum())
                    count += target.numel()
                return total / count

            if not self._foldable(step, modules, capture.group):
                capture.calls.clear()  # no producer can take scales (GQA's o_proj): plain RTN + clipping
                capture.targets.clear()
                continue
            scales, ratio = search_scales(linears, abs_mean, self.bits, self.group_size, loss_of)
            capture.calls.clear()
            capture.targets.clear()
            if ratio > 0 and self._fold(step, modules, capture.group, scales):
                for linear in linears:
                    linear.weight.data = linear.weight.data * scales
                capture.clip_rows = [x / scales for x in capture.clip_rows]
                for name in names:
                    self.applied_scales[(step.index, name)] = scales
                folded += 1
                ratios.append(ratio)
        for capture in captures:
            x = torch.cat(capture.clip_rows)
            for name in capture.group.names:
                linear = step.linears[name]
                weight = linear.weight.data.float()
                if not any(part in name.split(".")[-1] for part in SKIP_CLIP):
                    weight = clip_search(weight, x, self.bits, self.group_size)
                quantized, step.grids[name] = quantize_rtn_grid(weight, self.bits, self.group_size)
                linear.weight.data = quantized.to(linear.weight.dtype)
        return {"awq_groups_scaled": float(folded), "awq_mean_alpha": sum(ratios) / max(len(ratios), 1)}

    def _foldable(self, step: BlockStep, modules: dict[str, nn.Module], group: InputGroup) -> bool:
        """Whether some producer could take the scales (shapes only; `_fold` checks numerics).

        Searching scales that can never be applied would only cost time.
        """
        if group.producer is not None:
            producer = modules[group.producer]
            if isinstance(producer, nn.Linear):
                return True
            weight = getattr(producer, "weight", None)
            return isinstance(weight, torch.Tensor) and weight.shape == (step.linears[group.names[0]].in_features,)
        if len(group.names) != 1:
            return False
        parent, _, leaf = group.names[0].rpartition(".")
        consumer = step.linears[group.names[0]]
        for consumer_leaf, source in LINEAR_FOLDS:
            if leaf != consumer_leaf:
                continue
            producer = step.linears.get(f"{parent}.{source}" if parent else source)
            if producer is None or producer.weight.shape[0] != consumer.weight.shape[1]:
                return False
            return not (producer.weight.shape != consumer.weight.shape and consumer_leaf == "o_proj")
        return False

    def _fold(
        self, step: BlockStep, modules: dict[str, nn.Module], group: InputGroup, scales: torch.Tensor
    ) -> bool:
        """Divide the producer of `group`'s input by `scales` (see module docstring, step 2).

        Returns False, changing nothing, when no producer can take the scales.
        """
        if group.producer is not None:
            producer = modules[group.producer]
            if isinstance(producer, nn.Linear):
                _fold_into_linear(producer, scales)
                return True
            return _fold_into_norm(producer, scales)
        if len(group.names) != 1:
            return False
        name = group.names[0]
        parent, _, leaf = name.rpartition(".")
        for consumer, source in LINEAR_FOLDS:
            if leaf != consumer:
                continue
            source_name = f"{parent}.{source}" if parent else source
            producer = step.linears.get(source_name)
            consumer_linear = step.linears[name]
            if producer is None or producer.weight.shape[0] != consumer_linear.weight.shape[1]:
                return False
            if producer.weight.shape != consumer_linear.weight.shape and consumer == "o_proj":
                return False  # grouped-query attention: v's rows are shared by several heads
            return self._fold_checked(step, producer, consumer_linear, scales)
        return False

    def _fold_checked(
        self, step: BlockStep, producer: nn.Linear, consumer: nn.Linear, scales: torch.Tensor
    ) -> bool:
        """Fold into a previous Linear only if the float block's output is unchanged on one window."""
        probe = step.inputs[:1]
        before = step.forward(probe)
        saved = (producer.weight.data.clone(), None if producer.bias is None else producer.bias.data.clone())
        original = consumer.weight.data.clone()
        _fold_into_linear(producer, scales)
        consumer.weight.data = original * scales
        after = step.forward(probe)
        consumer.weight.data = original  # the caller applies the consumer's scaling itself
        scale = float(before.abs().max())
        if torch.allclose(after, before, rtol=1e-3, atol=1e-4 * scale):
            return True
        producer.weight.data = saved[0]
        if saved[1] is not None:
            producer.bias.data = saved[1]  # type: ignore[union-attr]
        return False
