"""Magnitude pruning: zero the smallest |W| (per layer, or per group of M for N:M). No data."""

from __future__ import annotations

import torch


def _lowest_mask(score: torch.Tensor, count: int) -> torch.Tensor:
    """Mask of exactly `count` lowest entries in each row of `score` (2-D).

    Uses the k-th value as threshold; entries tied with it are taken in index order, so
    the count is exact and the result does not depend on sort stability.
    """
    mask = torch.zeros_like(score, dtype=torch.bool)
    if count <= 0:
        return mask
    threshold = torch.kthvalue(score, count, dim=1, keepdim=True).values
    below = score < threshold
    ties = score == threshold
    needed = count - below.sum(dim=1, keepdim=True)
    take_ties = ties & (ties.cumsum(dim=1) <= needed)
    return below | take_ties


def prune_mask_unstructured(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask of weights to zero: exactly floor(numel * sparsity) lowest scores per layer."""
    count = int(score.numel() * sparsity)
    return _lowest_mask(score.reshape(1, -1), count).view_as(score)


def prune_mask_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Exactly floor(cols * sparsity) lowest scores zeroed in every output row (Wanda's rule)."""
    return _lowest_mask(score, int(score.shape[1] * sparsity))


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


def magnitude_prune_(linear: torch.nn.Linear, sparsity: float | None, n_m: tuple[int, int] | None) -> None:
    weight = linear.weight.data
    score = weight.float().abs()
    if n_m is not None:
        mask = prune_mask_n_m(score, *n_m)
    else:
        assert sparsity is not None
        mask = prune_mask_unstructured(score, sparsity)
    weight[mask] = 0
