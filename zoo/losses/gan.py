"""Adversarial objectives: hinge, least-squares (LSGAN), non-saturating; feature matching.

``clamped_hinge`` is the hinge of HiFi-GAN-style vocoders (Vocos, WavTokenizer): the
discriminator term is the hinge's, the generator term ``mean(relu(1 - D(G)))``.

Logits may be one tensor or a list of tensors (multi-scale / multi-period discriminators);
list entries are summed, each reduced by its mean. Returns scalar tensors.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["GAN_LOSSES", "discriminator_loss", "generator_loss", "feature_matching_loss"]

GAN_LOSSES = ("hinge", "lsgan", "non_saturating", "clamped_hinge")
_ALIASES = {"vanilla": "non_saturating", "bce": "non_saturating", "ls": "lsgan", "mse": "lsgan"}

Logits = torch.Tensor | Sequence[torch.Tensor]


def _name(loss: str) -> str:
    loss = _ALIASES.get(loss, loss)
    if loss not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {loss!r}; choose one of {GAN_LOSSES} (aliases {sorted(_ALIASES)})")
    return loss


def _as_list(logits: Logits) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        return [logits]
    items = list(logits)
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise TypeError("logits must be a tensor or a non-empty sequence of tensors")
    return items


def discriminator_loss(loss: str, real: Logits, fake: Logits) -> torch.Tensor:
    """Discriminator objective on real and (detached) fake logits."""
    loss = _name(loss)
    total = 0.0
    for r, f in zip(_as_list(real), _as_list(fake), strict=True):
        r, f = r.float(), f.float()
        if loss in ("hinge", "clamped_hinge"):
            total = total + F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()
        elif loss == "lsgan":
            total = total + (r - 1.0).pow(2).mean() + f.pow(2).mean()
        else:
            total = total + F.softplus(-r).mean() + F.softplus(f).mean()
    return total


def generator_loss(loss: str, fake: Logits) -> torch.Tensor:
    """Generator objective on the fake logits (gradients flow into the generator)."""
    loss = _name(loss)
    total = 0.0
    for f in _as_list(fake):
        f = f.float()
        if loss == "hinge":
            total = total - f.mean()
        elif loss == "clamped_hinge":
            total = total + F.relu(1.0 - f).mean()
        elif loss == "lsgan":
            total = total + (f - 1.0).pow(2).mean()
        else:
            total = total + F.softplus(-f).mean()
    return total


def feature_matching_loss(real_features: Sequence[torch.Tensor], fake_features: Sequence[torch.Tensor],
                          ) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between fake and (detached) real features.

    Features may be nested one level (one list per sub-discriminator)."""
    real, fake = _flatten(real_features), _flatten(fake_features)
    if len(real) != len(fake):
        raise ValueError(f"feature lists differ in length: {len(real)} real vs {len(fake)} fake")
    if not real:
        raise ValueError("feature matching needs at least one feature map")
    return sum((f.float() - r.detach().float()).abs().mean() for r, f in zip(real, fake))


def _flatten(items) -> list[torch.Tensor]:
    out = []
    for t in items:
        if isinstance(t, torch.Tensor):
            out.append(t)
        else:
            out.extend(_flatten(t))
    return out
