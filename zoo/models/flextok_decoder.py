"""FlexTok decoder: a rectified-flow transformer predicting the velocity of noised VAE latents
conditioned on the (nested-dropout truncated) register tokens.

Sequence per image: ``[patch tokens of x_t (row-major), R register tokens]`` with full
attention; adaLN-zero modulation from the timestep embedding, separate for patches and
registers (``adaln_segments = 2``). Register conditioning: ``Linear(codes) + position`` ->
positions ``>= k`` replaced by the learned mask token -> (unconditional rows) every position
replaced by the null condition.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.adaln import AdaLNBlock, AdaLNHead
from ..layers.flow import TimestepEmbedder
from ..layers.patch_embed import unpatchify_2d
from ..layers.pos_embed import sincos_2d
from .flextok_encoder import grid_pos_embed, patchify_latents

__all__ = ["FlexTokDecoder", "FLEXTOK_ADALN_ORDER"]

#: FlexTok's layout of the six block modulation chunks (differs from DiT's)
FLEXTOK_ADALN_ORDER = ("gate_msa", "gate_mlp", "shift_msa", "scale_msa", "shift_mlp", "scale_mlp")


class FlexTokDecoder(nn.Module):
    """``(x_t [B, C, h, w], t [B], codes [B, R, token_dim])`` -> velocity ``[B, C, h, w]``.

    adaln_segments: 1 (one modulation for all tokens) or 2 (patches / registers).
    null_cond: ``"learned"`` (a learned vector) or ``"zero"``; null_single_token: the
    unconditional input is a single null token instead of R copies (done by masking keys).
    register_pos: learned position embedding of the registers.
    time_*: timestep embedding (see ``zoo.layers.flow.timestep_embedding``).
    """

    def __init__(self, latent_channels: int = 16, dim: int = 768, depth: int = 12, head_dim: int = 64,
                 mlp_hidden: int | None = None, num_registers: int = 256, token_dim: int = 6, patch_size: int = 2,
                 pos_grid: tuple[int, int] = (16, 16), pos_scaling: str = "absolute", attn_scale: float | None = None,
                 norm_eps: float = 1e-5, bias: bool = False, adaln_segments: int = 2, null_cond: str = "learned",
                 null_single_token: bool = False, register_pos: bool = True, time_freq_dim: int = 256,
                 time_max_period: float = 256.0, time_scale: float = 1000.0):
        super().__init__()
        if adaln_segments not in (1, 2):
            raise ValueError(f"adaln_segments must be 1 or 2, got {adaln_segments}")
        if null_cond not in ("learned", "zero"):
            raise ValueError(f"null_cond must be 'learned' or 'zero', got {null_cond!r}")
        self.patch_size, self.num_registers, self.pos_scaling = patch_size, num_registers, pos_scaling
        self.latent_channels, self.adaln_segments = latent_channels, adaln_segments
        self.null_single_token = null_single_token
        mlp_hidden = mlp_hidden or int(2 * 4 * dim / 3)
        self.token_proj = nn.Linear(token_dim, dim)
        self.register_pos = nn.Parameter(torch.randn(num_registers, dim) * 0.02) if register_pos else None
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.null_cond = nn.Parameter(torch.randn(dim) * 0.02) if null_cond == "learned" else None
        self.patch_embed = nn.Linear(latent_channels * patch_size ** 2, dim)
        self.register_buffer("pos_embed", sincos_2d(pos_grid[0], pos_grid[1], dim).view(*pos_grid, dim))
        self.time_embed = TimestepEmbedder(dim, time_freq_dim, time_max_period, time_scale)
        self.blocks = nn.ModuleList(
            AdaLNBlock(dim, dim // head_dim, mlp_hidden, segments=adaln_segments, order=FLEXTOK_ADALN_ORDER,
                       bias=bias, qk_norm=True, norm_eps=norm_eps, attn_scale=attn_scale) for _ in range(depth))
        self.final = AdaLNHead(dim, latent_channels * patch_size ** 2, norm_eps=norm_eps)

    def condition(self, codes: torch.Tensor, keep_k: torch.Tensor | None = None,
                  uncond: torch.Tensor | None = None) -> torch.Tensor:
        """codes ``[B, R, token_dim]`` -> register inputs ``[B, R, D]``.

        keep_k: LongTensor ``[B]`` (positions >= k get the mask token) or None (keep all);
        uncond: bool ``[B]`` rows replaced by the null condition, or None.
        """
        regs = self.token_proj(codes)
        if self.register_pos is not None:
            regs = regs + self.register_pos.to(regs.dtype)
        pos = torch.arange(regs.shape[1], device=regs.device)
        if keep_k is not None:
            drop = pos[None, :] >= keep_k.to(regs.device)[:, None]
            regs = torch.where(drop[..., None], self.mask_token.to(regs.dtype), regs)
        if uncond is not None:
            null = self.null_cond.to(regs.dtype) if self.null_cond is not None else regs.new_zeros(regs.shape[-1])
            regs = torch.where(uncond.to(regs.device)[:, None, None], null, regs)
        return regs

    def collapse_registers(self, regs: torch.Tensor, n_p: int, keep_k: torch.Tensor | None,
                           uncond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inference shortcut: the registers past each row's k (mask tokens) and all registers of
        unconditional rows (null condition) are copies of one vector, and with full attention
        copies stay copies through every block. ``m`` copies of a key contribute ``m`` times
        one copy's ``exp(score) v``, so the block can hold ``c`` of them instead, each key carrying
        the additive score bias ``log(m / c)``: the same attention, up to float rounding.

        regs ``[B, R, D]`` -> (the first L registers ``[B, L, D]``, additive key bias
        ``[B, 1, 1, n_p + L]``), L = the largest count of distinct registers plus one; unchanged
        (bias None) when that saves nothing, or when keep_k / uncond live on an accelerator (L is
        needed on the host). Only the patch outputs are read afterwards.
        """
        b, r = regs.shape[:2]
        on_host = [v for v in (keep_k, uncond) if v is not None]
        if any(v.device.type != "cpu" for v in on_host):  # the sequence length is needed on the host:
            return regs, None                               # never sync an accelerator for it
        distinct = torch.full((b,), r, dtype=torch.long)
        if keep_k is not None:
            distinct = torch.minimum(distinct, keep_k)
        copies = r - distinct  # true number of identical tail registers per row
        if uncond is not None:
            distinct = torch.where(uncond, 0, distinct)
            copies = torch.where(uncond, 1 if self.null_single_token else r, copies)
        length = int((distinct + (copies > 0).long()).max())
        if length >= r and not self.null_single_token:
            return regs, None
        pos = torch.arange(length)
        held = (length - distinct).clamp_min(1)  # copies kept in the first L rows
        tail_bias = torch.log(copies.clamp_min(1).float() / held.float())
        bias = torch.where(pos[None, :] >= distinct[:, None], tail_bias[:, None], 0.0)
        bias = torch.cat([bias.new_zeros(b, n_p), bias], dim=1).to(regs.device, regs.dtype)
        return regs[:, :length], bias[:, None, None, :]

    def time_conditioning(self, t: torch.Tensor) -> dict[str, object]:
        """What the timestep ``t`` ``[B]`` decides: its embedding and every block's (and the head's)
        adaLN modulation; ``forward(..., time_cond=...)`` reuses it (a sampler's guidance passes
        share their timestep)."""
        temb = self.time_embed(t)
        spans = (0,) * self.adaln_segments if self.adaln_segments > 1 else None
        return {"t": t, "temb": temb, "blocks": [blk.mod(temb, spans) for blk in self.blocks],
                "final": self.final.mod(temb)}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, codes: torch.Tensor, keep_k: torch.Tensor | None = None,
                uncond: torch.Tensor | None = None, hidden_layer: int | None = None,
                time_cond: dict | None = None):
        """Velocity ``[B, C, h, w]``; with ``hidden_layer`` also the patch tokens ``[B, h*w/p^2, D]``
        after that block (0-based), e.g. for REPA. time_cond: :meth:`time_conditioning` of this
        ``t`` (used only in inference with span modulation)."""
        b, _, h, w = x_t.shape
        grid = (h // self.patch_size, w // self.patch_size)
        patches = self.patch_embed(patchify_latents(x_t, self.patch_size))
        patches = patches + grid_pos_embed(self.pos_embed, grid, self.pos_scaling).to(patches.dtype)
        n_p = patches.shape[1]
        regs = self.condition(codes.to(patches.dtype), keep_k, uncond)
        mask = None
        if not torch.is_grad_enabled() and hidden_layer is None:
            regs, mask = self.collapse_registers(regs, n_p, keep_k, uncond)
        x = torch.cat([patches, regs], dim=1)
        segment_ids = None
        if self.adaln_segments == 2:  # patches, then registers
            segment_ids = (n_p, x.shape[1] - n_p)
        if mask is None and self.null_single_token and uncond is not None:
            # unconditional rows see a single null register: hide registers 1..R-1 as keys
            pos = torch.arange(x.shape[1], device=x.device)
            hidden_keys = (pos > n_p)[None, :] & uncond.to(x.device)[:, None]
            mask = (~hidden_keys)[:, None, None, :]
        if time_cond is None or torch.is_grad_enabled():
            temb, mods, final_mod = self.time_embed(t.to(x.device)), [None] * len(self.blocks), None
        else:
            temb, mods, final_mod = time_cond["temb"], time_cond["blocks"], time_cond["final"]
        feats = None
        for i, blk in enumerate(self.blocks):
            x = blk(x, temb, segment_ids=segment_ids, mask=mask, modulation=mods[i])
            if hidden_layer is not None and i == hidden_layer:
                feats = x[:, :n_p]
        out = self.final(x[:, :n_p], temb, modulation=final_mod)
        v = unpatchify_2d(out, grid, self.patch_size, self.latent_channels)
        return (v, feats) if hidden_layer is not None else v
