"""Finite scalar quantization (FSQ, arXiv 2309.15505), FlexTok / lucidrains semantics.

Each of the ``d = len(levels)`` channels is bounded, rounded to one of ``L_i`` integer levels
and rescaled to [-1, 1]:

- ``bound(z) = tanh(z + atanh(offset / half)) * half - offset`` with
  ``half = (L - 1) * (1 + eps) / 2`` and ``offset = 0.5`` for even ``L`` (else 0);
- ``code = round(bound(z)) / (L // 2)`` (round half to even, straight-through gradient), so
  even ``L`` gives the asymmetric set ``{-1, ..., 1 - 2/L}`` and odd ``L`` ``{-1, ..., 1}``;
- ``id = sum_i (code_i * (L_i // 2) + L_i // 2) * basis_i`` with ``basis = cumprod([1, L_0, ...])``
  (the first channel is the least significant digit); ``codebook_size = prod(L)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .base import Quantizer, QuantizerOutput, codebook_stats

__all__ = ["FSQ"]


class FSQ(Quantizer):
    """z ``[..., d]`` (channel_dim=-1) or ``[B, d, *spatial]`` (channel_dim=1) -> QuantizerOutput.

    levels: levels per channel, e.g. ``(8, 8, 8, 5, 5, 5)`` (64,000 codes).
    eps: widening of the bound so that the extreme levels are reachable.
    drop_quant_p: training only, probability per sample (first dim) of skipping the rounding.
    ``z_q`` holds the codes in [-1, 1]; ``ids`` drops the channel dim.
    """

    def __init__(self, levels: Sequence[int], channel_dim: int = -1, eps: float = 1e-3,
                 drop_quant_p: float = 0.0):
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be integers >= 2, got {levels}")
        self.levels = levels
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)
        self.channel_dim = channel_dim
        self.eps = eps
        self.drop_quant_p = drop_quant_p
        lv = torch.tensor(levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.long), dim=0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    # ----------------------------------------------------------------- maths on [..., d]
    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Soft-clamp ``z`` ``[..., d]`` into the open range of each channel's levels."""
        half = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half).atanh()
        return (z + shift).tanh() * half - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """``[..., d]`` float -> codes in [-1, 1] (straight-through rounding)."""
        b = self.bound(z.float())
        q = b.round()
        if self.training and self.drop_quant_p > 0:
            keep = torch.rand(b.shape[0], device=b.device) < self.drop_quant_p
            q = torch.where(keep.view(-1, *([1] * (b.dim() - 1))), b, q)
        q = b + (q - b).detach()
        return q / torch.div(self._levels, 2, rounding_mode="floor")

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[..., d]`` in [-1, 1] -> LongTensor ids ``[...]``."""
        half = torch.div(self._levels, 2, rounding_mode="floor")
        digits = (codes * half + half).round().long()
        return (digits * self._basis).sum(dim=-1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """LongTensor ids ``[...]`` -> codes ``[..., d]`` in [-1, 1] (float32)."""
        digits = torch.div(ids.long().unsqueeze(-1), self._basis, rounding_mode="floor") % self._levels.long()
        half = torch.div(self._levels, 2, rounding_mode="floor")
        return (digits.float() - half) / half

    # ----------------------------------------------------------------- Quantizer API
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        zc = z.movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects {self.dim} channels on dim {self.channel_dim}, got shape {tuple(z.shape)}")
        codes = self.quantize(zc)
        ids = self.codes_to_ids(codes.detach())
        return QuantizerOutput(codes.movedim(-1, self.channel_dim), ids, {}, codebook_stats(ids, self.codebook_size))

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids -> codes with the channels on ``channel_dim``."""
        return self.ids_to_codes(ids).movedim(-1, self.channel_dim)

    perturbable = True

    def perturbation_space(self, z):
        """Rounding of the bounded latent = the nearest point of the integer grid."""
        return [(self.bound(z.float().movedim(self.channel_dim, -1)), self.code_tables()[0])]

    def code_tables(self):
        half = torch.div(self._levels, 2, rounding_mode="floor")
        ids = torch.arange(self.codebook_size, device=half.device)
        return [self.ids_to_codes(ids) * half]

    def extra_repr(self) -> str:
        return f"levels={self.levels}, codebook_size={self.codebook_size}"
