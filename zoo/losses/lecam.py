"""LeCam regulariser (Tseng et al., CVPR 2021) for discriminators trained on little data.

``R = mean(relu(D(real) - ema_fake)^2) + mean(relu(ema_real - D(fake))^2)`` where ``ema_*``
are exponential moving averages of the mean logits, kept as buffers (saved with checkpoints);
they start at zero, as in the TiTok / MaskGIT training code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeCamEMA", "lecam_regularizer"]


class LeCamEMA(nn.Module):
    """Moving averages ``real`` / ``fake`` of the discriminator's mean logits (decay in [0, 1))."""

    def __init__(self, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCam decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.register_buffer("real", torch.zeros(()))
        self.register_buffer("fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_mean: torch.Tensor, fake_mean: torch.Tensor) -> None:
        """Fold in this step's mean logits (scalars; already averaged over processes)."""
        d = self.decay
        self.real.mul_(d).add_(real_mean.float().reshape(()), alpha=1 - d)
        self.fake.mul_(d).add_(fake_mean.float().reshape(()), alpha=1 - d)


def lecam_regularizer(real_logits: torch.Tensor, fake_logits: torch.Tensor, ema: LeCamEMA) -> torch.Tensor:
    """Scalar LeCam penalty (call before ``ema.update`` with this step's logits)."""
    return (F.relu(real_logits.float() - ema.fake).pow(2).mean()
            + F.relu(ema.real - fake_logits.float()).pow(2).mean())
