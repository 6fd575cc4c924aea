"""Magnitude pruning: zero the smallest |W| (per layer, or per group of M for N:M). No data."""

from __future__ import annotations

import torch


def prune_mask_unstructured(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask of weights to zero: exactly floor(numel * sparsity) lowest scores per layer.

    Ties are broken by position (stable sort), so the count is exact and the result repeatable.
    """
    count = int(score.numel() * sparsity)
    mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    if count:
        order = torch.argsort(score.flatten(), stable=True)
        mask[order[:count]] = True
    return mask.view_as(score)


def prune_mask_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Exactly floor(cols * sparsity) lowest scores zeroed in every output row (Wanda's rule)."""
    count = int(score.shape[1] * sparsity)
    mask = torch.zeros_like(score, dtype=torch.bool)
    if count:
        order = torch.argsort(score, dim=1, stable=True)
        mask.scatter_(1, order[:, :count], True)
    return mask


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
