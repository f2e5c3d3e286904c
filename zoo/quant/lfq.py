"""Lookup-free quantization (LFQ, MAGVIT-v2), wrapping ``vector_quantize_pytorch.LFQ``.

Each of the ``bits`` latent channels is quantised independently to ``-scale`` / ``+scale`` by
its sign (``> 0`` -> +); the token id packs the bits MSB-first (channel 0 is the most
significant bit): ``id = sum_i [z_i > 0] * 2**(bits-1-i)``; codebook size ``2**bits``. Training
losses: ``entropy = entropy_loss_weight * (mean per-token entropy - diversity_gamma * entropy of
the mean code distribution)`` over the implicit codebook, and ``commitment =
commitment_loss_weight * mean((z - sg q)^2)``. Straight-through gradients.
"""
from __future__ import annotations

import torch

from .base import Quantizer, QuantizerOutput, codebook_stats

__all__ = ["LookupFreeQuantizer"]


class LookupFreeQuantizer(Quantizer):
    """z ``[B, bits, *spatial]`` (channel_dim=1) or ``[B, N, bits]`` (channel_dim=-1) -> QuantizerOutput.

    bits: latent channels (codebook_size = 2**bits); scale: code magnitude; entropy_loss_weight,
    commitment_loss_weight, diversity_gamma: as in MAGVIT-v2 / vector-quantize-pytorch.
    """

    def __init__(self, bits: int, entropy_loss_weight: float = 0.1, commitment_loss_weight: float = 0.25,
                 diversity_gamma: float = 1.0, scale: float = 1.0, channel_dim: int = 1):
        super().__init__()
        from vector_quantize_pytorch import LFQ

        if not 1 <= bits <= 30:
            raise ValueError(f"bits must be in [1, 30], got {bits}")
        self.bits, self.codebook_size, self.channel_dim, self.scale = bits, 2 ** bits, channel_dim, scale
        self.entropy_loss_weight, self.commitment_loss_weight = entropy_loss_weight, commitment_loss_weight
        self.lfq = LFQ(dim=bits, codebook_size=2 ** bits, has_projections=False, channel_first=False,
                       entropy_loss_weight=1.0, commitment_loss_weight=1.0, diversity_gamma=diversity_gamma,
                       codebook_scale=scale)
        self.register_buffer("bit_values", 2 ** torch.arange(bits - 1, -1, -1), persistent=False)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        zc = z.movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.bits:
            raise ValueError(f"expected {self.bits} channels on dim {self.channel_dim}, got shape {tuple(z.shape)}")
        flat = zc.reshape(zc.shape[0], -1, self.bits).float()
        (q, ids, _), breakdown = self.lfq(flat, return_loss_breakdown=True)
        losses = {}
        if self.training:
            entropy = breakdown.per_sample_entropy - self.lfq.diversity_gamma * breakdown.batch_entropy
            losses = {"entropy": self.entropy_loss_weight * entropy,
                      "commitment": self.commitment_loss_weight * breakdown.commitment}
        ids = ids.view(zc.shape[:-1])
        q = q.view(zc.shape).movedim(-1, self.channel_dim)
        return QuantizerOutput(q, ids, losses, codebook_stats(ids, self.codebook_size))

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, *spatial]`` -> codes in {-scale, +scale} with channels on ``channel_dim``."""
        bits = (ids[..., None] & self.bit_values) != 0
        codes = torch.where(bits, self.scale, -self.scale).float()
        return codes.movedim(-1, self.channel_dim)

    perturbable = True

    def perturbation_space(self, z):
        """Sign quantisation = the nearest of the ``2**bits`` corners."""
        return [(z.float().movedim(self.channel_dim, -1), self.code_tables()[0])]

    def code_tables(self):
        ids = torch.arange(self.codebook_size, device=self.bit_values.device)
        return [self.ids_to_latents(ids).movedim(self.channel_dim, -1)]
