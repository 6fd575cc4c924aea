"""The asymmetric per-group integer grid shared by RTN, GPTQ and AWQ.

Each group of `group_size` consecutive input columns of one output row gets its own scale and
zero point; when the width is not divisible by the group size the *last* group is shorter
(SmolLM2's 576 with g128 = 4 groups of 128 + one of 64). group_size = -1 means one group per row.
The range always includes 0 (as in the GPTQ reference), so a zero weight stays exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """Where one quantized weight's values lie: value = scale x (q - zero) with integer q in
    0..2**bits-1, per (row, group). `scale` and `zero` are float32 (rows x groups; `zero` holds
    integers). Recorded while compressing, so the weight can be written as integers and scales."""

    bits: int
    group_size: int  # -1: one group per row
    scale: torch.Tensor
    zero: torch.Tensor

    def to(self, device: torch.device) -> Grid:
        """The same grid with its tensors on `device` (itself when they are there already)."""
        if self.scale.device == device:
            return self
        return Grid(self.bits, self.group_size, self.scale.to(device), self.zero.to(device))

    def rows(self, start: int, end: int) -> Grid:
        """The grid of rows start..end (one Linear of several quantized stacked)."""
        return Grid(self.bits, self.group_size, self.scale[start:end].contiguous(), self.zero[start:end].contiguous())


def group_bounds(width: int, group_size: int) -> list[tuple[int, int]]:
    size = width if group_size == -1 else group_size
    return [(start, min(start + size, width)) for start in range(0, width, size)]


def grid_params(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point per row of `w` (rows x cols, float32) for a `bits`-bit grid."""
    maxq = 2**bits - 1
    wmin = torch.clamp(w.min(dim=1, keepdim=True).values, max=0)
    wmax = torch.clamp(w.max(dim=1, keepdim=True).values, min=0)
    flat = (wmin == 0) & (wmax == 0)
    wmin = torch.where(flat, torch.full_like(wmin, -1), wmin)
    wmax = torch.where(flat, torch.full_like(wmax, 1), wmax)
    scale = (wmax - wmin) / maxq
    zero = torch.round(-wmin / scale)
    return scale, zero


def fake_quantize(
    w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """Round to the grid and map back (simulated quantization)."""
    maxq = 2**bits - 1
    q = torch.clamp(torch.round(w / scale) + zero, 0, maxq)
    return scale * (q - zero)


def quantize_rtn(weight: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Round-to-nearest of a whole matrix, group by group (float32 in, float32 out)."""
    return quantize_rtn_grid(weight, bits, group_size)[0]


def quantize_rtn_grid(weight: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, Grid]:
    """`quantize_rtn`, and the grid its values lie on."""
    out = torch.empty_like(weight)
    scales, zeros = [], []
    for start, end in group_bounds(weight.shape[1], group_size):
        block = weight[:, start:end]
        scale, zero = grid_params(block, bits)
        out[:, start:end] = fake_quantize(block, scale, zero, bits)
        scales.append(scale)
        zeros.append(zero)
    return out, Grid(bits, group_size, torch.cat(scales, dim=1), torch.cat(zeros, dim=1))
