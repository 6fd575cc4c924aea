"""SparseGPT: prune with the inverse Hessian choosing the mask and compensating the error.

Follows the reference (IST-DASLab/sparsegpt): columns are processed in blocks of 128; at the
start of each block the mask for that block is chosen by the saliency w² / [H⁻¹]_jj² (the
*adaptive* mask selection of the paper), then each pruned weight's error is spread over the
block's remaining columns and, at the block's end, over all later columns.

Sparsity contract (documented, tested): unstructured sparsity is exact *per column block* of
each Linear — floor(rows x block_columns x sparsity) weights per 128-column block (the last
block may be narrower), which is also how the reference selects; N:M keeps at most N of
every M consecutive inputs in each row, choosing the M − N to prune when the sweep reaches
the run's first column (the reference's rule).

Linears sharing an input (q/k/v, gate/up) share one Hessian and are solved stacked, but
each keeps its own mask selection (per Linear, as in the reference). The Hessian, its inverse
factor and the column sweep are hessian.py's (shared with GPTQ); the masks' counting rules
are masks.py's; this module holds what makes it SparseGPT: the saliency and when it is read.
"""

from __future__ import annotations

import torch

from .hessian import (
    BLOCK_COLUMNS,
    SINK_WEIGHT,
    column_sweep_threads,
    inverse_hessian_factor,
    lazy_sweep,
    prepare_hessian,
    solve_stacked,
)
from .masks import prune_mask_n_m, prune_mask_unstructured
from .runner import BlockStep


def sparsegpt_prune(
    weight: torch.Tensor, hessian: torch.Tensor, sparsity: float | None = None,
    n_m: tuple[int, int] | None = None, damp: float = 0.01,
    row_slices: list[tuple[int, int]] | None = None, owned: bool = False,
) -> tuple[torch.Tensor, float]:
    """SparseGPT of one (rows x cols) float32 weight; returns (pruned weight, damp used).

    `row_slices` marks the Linears stacked in `weight` so each gets its own unstructured mask.
    `owned`: the float32 weight and Hessian are the caller's to lose (overwritten, not copied).
    """
    weight = weight.float() if owned else weight.clone().float()
    rows, cols = weight.shape
    hessian = prepare_hessian(weight, hessian.float(), copy=not owned)
    hinv, used = inverse_hessian_factor(hessian, damp)
    del hessian  # only its inverse factor is needed from here on
    slices = row_slices or [(0, rows)]
    hinv_diag = torch.diag(hinv)
    # Pruned positions, transposed (cols x rows) like the sweep's weight.
    mask = torch.zeros(cols, rows, dtype=torch.bool, device=weight.device)
    if n_m is None:
        assert sparsity is not None
        # The whole block's mask is chosen on reaching its first column.
        width_block = BLOCK_COLUMNS
        windows = {start: min(width_block, cols - start) for start in range(0, cols, width_block)}
    else:
        keep, run = n_m
        # An N:M run must never straddle two column blocks: use a multiple of M near 128.
        width_block = max(run, BLOCK_COLUMNS // run * run)
        windows = {start: min(run, cols - start) for start in range(0, cols, run)}

    def choose(column: int, current: torch.Tensor) -> None:
        width = current.shape[0]
        saliency = current.T**2 / hinv_diag[column : column + width].unsqueeze(0) ** 2
        if n_m is None:
            assert sparsity is not None
            for start, end in slices:  # the whole window of each Linear, as one comparison group
                mask[column : column + width, start:end] = prune_mask_unstructured(saliency[start:end], sparsity).T
        else:  # the window is one run of at most M columns
            mask[column : column + width] = prune_mask_n_m(saliency, keep, run).T

    def prune(column: int, w: torch.Tensor) -> torch.Tensor:
        return torch.where(mask[column], torch.zeros_like(w), w)

    with column_sweep_threads(weight.device):
        out = lazy_sweep(weight, hinv, width_block, windows, choose, prune)
    return out, used


class SparseGPTCompressor:
    # Block passes in the model's dtype; statistics and updates in float32 (see runner).
    compute_dtype: torch.dtype | None = None

    def __init__(
        self, sparsity: float | None, n_m: tuple[int, int] | None, damp: float, sink: float = SINK_WEIGHT
    ) -> None:
        self.sparsity, self.n_m, self.damp, self.sink = sparsity, n_m, damp, sink

    def compress_block(self, step: BlockStep) -> dict[str, float]:
        return solve_stacked(
            step, self.damp,
            lambda stacked, hessian, slices: (
                *sparsegpt_prune(stacked, hessian, self.sparsity, self.n_m, self.damp, slices, owned=True), None
            ),
            self.sink,
        )
