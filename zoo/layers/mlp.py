"""Feed-forward blocks: GELU MLP and SwiGLU. x ``[..., D]`` -> ``[..., D]``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear

__all__ = ["Mlp", "SwiGLU", "build_mlp"]


class Mlp(nn.Module):
    """``fc2(act(fc1(x)))`` with GELU (exact erf form unless ``approximate='tanh'``)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True, approximate: str = "none"):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim, bias=bias)
        self.fc2 = Linear(hidden_dim, dim, bias=bias)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class SwiGLU(nn.Module):
    """``fc2(silu(gate(x)) * up(x))``; ``fc1`` packs [gate; up] as ``[2*hidden, D]``."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True):
        super().__init__()
        self.fc1 = Linear(dim, 2 * hidden_dim, bias=bias)
        self.fc2 = Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(gate) * up)


def build_mlp(kind: str, dim: int, hidden_dim: int, bias: bool = True) -> nn.Module:
    """``kind``: ``"gelu"``, ``"gelu_tanh"`` or ``"swiglu"``."""
    if kind == "gelu":
        return Mlp(dim, hidden_dim, bias=bias)
    if kind == "gelu_tanh":
        return Mlp(dim, hidden_dim, bias=bias, approximate="tanh")
    if kind == "swiglu":
        return SwiGLU(dim, hidden_dim, bias=bias)
    raise ValueError(f"unknown mlp kind {kind!r} (gelu, gelu_tanh, swiglu)")
