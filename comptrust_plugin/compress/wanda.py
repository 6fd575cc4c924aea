"""Wanda: prune by |W| · ‖X_j‖ (weight magnitude times input-feature activation norm); no update.

As in the reference (locuslab/wanda): the statistic per input feature j is the mean over
calibration tokens of x_j², the score is |W_ij| · sqrt(that), and unstructured pruning removes
exactly floor(cols x sparsity) lowest scores in *every output row* (Wanda's per-output
comparison group); N:M keeps the N highest scores of every M consecutive inputs of a row.
"""

from __future__ import annotations

import torch

from .magnitude import prune_mask_n_m
from .runner import BlockStep, InputGroup


def lowest_mask(score: torch.Tensor, count: int) -> torch.Tensor:
    """Mask of exactly `count` lowest entries in each row of `score` (2-D); ties in index order.

    Same contract as magnitude's kthvalue-based mask, through a stable sort, which is an
    order of magnitude faster on CPU for the widths of real layers.
    """
    mask = torch.zeros_like(score, dtype=torch.bool)
    if count > 0:
        order = torch.sort(score, dim=1, stable=True).indices[:, :count]
        mask.scatter_(1, order, True)
    return mask


def wanda_scores(weight: torch.Tensor, feature_sq_mean: torch.Tensor) -> torch.Tensor:
    return weight.float().abs() * torch.sqrt(feature_sq_mean).unsqueeze(0)


def wanda_mask(
    weight: torch.Tensor, feature_sq_mean: torch.Tensor, sparsity: float | None, n_m: tuple[int, int] | None
) -> torch.Tensor:
    """Boolean mask of the weights Wanda zeroes (see module docstring for the exact counts)."""
    score = wanda_scores(weight, feature_sq_mean)
    if n_m is not None:
        return prune_mask_n_m(score, *n_m)
    assert sparsity is not None
    return lowest_mask(score, int(score.shape[1] * sparsity))


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
