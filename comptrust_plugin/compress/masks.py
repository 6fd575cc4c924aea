"""Pruning masks: which weights to zero given an importance score (the lowest scores go), exactly counted.

The contract every pruning method shares (magnitude, Wanda, SparseGPT's mask choice): a mask is
a boolean tensor shaped like the score, True where the weight is zeroed.
- unstructured, per layer: exactly floor(numel x sparsity) lowest scores of the whole layer;
- unstructured, per output row: exactly floor(cols x sparsity) lowest scores in every row;
- N:M: in each run of M consecutive inputs of a row, all but the N highest scores (a trailing
  run shorter than M keeps at most N as well).
Ties are broken by index (the lower index goes first), so a count is always exact and a mask
never depends on sort stability or on the strategy that computed it.
"""

from __future__ import annotations

import torch


def lowest_mask(score: torch.Tensor, count: int) -> torch.Tensor:
    """Mask of exactly `count` lowest entries in each row of `score` (2-D); ties in index order.

    One long row (a whole layer's scores) is selected through the k-th value, in linear time;
    several rows through a stable sort, which is faster there. Both give the same mask.
    """
    mask = torch.zeros_like(score, dtype=torch.bool)
    if count <= 0:
        return mask
    if score.shape[0] > 1:
        order = torch.sort(score, dim=1, stable=True).indices[:, :count]
        return mask.scatter_(1, order, True)
    threshold = torch.kthvalue(score, count, dim=1, keepdim=True).values
    below = score < threshold
    ties = score == threshold
    needed = count - below.sum(dim=1, keepdim=True)
    take_ties = ties & (ties.cumsum(dim=1) <= needed)
    return below | take_ties


def prune_mask_unstructured(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask of weights to zero: exactly floor(numel * sparsity) lowest scores per layer."""
    count = int(score.numel() * sparsity)
    return lowest_mask(score.reshape(1, -1), count).view_as(score)


def prune_mask_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Exactly floor(cols * sparsity) lowest scores zeroed in every output row (Wanda's rule)."""
    return lowest_mask(score, int(score.shape[1] * sparsity))


def prune_mask_n_m(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M: in each run of M consecutive input weights of a row, keep the N highest scores.

    A trailing run shorter than M (width not divisible by M) keeps at most N as well.
    """
    rows, cols = score.shape
    mask = torch.zeros_like(score, dtype=torch.bool)
    for start in range(0, cols, m):
        block = score[:, start : start + m]
        drop = block.shape[1] - n
        if drop <= 0:
            continue
        order = torch.argsort(block, dim=1, stable=True)
        mask[:, start : start + m].scatter_(1, order[:, :drop], True)
    return mask


def prune_mask(
    score: torch.Tensor, sparsity: float | None, n_m: tuple[int, int] | None, per_row: bool
) -> torch.Tensor:
    """The mask of a pruning spec: N:M when `n_m` is given, else unstructured `sparsity`
    counted per output row (`per_row`) or over the whole layer."""
    if n_m is not None:
        return prune_mask_n_m(score, *n_m)
    assert sparsity is not None
    return prune_mask_per_row(score, sparsity) if per_row else prune_mask_unstructured(score, sparsity)
