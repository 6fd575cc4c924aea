"""GPTQ: quantize column by column, spreading each column's rounding error with the inverse Hessian.

The Hessian, its inverse factor and the column sweep are hessian.py's (shared with SparseGPT,
including its choices: dampening retries, stacked solves of Linears sharing an input, the
sink-weighted first token); this module holds what makes it GPTQ: the grid and its groups.

Faithful to the reference (IST-DASLab/gptq) with these documented choices:
- the grid is the shared asymmetric per-group grid of grid.py (shorter last group);
- without act-order a group's scale/zero are computed when the sweep reaches the group's first
  column, from the weights as already updated (the reference's dynamic groups);
- with act-order, columns are visited by descending diag(H) but each column keeps the grid of
  its *original* contiguous group, computed up front (the reference's `static_groups`), so
  the stored weights stay on contiguous groups — what grid.py and every checkpoint format
  expect.
"""

from __future__ import annotations

import torch

from .grid import Grid, fake_quantize, grid_params, group_bounds
from .hessian import (
    BLOCK_COLUMNS,
    SINK_WEIGHT,
    column_sweep_threads,
    inverse_hessian_factor,
    lazy_sweep,
    prepare_hessian,
    solve_stacked,
)
from .runner import BlockStep


def gptq_quantize(
    weight: torch.Tensor, hessian: torch.Tensor, bits: int, group_size: int,
    act_order: bool = False, damp: float = 0.01,
) -> tuple[torch.Tensor, float]:
    """GPTQ of one (rows x cols) float32 weight against Hessian (cols x cols).

    Returns (dequantized weight on the grid, damp used). Every group of `group_size`
    contiguous input columns (shorter last group) of every row holds at most 2**bits values.
    """
    quantized, used, _ = gptq_quantize_grid(weight, hessian, bits, group_size, act_order, damp)
    return quantized, used


def gptq_quantize_grid(
    weight: torch.Tensor, hessian: torch.Tensor, bits: int, group_size: int,
    act_order: bool = False, damp: float = 0.01, owned: bool = False,
) -> tuple[torch.Tensor, float, Grid]:
    """`gptq_quantize`, and the grid the weight's values lie on (contiguous groups, also under
    act-order: its groups are static). `owned`: the float32 weight and Hessian are the caller's
    to lose (overwritten instead of copied: two fewer big buffers on a 70B layer)."""
    weight = weight.float() if owned else weight.clone().float()
    rows, cols = weight.shape
    hessian = prepare_hessian(weight, hessian.float(), copy=not owned)
    bounds = group_bounds(cols, group_size)
    group_of = torch.empty(cols, dtype=torch.long)
    for index, (start, end) in enumerate(bounds):
        group_of[start:end] = index

    # Grids stored per group as (groups x rows) so the sweep reads one contiguous row.
    scales = torch.empty(len(bounds), rows, device=weight.device)
    zeros = torch.empty_like(scales)
    windows: dict[int, int] = {}
    if act_order:
        # Static groups: every group's grid from the original weights, before any update.
        for index, (start, end) in enumerate(bounds):
            scale, zero = grid_params(weight[:, start:end], bits)
            scales[index], zeros[index] = scale[:, 0], zero[:, 0]
        perm = torch.argsort(torch.diag(hessian), descending=True, stable=True)
        weight = weight[:, perm]
        hessian = hessian[perm][:, perm]
    else:
        perm = torch.arange(cols)
        # Dynamic groups: the grid is fitted when the sweep reaches the group's first column.
        windows = {start: end - start for start, end in bounds}
    group_starts = {start: index for index, (start, _) in enumerate(bounds)}
    column_group = group_of[perm].tolist()

    def fit_group(column: int, current: torch.Tensor) -> None:
        scale, zero = grid_params(current.T, bits)
        index = group_starts[column]
        scales[index], zeros[index] = scale[:, 0], zero[:, 0]

    def to_grid(column: int, w: torch.Tensor) -> torch.Tensor:
        index = column_group[column]
        return fake_quantize(w, scales[index], zeros[index], bits)

    hinv, used = inverse_hessian_factor(hessian, damp)
    del hessian  # only its inverse factor is needed from here on
    with column_sweep_threads(weight.device):
        quantized = lazy_sweep(weight, hinv, BLOCK_COLUMNS, windows, fit_group, to_grid)
    if act_order:
        quantized = quantized[:, torch.argsort(perm)]
    return quantized, used, Grid(bits, group_size, scales.T.contiguous(), zeros.T.contiguous())



class GPTQCompressor:
    """Block step of GPTQ: one Hessian per input group, then stacked solves."""

    # Block passes in the model's dtype; statistics and updates in float32 (see runner).
    compute_dtype: torch.dtype | None = None

    def __init__(self, bits: int, group_size: int, act_order: bool, damp: float, sink: float = SINK_WEIGHT) -> None:
        self.bits, self.group_size, self.act_order, self.damp, self.sink = bits, group_size, act_order, damp, sink

    def compress_block(self, step: BlockStep) -> dict[str, float]:
        return solve_stacked(
            step, self.damp,
            lambda stacked, hessian, _slices: gptq_quantize_grid(
                stacked, hessian, self.bits, self.group_size, self.act_order, self.damp, owned=True
            ),
            self.sink,
        )
