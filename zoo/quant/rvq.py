"""Residual vector quantization (SoundStream / EnCodec style), own code on zoo VQ layers.

``r_0 = z``; layer i quantises ``r_i`` with its own codebook (:class:`~zoo.quant.vq.VectorQuantizer`,
gradient-trained, optional cosine) and ``r_{i+1} = r_i - sg(q_i)``; the output is
``z + sg(sum_i q_i - z)`` (straight-through). Losses are the per-layer codebook / commitment terms,
summed. ``quantizer_dropout``: in training, each batch uses only the first n layers, n uniform
in [1, Q] (bitrate scalability); ids of unused layers are -1 -> callers should slice them off.
vector-quantize-pytorch's ``ResidualVQ`` is not wrapped: its codebooks are EMA-updated by
default, while zoo tokenizers train codebooks by gradient (as their official code does).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Quantizer, QuantizerOutput, codebook_stats
from .vq import VectorQuantizer

__all__ = ["ResidualVectorQuantizer"]


class ResidualVectorQuantizer(Quantizer):
    """z ``[B, C, *spatial]`` (channel_dim=1) or ``[B, N, C]`` -> ids ``[B, *spatial, Q]``.

    num_quantizers Q, codebook_size K, dim C; beta: commitment weight; l2_norm: cosine VQ per layer.
    ``forward(z, n_q=None)`` uses the first ``n_q`` layers (default all).
    """

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, beta: float = 0.25,
                 l2_norm: bool = False, channel_dim: int = 1, quantizer_dropout: bool = False):
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {num_quantizers}")
        self.num_quantizers, self.codebook_size, self.dim = num_quantizers, codebook_size, dim
        self.channel_dim, self.quantizer_dropout = channel_dim, quantizer_dropout
        self.layers = nn.ModuleList(VectorQuantizer(codebook_size, dim, beta=beta, l2_norm=l2_norm,
                                                    channel_dim=channel_dim) for _ in range(num_quantizers))

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        n_q = self.num_quantizers if n_q is None else n_q
        if not 1 <= n_q <= self.num_quantizers:
            raise ValueError(f"n_q must be in [1, {self.num_quantizers}], got {n_q}")
        if self.training and self.quantizer_dropout and n_q > 1:
            n_q = int(torch.randint(1, n_q + 1, ()))
        z = z.float()
        residual, total = z, torch.zeros_like(z)
        ids, losses = [], {}
        for layer in self.layers[:n_q]:
            out = layer(residual)
            q = out.z_q.detach()  # the code values (straight-through value equals the code)
            total = total + q
            residual = residual - q
            ids.append(out.ids)
            for k, v in out.losses.items():
                losses[k] = losses.get(k, 0.0) + v
        ids = torch.stack(ids, dim=-1)
        if n_q < self.num_quantizers:
            pad = ids.new_full((*ids.shape[:-1], self.num_quantizers - n_q), -1)
            ids = torch.cat([ids, pad], dim=-1)
        used = ids[..., :n_q]
        stats = codebook_stats(used, self.codebook_size)
        for i in range(n_q):
            stats[f"usage_q{i}"] = codebook_stats(used[..., i], self.codebook_size)["usage"]
        return QuantizerOutput(z + (total - z).detach(), ids, losses, stats)

    def code_tables(self):
        """One table per layer (the layers do the searches the perturbation hooks)."""
        return [layer._codebook() for layer in self.layers]

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, *spatial, q]`` (q <= Q leading layers; -1 entries are skipped) -> summed codes."""
        if ids.shape[-1] > self.num_quantizers:
            raise ValueError(f"ids have {ids.shape[-1]} layers, the quantizer {self.num_quantizers}")
        total = 0.0
        for i in range(ids.shape[-1]):
            layer_ids = ids[..., i]
            valid = (layer_ids >= 0).unsqueeze(self.channel_dim if self.channel_dim >= 0 else -1)
            codes = self.layers[i].ids_to_latents(layer_ids.clamp_min(0))
            total = total + codes * valid
        return total
