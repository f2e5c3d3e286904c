"""LARP's training-time autoregressive prior over a tokenizer's latent sequence.

A small causal transformer reads the quantised latents ``z_q`` ``[B, N, C]`` (straight-
through, so its loss also shapes the encoder) and predicts, at each position, a unit vector
whose cosine similarity with every codebook entry gives next-token logits. Training
minimises the cross-entropy against the actual next ids; it is discarded at inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Transformer

__all__ = ["LatentPrior"]


class LatentPrior(nn.Module):
    """Causal transformer prior. ``z_q [B, N, C]`` -> logits ``[B, N - 1, K]`` for ids ``1..N-1``.

    code_dim C: latent width; dim/depth/num_heads: the transformer; max_len: longest sequence;
    temperature: divides the cosine logits.
    """

    def __init__(self, code_dim: int, max_len: int, dim: int = 384, depth: int = 12, num_heads: int = 6,
                 temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.input_proj = nn.Linear(code_dim, dim)
        self.pos_embed = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.transformer = Transformer(dim, depth, num_heads)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, code_dim)
        self.register_buffer("causal_mask", torch.ones(max_len, max_len, dtype=torch.bool).tril(), persistent=False)

    def forward(self, z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """z ``[B, N, C]``, codebook ``[K, C]`` -> logits ``[B, N - 1, K]`` (position i predicts id i+1)."""
        n = z.shape[1] - 1
        if n < 1 or n > self.pos_embed.shape[0]:
            raise ValueError(f"prior sequence length must be 2..{self.pos_embed.shape[0] + 1}, got {n + 1}")
        h = self.input_proj(z[:, :-1]) + self.pos_embed[:n]
        h = self.norm(self.transformer(h, mask=self.causal_mask[:n, :n]))
        pred = F.normalize(self.head(h).float(), dim=-1)
        return pred @ F.normalize(codebook.float(), dim=-1).t() / self.temperature

    def loss(self, z: torch.Tensor, ids: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token cross-entropy and top-1 accuracy (no grad) for ids ``[B, N]``."""
        logits = self(z, codebook)
        target = ids[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float().mean()
        return ce, acc
