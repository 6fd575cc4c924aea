"""Magnitude pruning: zero the smallest |W| (per layer, or per group of M for N:M). No data.

Its importance metric only; the masks and their exact counts are masks.py's.
"""

from __future__ import annotations

import torch

from .masks import prune_mask


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    """|W|, in float32: a weight's importance to magnitude pruning."""
    return weight.float().abs()


def magnitude_prune_(linear: torch.nn.Linear, sparsity: float | None, n_m: tuple[int, int] | None) -> None:
    """Prune `linear` in place: unstructured counts are per layer (the references' rule)."""
    weight = linear.weight.data
    weight[prune_mask(magnitude_scores(weight), sparsity, n_m, per_row=False)] = 0
