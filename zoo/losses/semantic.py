"""Semantic alignment of predicted features to a frozen feature network (teacher).

``info_nce_alignment``: FQGAN's form. Within a batch, prediction i should be closer (cosine)
to teacher feature i than to the others: ``-mean_i log softmax_j(exp(<p_i, t_j>))_i`` with
unit vectors and temperature 1. ``cosine_alignment``: ``mean(1 - cos(p, t))`` per token
(TokenFlow / VQKD-style feature reconstruction). Teacher features never receive gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce_alignment", "cosine_alignment", "semantic_alignment"]


def info_nce_alignment(pred: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """pred, target ``[B, D]`` (one global feature per image, e.g. a CLS token) -> scalar.

    Batch items are each other's negatives, so B >= 2 is needed for a useful signal.
    """
    if pred.dim() != 2 or pred.shape != target.shape:
        raise ValueError(f"expected pred and target [B, D] of equal shape, got {tuple(pred.shape)}, "
                         f"{tuple(target.shape)}")
    p = F.normalize(pred.float(), dim=-1)
    t = F.normalize(target.detach().float(), dim=-1)
    logits = p @ t.t() / temperature
    labels = torch.arange(p.shape[0], device=p.device)
    return F.cross_entropy(logits, labels)


def cosine_alignment(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred, target ``[..., D]`` of equal shape -> scalar ``mean(1 - cos)`` over all leading dims."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return (1.0 - F.cosine_similarity(pred.float(), target.detach().float(), dim=-1)).mean()


def semantic_alignment(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dispatch: ``kind`` is ``"infonce"`` or ``"cosine"``."""
    if kind == "infonce":
        return info_nce_alignment(pred, target)
    if kind == "cosine":
        return cosine_alignment(pred, target)
    raise ValueError(f"unknown semantic alignment {kind!r} (infonce, cosine)")
