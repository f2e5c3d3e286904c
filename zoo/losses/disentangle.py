"""Disentanglement regulariser between factorized sub-codes (FQGAN).

For two branches a, b of quantised latents at the same positions:
``mean_tokens cos(a, b)^2`` (0 when every pair of sub-codes is orthogonal, 1 when parallel);
with G branches the mean over the G(G-1)/2 pairs.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["squared_cosine", "disentangle_loss"]


def squared_cosine(a: torch.Tensor, b: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """a, b with equal shapes (channels on ``channel_dim``) -> scalar mean of cos(a, b)^2 over positions."""
    if a.shape != b.shape:
        raise ValueError(f"branches must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = F.normalize(a.movedim(channel_dim, -1).float(), dim=-1)
    b = F.normalize(b.movedim(channel_dim, -1).float(), dim=-1)
    return (a * b).sum(-1).pow(2).mean()


def disentangle_loss(branches: Sequence[torch.Tensor], channel_dim: int = 1) -> torch.Tensor:
    """Mean of :func:`squared_cosine` over all pairs of ``branches`` (at least two)."""
    if len(branches) < 2:
        raise ValueError(f"disentanglement needs at least two branches, got {len(branches)}")
    pairs = list(itertools.combinations(branches, 2))
    return sum(squared_cosine(a, b, channel_dim) for a, b in pairs) / len(pairs)
