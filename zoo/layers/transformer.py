"""Pre-norm transformer block and stack. x ``[B, N, D]`` -> ``[B, N, D]``."""
from __future__ import annotations

import torch
from torch import nn

from .attention import Attention
from .mlp import build_mlp

__all__ = ["Block", "Transformer"]


class Block(nn.Module):
    """``x + attn(norm1(x)); x + mlp(norm2(x))``.

    mlp: ``"gelu"`` | ``"gelu_tanh"`` | ``"swiglu"``; mlp_ratio sets the hidden width.
    norm_affine=False gives non-affine LayerNorm; bias=False drops every linear bias.
    mlp_hidden: explicit hidden width (overrides mlp_ratio); qk_norm_affine: affine QK-norm
    (None: True); attn_scale: softmax scale (None: 1/sqrt(head_dim)).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, mlp: str = "gelu",
                 bias: bool = True, qk_norm: bool = False, norm_affine: bool = True, norm_eps: float = 1e-5,
                 mlp_hidden: int | None = None, qk_norm_affine: bool | None = None,
                 attn_scale: float | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=norm_affine, bias=bias and norm_affine)
        self.attn = Attention(dim, num_heads, qkv_bias=bias, proj_bias=bias, qk_norm=qk_norm, norm_eps=norm_eps,
                              qk_norm_affine=True if qk_norm_affine is None else qk_norm_affine, scale=attn_scale)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=norm_affine, bias=bias and norm_affine)
        self.mlp = build_mlp(mlp, dim, int(dim * mlp_ratio) if mlp_hidden is None else mlp_hidden, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """``depth`` :class:`Block` s; keyword arguments go to each block."""

    def __init__(self, dim: int, depth: int, num_heads: int, **block_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, num_heads, **block_kwargs) for _ in range(depth))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, mask=mask)
        return x
