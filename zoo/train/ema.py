"""Exponential moving average of a model's weights (floating tensors; buffers are copied).

``shadow = d * shadow + (1 - d) * param`` every ``every`` optimizer steps from ``start_step`` on
(before that the shadow tracks the weights exactly). ``d = decay``, or with ``warmup`` the
schedule of ``diffusers.EMAModel`` (used by TiTok): ``d = min(decay, (1 + n) / (10 + n))`` with
``n + 1`` the optimizer steps since ``start_step`` (the first update copies).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA(nn.Module):
    """Holds ``shadow``, a frozen copy of ``model`` kept on the model's device."""

    def __init__(self, model: nn.Module, decay: float = 0.999, start_step: int = 0, every: int = 1,
                 warmup: bool = False):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay, self.start_step, self.every = float(decay), int(start_step), max(1, int(every))
        self.warmup = bool(warmup)
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Call after the optimizer step that produced optimizer step number ``step`` (1-based)."""
        if step % self.every:
            return
        n = step - self.start_step - 1
        if self.warmup:  # diffusers: the first update copies, then (1 + n) / (10 + n) capped at decay
            decay = 0.0 if n <= 0 else min(self.decay, (1 + n) / (10 + n))
        else:
            decay = 0.0 if n < 0 else self.decay
        src = dict(model.state_dict(keep_vars=False))
        params = []
        targets = []
        for name, t in self.shadow.state_dict(keep_vars=True).items():
            s = src[name]
            if t.is_floating_point():
                targets.append(t)
                params.append(s.to(t.dtype))
            else:
                t.copy_(s)
        if targets:
            if decay == 0.0:
                torch._foreach_copy_(targets, params)
            else:
                torch._foreach_lerp_(targets, params, 1.0 - decay)
