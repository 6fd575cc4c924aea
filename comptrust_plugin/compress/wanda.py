"""Wanda: prune by |W| · ‖X_j‖ (weight magnitude times input-feature activation norm); no update.

As in the reference (locuslab/wanda): the statistic per input feature j is the mean over
calibration tokens of x_j², the score is |W_ij| · sqrt(that), and unstructured pruning removes
exactly floor(cols x sparsity) lowest scores in *every output row* (Wanda's per-output
comparison group); N:M keeps the N highest scores of every M consecutive inputs of a row.
This module holds the metric and its statistics; the masks themselves are masks.py's.
"""

from __future__ import annotations

import torch

from .masks import prune_mask
from .runner import BlockStep, InputGroup


def wanda_scores(weight: torch.Tensor, feature_sq_mean: torch.Tensor) -> torch.Tensor:
    """|W_ij| · sqrt(mean x_j²), in float32: a weight's importance to Wanda."""
    return weight.float().abs() * torch.sqrt(feature_sq_mean).unsqueeze(0)


def wanda_mask(
    weight: torch.Tensor, feature_sq_mean: torch.Tensor, sparsity: float | None, n_m: tuple[int, int] | None
) -> torch.Tensor:
    """Boolean mask of the weights Wanda zeroes (see module docstring for the exact counts)."""
    return prune_mask(wanda_scores(weight, feature_sq_mean), sparsity, n_m, per_row=True)


class WandaCompressor:
    # Block passes in the model's dtype; statistics and updates in float32 (see runner).
    compute_dtype: torch.dtype | None = None

    def __init__(self, sparsity: float | None, n_m: tuple[int, int] | None) -> None:
        self.sparsity, self.n_m = sparsity, n_m

    def compress_block(self, step: BlockStep) -> dict[str, float]:
        sums: dict[InputGroup, torch.Tensor] = {}
        tokens: dict[InputGroup, int] = {}

        def observe(group: InputGroup, x: torch.Tensor) -> None:
            squares = (x * x).sum(dim=0)
            sums[group] = sums[group] + squares if group in sums else squares
            tokens[group] = tokens.get(group, 0) + x.shape[0]

        step.observe_inputs(observe)
        for group in step.input_groups:
            mean = sums[group] / tokens[group]
            for name in group.names:
                weight = step.linears[name].weight.data
                weight[wanda_mask(weight, mean, self.sparsity, self.n_m)] = 0
        return {}
