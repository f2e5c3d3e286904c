"""FlexTok encoder: VAE latents -> register tokens -> FSQ inputs (the tokenizer itself is in flextok.py).

Sequence per image: ``[patch tokens (row-major grid), R registers]`` with the *causal-last*
(prefix-LM) mask: every token sees all patch tokens; register i also sees registers <= i.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..layers.pos_embed import sincos_2d
from ..layers.transformer import Transformer

__all__ = ["FlexTokEncoder", "causal_last_mask", "causal_last_block_mask", "patchify_latents", "grid_pos_embed"]


def causal_last_mask(num_prefix: int, num_causal: int, device=None) -> torch.Tensor:
    """bool ``[N, N]`` (True = may attend), ``N = num_prefix + num_causal``: key k is visible to
    query q when k is a prefix token or ``k <= q``."""
    n = num_prefix + num_causal
    idx = torch.arange(n, device=device)
    return (idx[None, :] < num_prefix) | (idx[None, :] <= idx[:, None])


def causal_last_block_mask(num_prefix: int, num_causal: int, device=None):
    """The :func:`causal_last_mask` as a flex-attention ``BlockMask``."""
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx < num_prefix) | (kv_idx <= q_idx)

    n = num_prefix + num_causal
    return create_block_mask(mask_mod, None, None, n, n, device=str(device or "cpu"))


def patchify_latents(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)*(W/p), p*p*C]`` (patch vector order: row, col, channel)."""
    h, w = x.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"latent size {h}x{w} is not a multiple of the patch size {patch_size}")
    return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)


def grid_pos_embed(table: torch.Tensor, grid: tuple[int, int], scaling: str = "absolute") -> torch.Tensor:
    """table ``[Hmax, Wmax, D]`` -> ``[gh*gw, D]``: cropped (``"absolute"``) or bilinearly resized
    with aligned corners (``"interpolate"``)."""
    gh, gw = grid
    if scaling == "absolute":
        if gh > table.shape[0] or gw > table.shape[1]:
            raise ValueError(f"patch grid {gh}x{gw} exceeds the position table {tuple(table.shape[:2])}; "
                             "use a smaller image or posemb scaling 'interpolate'")
        out = table[:gh, :gw]
    elif scaling == "interpolate":
        out = F.interpolate(table.permute(2, 0, 1)[None], size=(gh, gw), mode="bilinear",
                            align_corners=True)[0].permute(1, 2, 0)
    else:
        raise ValueError(f"unknown position scaling {scaling!r} (absolute, interpolate)")
    return out.reshape(gh * gw, -1)


class FlexTokEncoder(nn.Module):
    """latents ``[B, C, h, w]`` -> ``[B, R, token_dim]`` (pre-quantization register values).

    dim / depth / head_dim / mlp_hidden: transformer shape (SwiGLU, QK-norm, non-affine
    LayerNorms, no linear biases); pos_grid: size of the fixed sin-cos position table (in
    patches); attn_scale: softmax scale (FlexTok: muP ``8 / head_dim``); head_norm: LayerNorm
    before the output projection. ``attn_backend`` (runtime attribute, not config): ``"sdpa"``
    (materialised bool mask) or ``"flex"`` (flex-attention block mask; compiled on CUDA).
    """

    attn_backend: str = "sdpa"

    def __init__(self, latent_channels: int = 16, dim: int = 768, depth: int = 12, head_dim: int = 64,
                 mlp_hidden: int | None = None, num_registers: int = 256, token_dim: int = 6, patch_size: int = 2,
                 pos_grid: tuple[int, int] = (16, 16), pos_scaling: str = "absolute", attn_scale: float | None = None,
                 norm_eps: float = 1e-5, bias: bool = False, head_norm: bool = True):
        super().__init__()
        self.patch_size, self.num_registers, self.pos_scaling = patch_size, num_registers, pos_scaling
        mlp_hidden = mlp_hidden or int(2 * 4 * dim / 3)
        self.patch_embed = nn.Linear(latent_channels * patch_size ** 2, dim)
        self.register_buffer("pos_embed", sincos_2d(pos_grid[0], pos_grid[1], dim).view(*pos_grid, dim))
        self.registers = nn.Parameter(torch.randn(num_registers, dim) * 0.02)
        self.trunk = Transformer(dim, depth, dim // head_dim, mlp="swiglu", bias=bias, qk_norm=True, norm_affine=False,
                                 norm_eps=norm_eps, mlp_hidden=mlp_hidden, qk_norm_affine=False, attn_scale=attn_scale)
        self.head_norm = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False) if head_norm else nn.Identity()
        self.head = nn.Linear(dim, token_dim)

    def forward(self, latents: torch.Tensor, return_hidden: bool = False):
        b, _, h, w = latents.shape
        grid = (h // self.patch_size, w // self.patch_size)
        patches = self.patch_embed(patchify_latents(latents, self.patch_size))
        patches = patches + grid_pos_embed(self.pos_embed, grid, self.pos_scaling).to(patches.dtype)
        regs = self.registers.to(patches.dtype).expand(b, -1, -1)
        x = torch.cat([patches, regs], dim=1)
        if self.attn_backend == "flex":
            mask = causal_last_block_mask(patches.shape[1], self.num_registers, device=x.device)
        elif self.attn_backend == "sdpa":
            mask = causal_last_mask(patches.shape[1], self.num_registers, device=x.device)
        else:
            raise ValueError(f"unknown attention backend {self.attn_backend!r} (sdpa, flex)")
        x = self.trunk(x, mask=mask)[:, patches.shape[1]:]
        z = self.head(self.head_norm(x))
        return (z, x) if return_hidden else z
