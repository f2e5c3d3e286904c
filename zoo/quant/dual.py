"""Dual codebooks: TokenFlow's shared mapping and DualToken's separate high/low-level codebooks.

``SharedMappingQuantizer`` (TokenFlow): the latent is ``[semantic | pixel]`` on the channel axis;
K paired codes ``(e_sem_k, e_pix_k)``; ONE index per token,
``k* = argmin_k  w_sem * ||n(z_sem) - n(e_sem_k)||^2 + w_pix * ||n(z_pix) - n(e_pix_k)||^2``
(n = l2 normalisation of each half when ``l2_norm``), and both tables are looked up with it.
``MultiScaleResidualQuantizer``: TokenFlow's (VAR-style) schedule: for each scale s the
residual is area-downsampled to s x s, quantised, bicubic-upsampled back and subtracted;
the output is the sum of the upsampled codes; ids are the per-scale maps concatenated.
``DualCodebookQuantizer`` (DualToken): the two halves get separate codebooks and separate
indices (ids ``[..., 2]``, semantic first).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.entropy import codebook_entropy_loss
from .base import Quantizer, QuantizerOutput, codebook_stats
from .factorized import FactorizedQuantizer
from .vq import squared_distances

__all__ = ["SharedMappingQuantizer", "MultiScaleResidualQuantizer", "DualCodebookQuantizer",
           "TOKENFLOW_SCALES"]

#: TokenFlow's per-teacher scale schedules (the last scale is the latent grid side)
TOKENFLOW_SCALES = {"clipb_224": (1, 2, 4, 6, 8, 10, 12, 14),
                    "clipb_224_interpolate": (1, 2, 4, 6, 8, 10, 12, 14, 16),
                    "vitamin_xlarge_256": (1, 2, 4, 6, 8, 10, 12, 14, 16),
                    "siglip_384": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 22, 27)}


class SharedMappingQuantizer(Quantizer):
    """z ``[B, Ds+Dp, *spatial]`` (channel_dim=1) -> QuantizerOutput with ids ``[B, *spatial]``.

    codebook_size K; semantic_dim Ds, pixel_dim Dp; semantic_weight / pixel_weight weigh the two
    distances (TokenFlow: 1, 1). Losses (training or grad enabled): ``codebook = mean((e - sg z)^2)``,
    ``commitment = beta * mean((sg e - z)^2)`` over the Ds+Dp vector, ``entropy`` when
    ``entropy_loss_ratio`` > 0. Stats: usage, perplexity, ``semantic_d_norm`` / ``pixel_d_norm``
    (TokenFlow's logged mean over tokens of sum_k d^2).
    """

    def __init__(self, codebook_size: int, semantic_dim: int = 32, pixel_dim: int = 8, beta: float = 0.25,
                 entropy_loss_ratio: float = 0.0, entropy_temperature: float = 0.01, semantic_weight: float = 1.0,
                 pixel_weight: float = 1.0, l2_norm: bool = True, channel_dim: int = 1):
        super().__init__()
        self.codebook_size, self.semantic_dim, self.pixel_dim = codebook_size, semantic_dim, pixel_dim
        self.beta, self.entropy_loss_ratio, self.entropy_temperature = beta, entropy_loss_ratio, entropy_temperature
        self.semantic_weight, self.pixel_weight = semantic_weight, pixel_weight
        self.l2_norm, self.channel_dim = l2_norm, channel_dim
        self.embedding_sem = nn.Embedding(codebook_size, semantic_dim)
        self.embedding_pix = nn.Embedding(codebook_size, pixel_dim)
        for emb in (self.embedding_sem, self.embedding_pix):
            nn.init.uniform_(emb.weight, -1.0 / codebook_size, 1.0 / codebook_size)
            if l2_norm:
                with torch.no_grad():
                    emb.weight.copy_(F.normalize(emb.weight, dim=-1))

    @property
    def dim(self) -> int:
        return self.semantic_dim + self.pixel_dim

    def codebooks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective (normalised when ``l2_norm``) semantic ``[K, Ds]`` and pixel ``[K, Dp]`` tables."""
        s, p = self.embedding_sem.weight, self.embedding_pix.weight
        return (F.normalize(s, dim=-1), F.normalize(p, dim=-1)) if self.l2_norm else (s, p)

    def _halves(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zc = z.float().movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.dim:
            raise ValueError(f"expected {self.semantic_dim}+{self.pixel_dim} channels on dim {self.channel_dim}, "
                             f"got shape {tuple(z.shape)}")
        zs, zp = zc.split([self.semantic_dim, self.pixel_dim], dim=-1)
        if self.l2_norm:
            zs, zp = F.normalize(zs, dim=-1), F.normalize(zp, dim=-1)
        return zs, zp

    def distances(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Semantic and pixel squared distances ``[M, K]`` (M = tokens in ``z``)."""
        zs, zp = self._halves(z)
        es, ep = self.codebooks()
        return (squared_distances(zs.reshape(-1, self.semantic_dim), es),
                squared_distances(zp.reshape(-1, self.pixel_dim), ep))

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        zs, zp = self._halves(z)
        es, ep = self.codebooks()
        d_sem = squared_distances(zs.reshape(-1, self.semantic_dim), es)
        d_pix = squared_distances(zp.reshape(-1, self.pixel_dim), ep)
        d = self.semantic_weight * d_sem + self.pixel_weight * d_pix
        ids = d.argmin(dim=1).view(zs.shape[:-1])
        zn = torch.cat([zs, zp], dim=-1)
        e = torch.cat([F.embedding(ids, es), F.embedding(ids, ep)], dim=-1)
        losses = {}
        if self.training or torch.is_grad_enabled():
            losses = {"codebook": F.mse_loss(e, zn.detach()), "commitment": self.beta * F.mse_loss(zn, e.detach())}
            if self.entropy_loss_ratio:
                losses["entropy"] = self.entropy_loss_ratio * codebook_entropy_loss(d, self.entropy_temperature)
        stats = codebook_stats(ids, self.codebook_size)
        with torch.no_grad():
            stats["semantic_d_norm"] = d_sem.pow(2).sum(-1).mean()
            stats["pixel_d_norm"] = d_pix.pow(2).sum(-1).mean()
        z_q = (zn + (e - zn).detach()).movedim(-1, self.channel_dim)
        return QuantizerOutput(z_q, ids, losses, stats)

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, *spatial]`` -> ``[semantic | pixel]`` codes with channels on ``channel_dim``."""
        es, ep = self.codebooks()
        return torch.cat([F.embedding(ids, es), F.embedding(ids, ep)], dim=-1).movedim(-1, self.channel_dim)

    def split(self, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[semantic | pixel]`` latents -> (semantic, pixel)."""
        return tuple(torch.split(z_q, [self.semantic_dim, self.pixel_dim], dim=self.channel_dim))

    perturbable = True

    def _weighted(self, sem: torch.Tensor, pix: torch.Tensor) -> torch.Tensor:
        """``[sqrt(ws) sem | sqrt(wp) pix]``: the weighted search as one squared-L2 distance."""
        return torch.cat([math.sqrt(self.semantic_weight) * sem, math.sqrt(self.pixel_weight) * pix], -1)

    def perturbation_space(self, z):
        return [(self._weighted(*self._halves(z)), self._weighted(*self.codebooks()))]

    def code_tables(self):
        return [self._weighted(*self.codebooks())]


class MultiScaleResidualQuantizer(Quantizer):
    """Multi-scale residual quantisation of ``[B, C, S, S]`` latents with one shared ``quantizer``.

    scales: increasing square sides, the last equal to S. ``forward`` returns z_q ``[B, C, S, S]``
    (sum over scales of the bicubic-upsampled straight-through codes), ids ``[B, sum s^2]``
    (each scale's map flattened row-major, in schedule order), losses and stats averaged over the
    scales used (ids ``[B, sum s^2, G]`` for a G-codebook quantizer such as
    :class:`DualCodebookQuantizer`). scale_drop_prob: in training, probability of dropping one
    random scale other than the first (TokenFlow: 0.1). ``ids_to_latents`` accepts any prefix of
    the schedule.
    """

    def __init__(self, quantizer: Quantizer, scales: Sequence[int], scale_drop_prob: float = 0.0):
        super().__init__()
        scales = tuple(int(s) for s in scales)
        if not scales or any(b <= a for a, b in zip(scales, scales[1:])):
            raise ValueError(f"scales must be strictly increasing, got {scales}")
        self.quantizer, self.scales, self.scale_drop_prob = quantizer, scales, scale_drop_prob
        self.codebook_size = quantizer.codebook_size

    @property
    def num_tokens(self) -> int:
        return sum(s * s for s in self.scales)

    def _schedule(self) -> tuple[int, ...]:
        if self.training and self.scale_drop_prob > 0 and len(self.scales) > 2:
            if torch.rand(()) < self.scale_drop_prob:
                drop = int(torch.randint(1, len(self.scales), ()))
                return self.scales[:drop] + self.scales[drop + 1:]
        return self.scales

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if z.dim() != 4 or z.shape[-1] != self.scales[-1] or z.shape[-2] != self.scales[-1]:
            raise ValueError(f"expected latents [B, C, {self.scales[-1]}, {self.scales[-1]}], got {tuple(z.shape)}")
        size = (self.scales[-1],) * 2
        residual, total = z.float(), 0.0
        ids, losses, stats = [], {}, {}
        schedule = self._schedule()
        for s in schedule:
            out = self.quantizer(F.interpolate(residual, size=(s, s), mode="area"))
            up = F.interpolate(out.z_q, size=size, mode="bicubic", align_corners=False)
            total = total + up
            residual = residual - up.detach()
            ids.append(out.ids.reshape(z.shape[0], s * s, *out.ids.shape[3:]))  # keeps a group dim
            for k, v in out.losses.items():
                losses[k] = losses.get(k, 0.0) + v / len(schedule)
            for k, v in out.stats.items():
                stats[k] = stats.get(k, 0.0) + v / len(schedule)
        ids = torch.cat(ids, dim=1)
        overall = codebook_stats(ids, max(self.codebook_size) if isinstance(self.codebook_size, tuple)
                                 else self.codebook_size)
        stats["usage_all_scales"], stats["perplexity_all_scales"] = overall["usage"], overall["perplexity"]
        return QuantizerOutput(total, ids, losses, stats)

    def scales_for(self, num_tokens: int) -> tuple[int, ...]:
        """The schedule prefix whose token count is ``num_tokens`` (ValueError if none)."""
        total = 0
        for i, s in enumerate(self.scales):
            total += s * s
            if total == num_tokens:
                return self.scales[: i + 1]
        raise ValueError(f"{num_tokens} tokens is not the token count of a prefix of the scales {self.scales}")

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, T]`` (a schedule prefix) -> latents ``[B, C, S, S]`` (sum of upsampled codes)."""
        size = (self.scales[-1],) * 2
        total, start = 0.0, 0
        for s in self.scales_for(ids.shape[1]):
            grid = ids[:, start:start + s * s].reshape(ids.shape[0], s, s, *ids.shape[2:])
            start += s * s
            total = total + F.interpolate(self.quantizer.ids_to_latents(grid), size=size, mode="bicubic",
                                          align_corners=False)
        return total

    def perturbation_space(self, z):
        raise TypeError("attach the perturbation to the inner quantizer of a MultiScaleResidualQuantizer "
                        "(LatentPerturbation.attach does this)")

    def code_tables(self):
        """The shared inner quantizer's tables (every scale searches them)."""
        return self.quantizer.code_tables()


class DualCodebookQuantizer(FactorizedQuantizer):
    """DualToken-style: z ``[B, Ds+Dp, *spatial]`` -> separate semantic (high-level) and pixel
    (low-level) codebooks with their own indices; ids ``[B, *spatial, 2]`` (semantic first).

    Same losses as :class:`FactorizedQuantizer` with branch names ``("sem", "pix")``.
    """

    def __init__(self, codebook_size: int | Sequence[int], semantic_dim: int = 32, pixel_dim: int = 8,
                 channel_dim: int = 1, **kwargs):
        super().__init__(codebook_size, (semantic_dim, pixel_dim), num_groups=2, names=("sem", "pix"),
                         channel_dim=channel_dim, **kwargs)

    def forward(self, z: torch.Tensor | Sequence[torch.Tensor]) -> QuantizerOutput:
        if isinstance(z, torch.Tensor):
            if z.shape[self.channel_dim] != self.dim:
                raise ValueError(f"expected {self.dims[0]}+{self.dims[1]} channels on dim {self.channel_dim}, "
                                 f"got shape {tuple(z.shape)}")
            z = self.split(z)
        return super().forward(z)
