"""Multi-head self-attention on ``scaled_dot_product_attention``.

Weights are stored packed (``qkv``: ``[3*D, D]`` in q, k, v order, and ``proj``); state dicts
with PyTorch ``nn.MultiheadAttention`` names (``in_proj_weight``, ``out_proj``) or separate
``q``/``k``/``v`` (or ``q_proj``/``k_proj``/``v_proj``) projections load too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear

__all__ = ["Attention", "safe_bool_mask", "is_block_mask"]

_QKV_ALIASES = (("q", "k", "v"), ("q_proj", "k_proj", "v_proj"), ("to_q", "to_k", "to_v"))


def safe_bool_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Make a boolean mask (True = attend) safe for SDPA.

    Rows with no True entry would give NaN; they are opened to every key and the returned
    ``empty_rows`` (``[..., N, 1]``, or None when there are none) says which outputs to zero.
    """
    has_key = mask.any(dim=-1, keepdim=True)
    empty = ~has_key
    return mask | empty, empty


def is_block_mask(mask) -> bool:
    """True for a flex-attention ``BlockMask`` (``torch.nn.attention.flex_attention``)."""
    return type(mask).__name__ == "BlockMask" and hasattr(mask, "mask_mod")


_FLEX_FNS: dict[str, object] = {}


def _flex_attention(q, k, v, block_mask, scale):
    """flex_attention, compiled once per device type on GPUs (eager elsewhere)."""
    kind = q.device.type
    if kind not in _FLEX_FNS:
        from torch.nn.attention.flex_attention import flex_attention

        _FLEX_FNS[kind] = torch.compile(flex_attention, dynamic=False) if kind == "cuda" else flex_attention
    return _FLEX_FNS[kind](q, k, v, block_mask=block_mask, scale=scale)


class Attention(nn.Module):
    """Self-attention. x ``[B, N, D]`` -> ``[B, N, D]``.

    dim: model width D; num_heads: heads (head_dim = D / num_heads).
    qk_norm: LayerNorm over head_dim on queries and keys (``q_norm``/``k_norm``).
    scale: softmax scale (None: ``1/sqrt(head_dim)``; e.g. muP's ``8/head_dim``).
    mask (forward): bool ``[N, N]``/``[B, 1|H, N, N]`` with True = may attend, or an additive
        float mask, or a flex-attention ``BlockMask`` (then ``flex_attention`` runs instead of SDPA).
        Rows that may attend to nothing return zeros, never NaN.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 qk_norm: bool = False, qk_norm_affine: bool = True, norm_eps: float = 1e-6,
                 scale: float | None = None):
        super().__init__()
        self.scale = scale
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = Linear(dim, dim, bias=proj_bias)
        if qk_norm:
            self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps, elementwise_affine=qk_norm_affine)
            self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps, elementwise_affine=qk_norm_affine)
        else:
            self.q_norm = self.k_norm = nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        empty = None
        if is_block_mask(mask):
            out = _flex_attention(q, k, v, mask, self.scale)
            return self.proj(out.transpose(1, 2).reshape(b, n, d))
        if mask is not None and mask.dtype == torch.bool:
            mask, empty = safe_bool_mask(mask)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        if empty is not None:
            out = out.masked_fill(empty, 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._fuse_foreign_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _fuse_foreign_keys(sd, prefix: str) -> None:
        for kind in ("weight", "bias"):
            if f"{prefix}in_proj_{kind}" in sd:
                sd[f"{prefix}qkv.{kind}"] = sd.pop(f"{prefix}in_proj_{kind}")
            if f"{prefix}out_proj.{kind}" in sd:
                sd[f"{prefix}proj.{kind}"] = sd.pop(f"{prefix}out_proj.{kind}")
            for names in _QKV_ALIASES:
                keys = [f"{prefix}{n}.{kind}" for n in names]
                if all(k in sd for k in keys):
                    sd[f"{prefix}qkv.{kind}"] = torch.cat([sd.pop(k) for k in keys], dim=0)
