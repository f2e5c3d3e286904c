"""Gradient-trained vector quantizer (VQ-VAE / TiTok / FQGAN style).

Nearest code by squared Euclidean distance (on l2-normalised vectors when ``l2_norm``, i.e.
cosine similarity); losses ``commitment = beta * ||sg(z_q) - z||^2`` and
``codebook = ||z_q - sg(z)||^2`` (means); straight-through ``z + sg(z_q - z)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Quantizer, QuantizerOutput, codebook_stats

__all__ = ["VectorQuantizer", "nearest_code", "nearest_code_chunked", "squared_distances"]


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """z ``[M, D]``, codebook ``[K, D]`` -> ``[M, K]`` squared L2 distances.

    Expanded form ``|z|^2 + |e|^2 - 2 z.e`` as the official implementations compute it, so
    ties and rounding resolve the same way. Always float32, also under autocast: in bf16 / fp16
    the cancellation in the expanded form would leave too few bits to rank the codes.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        z, codebook = z.float(), codebook.float()
        return z.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2.0 * (z @ codebook.t())


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """z ``[M, D]``, codebook ``[K, D]`` -> ids ``[M]`` of the nearest code (squared L2,
    see :func:`squared_distances`)."""
    return squared_distances(z, codebook).argmin(dim=1)


def nearest_code_chunked(z: torch.Tensor, codebook: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """:func:`nearest_code` for large ``M`` (k-means over many vectors): ``argmin(|e|^2 - 2 z.e)`` (the
    row constant ``|z|^2`` dropped) as one fused ``addmm`` per ``chunk`` rows, float32, so the
    ``[M, K]`` distance matrix is never materialised. Same ids up to rounding at near-ties."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        z, codebook = z.float(), codebook.float()
        norms, codes_t = codebook.pow(2).sum(1), codebook.t()
        return torch.cat([torch.addmm(norms, z[i:i + chunk], codes_t, alpha=-2.0).argmin(dim=1)
                          for i in range(0, z.shape[0], chunk)])


class VectorQuantizer(Quantizer):
    """z ``[B, C, *spatial]`` (channel_dim=1) or ``[B, N, C]`` (channel_dim=-1) -> QuantizerOutput.

    codebook_size K, dim C; l2_norm: normalise z and codes (cosine VQ); beta: commitment weight.
    The codebook is ``embedding.weight`` ``[K, C]``.
    """

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25, l2_norm: bool = False,
                 channel_dim: int = 1):
        super().__init__()
        self.codebook_size, self.dim, self.beta, self.l2_norm = codebook_size, dim, beta, l2_norm
        self.channel_dim = channel_dim
        self.embedding = nn.Embedding(codebook_size, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def _codebook(self) -> torch.Tensor:
        w = self.embedding.weight
        return F.normalize(w, dim=-1) if self.l2_norm else w

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        z = z.float()
        zc = z.movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.dim:
            raise ValueError(f"expected {self.dim} channels on dim {self.channel_dim}, got shape {tuple(z.shape)}")
        if self.l2_norm:
            zc = F.normalize(zc, dim=-1)
        codebook = self._codebook()
        ids = nearest_code(zc.reshape(-1, self.dim), codebook).view(zc.shape[:-1])
        zq = F.embedding(ids, codebook)
        losses = {}
        if self.training or torch.is_grad_enabled():
            losses = {"commitment": self.beta * F.mse_loss(zc, zq.detach()),
                      "codebook": F.mse_loss(zq, zc.detach())}
        zq = zc + (zq - zc).detach()
        return QuantizerOutput(zq.movedim(-1, self.channel_dim), ids, losses,
                               codebook_stats(ids, self.codebook_size))

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, *spatial]`` -> latents with channels on ``channel_dim``."""
        return F.embedding(ids, self._codebook()).movedim(-1, self.channel_dim)

    perturbable = True

    def perturbation_space(self, z):
        q = z.float().movedim(self.channel_dim, -1)
        return [(F.normalize(q, dim=-1) if self.l2_norm else q, self._codebook())]

    def code_tables(self):
        return [self._codebook()]
