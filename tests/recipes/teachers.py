"""Frozen stand-in feature networks for the 2-step recipe checks (not a test file).

The real teachers (DINOv2 for FlexTok's REPA, CLIP for FQGAN / TokenFlow) need weights that are not
available offline; these small randomly initialised conv nets have the same interface, so the
recipe checks exercise the alignment code paths. Never for real training.
"""
from __future__ import annotations

import torch
from torch import nn


class _Features(nn.Module):
    def __init__(self, dim: int, stride: int):
        super().__init__()
        torch.manual_seed(1234)
        self.net = nn.Sequential(nn.Conv2d(3, 16, stride, stride), nn.GELU(), nn.Conv2d(16, dim, 1))
        self.requires_grad_(False).eval()

    def forward(self, x):  # [B, 3, H, W] in [0, 1] -> [B, dim, H/stride, W/stride]
        return self.net(x * 2 - 1)


def repa_teacher(model, dim: int = 32, stride: int = 16) -> None:
    """``model.setup`` hook: attach a frozen stand-in REPA encoder to a FlexTok."""
    model.set_repa_encoder(_Features(dim, stride))
