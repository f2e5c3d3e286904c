"""Factorized quantization (FQGAN): G independent sub-codebooks, one per latent branch.

Branch g quantises its own latent ``z_g`` ``[B, D_g, *spatial]`` against codebook g (cosine
VQ when ``l2_norm``: both z and the codes are l2-normalised before the squared-distance
argmin). The decoder input is the channel concatenation of the branch codes in branch order
(a 1x1 ``post_quant_conv`` follows in the tokenizer). Per-branch losses, as FQGAN trains them
(each added with weight 1):
``codebook_g = mean((e - sg z)^2)``, ``commitment_g = beta * mean((sg e - z)^2)``,
``entropy_g = entropy_loss_ratio * codebook_entropy_loss(d_g, T)``; plus
``disentangle = disentangle_ratio * mean over branch pairs of mean_tokens cos(e_a, e_b)^2``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.disentangle import disentangle_loss
from ..losses.entropy import codebook_entropy_loss
from .base import Quantizer, QuantizerOutput, codebook_stats
from .vq import squared_distances

__all__ = ["FactorizedQuantizer"]


def _per_group(value, groups: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * groups
    value = tuple(int(v) for v in value)
    if len(value) != groups:
        raise ValueError(f"{what} has {len(value)} entries for {groups} groups")
    return value


class FactorizedQuantizer(Quantizer):
    """``q([z_0, ..., z_{G-1}])`` -> QuantizerOutput.

    codebook_size / dim: int (same for every group) or one value per group.
    names: branch names (default ``("vis", "sem")`` for G=2, ``("vis", "sem_mid", "sem_high")``
        for G=3, else ``g0, g1, ...``); they name the losses and stats.
    channel_dim: channel axis of every branch latent (1 for ``[B, C, H, W]``, -1 for ``[B, N, C]``).

    Output: ``z_q`` the concatenation of the branch codes on ``channel_dim`` (straight-through),
    ``ids`` ``[*batch_spatial, G]`` in branch order, losses as in the module docstring (only
    computed in training or when grad is enabled), stats ``usage_<name>`` / ``perplexity_<name>``
    and their means ``usage`` / ``perplexity``.
    """

    def __init__(self, codebook_size: int | Sequence[int], dim: int | Sequence[int], num_groups: int = 2,
                 beta: float = 0.25, entropy_loss_ratio: float = 0.0, entropy_temperature: float = 0.01,
                 l2_norm: bool = True, disentangle_ratio: float = 0.0, names: Sequence[str] | None = None,
                 channel_dim: int = 1):
        super().__init__()
        if num_groups < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        self.num_groups = num_groups
        self.codebook_size = _per_group(codebook_size, num_groups, "codebook_size")
        self.dims = _per_group(dim, num_groups, "dim")
        if names is None:
            names = {2: ("vis", "sem"), 3: ("vis", "sem_mid", "sem_high")}.get(
                num_groups, tuple(f"g{i}" for i in range(num_groups)))
        if len(names) != num_groups or len(set(names)) != num_groups:
            raise ValueError(f"names must be {num_groups} distinct strings, got {names}")
        self.names = tuple(names)
        self.beta, self.entropy_loss_ratio, self.entropy_temperature = beta, entropy_loss_ratio, entropy_temperature
        self.l2_norm, self.disentangle_ratio, self.channel_dim = l2_norm, disentangle_ratio, channel_dim
        self.codebooks = nn.ModuleList(nn.Embedding(k, d) for k, d in zip(self.codebook_size, self.dims))
        for emb, k in zip(self.codebooks, self.codebook_size):
            nn.init.uniform_(emb.weight, -1.0 / k, 1.0 / k)
            if l2_norm:
                with torch.no_grad():
                    emb.weight.copy_(F.normalize(emb.weight, dim=-1))

    @property
    def dim(self) -> int:
        """Channels of the concatenated output."""
        return sum(self.dims)

    def codebook(self, g: int) -> torch.Tensor:
        """Effective codebook of group g ``[K_g, D_g]`` (l2-normalised when ``l2_norm``)."""
        w = self.codebooks[g].weight
        return F.normalize(w, dim=-1) if self.l2_norm else w

    def _quantize_one(self, g: int, z: torch.Tensor):
        zc = z.float().movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.dims[g]:
            raise ValueError(f"branch {self.names[g]!r} expects {self.dims[g]} channels on dim "
                             f"{self.channel_dim}, got shape {tuple(z.shape)}")
        if self.l2_norm:
            zc = F.normalize(zc, dim=-1)
        codebook = self.codebook(g)
        d = squared_distances(zc.reshape(-1, self.dims[g]), codebook)
        ids = d.argmin(dim=1).view(zc.shape[:-1])
        e = F.embedding(ids, codebook)
        return zc, e, ids, d

    def forward(self, zs: Sequence[torch.Tensor]) -> QuantizerOutput:
        if isinstance(zs, torch.Tensor) or len(zs) != self.num_groups:
            raise TypeError(f"FactorizedQuantizer takes a list of {self.num_groups} branch latents "
                            f"in the order {self.names}")
        shapes = {tuple(z.movedim(self.channel_dim, -1).shape[:-1]) for z in zs}
        if len(shapes) != 1:
            raise ValueError(f"branch latents must share batch/spatial shape, got {sorted(shapes)}")
        want_losses = self.training or torch.is_grad_enabled()
        outs, ids_all, losses, stats = [], [], {}, {}
        for g, z in enumerate(zs):
            name = self.names[g]
            zc, e, ids, d = self._quantize_one(g, z)
            if want_losses:
                losses[f"codebook_{name}"] = F.mse_loss(e, zc.detach())
                losses[f"commitment_{name}"] = self.beta * F.mse_loss(zc, e.detach())
                if self.entropy_loss_ratio:
                    losses[f"entropy_{name}"] = self.entropy_loss_ratio * codebook_entropy_loss(
                        d, self.entropy_temperature)
            s = codebook_stats(ids, self.codebook_size[g])
            stats[f"usage_{name}"], stats[f"perplexity_{name}"] = s["usage"], s["perplexity"]
            outs.append((zc + (e - zc).detach()).movedim(-1, self.channel_dim))
            ids_all.append(ids)
        if want_losses and self.disentangle_ratio and self.num_groups > 1:
            losses["disentangle"] = self.disentangle_ratio * disentangle_loss(outs, self.channel_dim)
        stats["usage"] = torch.stack([stats[f"usage_{n}"] for n in self.names]).mean()
        stats["perplexity"] = torch.stack([stats[f"perplexity_{n}"] for n in self.names]).mean()
        return QuantizerOutput(torch.cat(outs, dim=self.channel_dim), torch.stack(ids_all, dim=-1), losses, stats)

    def ids_to_branches(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """ids ``[*batch_spatial, G]`` -> the G branch codes (channels on ``channel_dim``)."""
        if ids.shape[-1] != self.num_groups:
            raise ValueError(f"ids need a trailing dim of {self.num_groups} groups, got {tuple(ids.shape)}")
        return [F.embedding(ids[..., g], self.codebook(g)).movedim(-1, self.channel_dim)
                for g in range(self.num_groups)]

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[*batch_spatial, G]`` -> concatenated codes (the decoder input before post_quant_conv)."""
        return torch.cat(self.ids_to_branches(ids), dim=self.channel_dim)

    def split(self, z_q: torch.Tensor) -> list[torch.Tensor]:
        """Concatenated latents -> per-branch tensors (inverse of the concatenation)."""
        return list(torch.split(z_q, list(self.dims), dim=self.channel_dim))

    perturbable = True

    def perturbation_space(self, z):
        """One (query, codebook) pair per branch; ``z`` the branch list or their concatenation."""
        out = []
        for g, zg in enumerate(self.split(z) if isinstance(z, torch.Tensor) else z):
            q = zg.float().movedim(self.channel_dim, -1)
            out.append((F.normalize(q, dim=-1) if self.l2_norm else q, self.codebook(g)))
        return out

    def code_tables(self):
        return [self.codebook(g) for g in range(self.num_groups)]
