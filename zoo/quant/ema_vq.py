"""Vector quantizer whose codebook is learnt by exponential moving averages (VQ-VAE-2 / EnCodec style).

The codebook is a set of buffers (not parameters): ``embed`` ``[K, D]``, ``embed_avg`` ``[K, D]``
(EMA of the sum of assigned vectors), ``cluster_size`` ``[K]`` (EMA of assignment counts) and
``inited`` ``[1]`` (nonzero once initialised). In training mode the first batch initialises the
codebook by k-means (``kmeans_init``), codes whose EMA count falls below
``threshold_ema_dead_code`` are restarted from random batch vectors, and
``embed = embed_avg / laplace_smoothed(cluster_size)``. A restarted code also gets its EMA
statistics reset (``embed_avg = v * threshold``, ``cluster_size = threshold``); EnCodec's reference
only overwrites ``embed``, which the EMA normalisation of the same step then undoes; likewise the
k-means init stores ``embed_avg = means * counts`` (EnCodec stores the means, which the next
normalisation divides by the counts again). In eval mode nothing is updated and
nothing is checked: a fresh, never-trained quantizer quantizes against its random initial
codebook instead of running a surprise k-means.

Forward: z ``[B, C, *]`` (channel_dim=1) or ``[B, N, C]`` (channel_dim=-1) -> QuantizerOutput with
straight-through ``z_q``, ids, ``losses["commitment"] = weight * ||z - sg(z_q)||^2`` (training) and
usage/perplexity stats.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .base import Quantizer, QuantizerOutput, codebook_stats
from .vq import nearest_code

__all__ = ["EMAVectorQuantizer", "kmeans"]


def _sample_rows(x: torch.Tensor, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``num`` rows of ``x`` ``[M, D]``: without replacement when ``M >= num``."""
    m = x.shape[0]
    if m >= num:
        idx = torch.randperm(m, device=x.device, generator=generator)[:num]
    else:
        idx = torch.randint(0, m, (num,), device=x.device, generator=generator)
    return x[idx]


@torch.no_grad()
def kmeans(x: torch.Tensor, num_clusters: int, num_iters: int = 10,
           generator: torch.Generator | None = None, assign=nearest_code) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``x`` ``[M, D]`` (float32) -> (centroids ``[K, D]``, counts ``[K]``).

    Initial centroids are random rows; empty clusters keep their previous centroid. assign: the
    nearest-centroid search (``zoo.quant.vq.nearest_code_chunked`` for many vectors).
    """
    x = x.float()
    means = _sample_rows(x, num_clusters, generator)
    counts = torch.zeros(num_clusters, device=x.device, dtype=torch.long)
    for _ in range(num_iters):
        ids = assign(x, means)
        counts = torch.bincount(ids, minlength=num_clusters)
        sums = torch.zeros_like(means).index_add_(0, ids, x)
        new = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)
        means = torch.where((counts == 0).unsqueeze(1), means, new)
    return means, counts


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class EMAVectorQuantizer(Quantizer):
    """EMA-learnt codebook of ``codebook_size`` x ``dim`` (see module docstring).

    decay: EMA decay; eps: Laplace smoothing of cluster sizes; kmeans_init: initialise the
    codebook by k-means on the first training batch (otherwise it starts at its random init);
    kmeans_iters: k-means iterations; threshold_ema_dead_code: restart codes whose EMA count is
    below this (0 disables); commitment_weight: weight of the commitment loss;
    channel_dim: axis of the latent channels; sync_distributed: average the EMA statistics over
    processes and broadcast k-means / restarts from rank 0 (keeps replicas identical under DDP).
    """

    def __init__(self, codebook_size: int, dim: int, decay: float = 0.99, eps: float = 1e-5,
                 kmeans_init: bool = True, kmeans_iters: int = 10, threshold_ema_dead_code: float = 2.0,
                 commitment_weight: float = 1.0, channel_dim: int = 1, sync_distributed: bool = True):
        super().__init__()
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"codebook_size and dim must be positive, got {codebook_size}, {dim}")
        self.codebook_size, self.dim = codebook_size, dim
        self.decay, self.eps = decay, eps
        self.kmeans_iters, self.threshold_ema_dead_code = kmeans_iters, threshold_ema_dead_code
        self.commitment_weight, self.channel_dim = commitment_weight, channel_dim
        self.sync_distributed = sync_distributed
        embed = torch.empty(codebook_size, dim)
        torch.nn.init.kaiming_uniform_(embed)
        self.register_buffer("inited", torch.tensor([0.0 if kmeans_init else 1.0]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())
        self._known_inited = False
        self._register_load_state_dict_pre_hook(self._on_load)

    @property
    def codebook(self) -> torch.Tensor:
        return self.embed

    perturbable = True

    def perturbation_space(self, z):
        return [(z.float().movedim(self.channel_dim, -1), self.codebook)]

    def code_tables(self):
        return [self.codebook]

    # ------------------------------------------------------------------ training updates
    def _broadcast(self, *tensors: torch.Tensor) -> None:
        if self.sync_distributed and _distributed():
            for t in tensors:
                dist.broadcast(t, src=0)

    def _all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.sync_distributed and _distributed():
            t = t.clone()
            dist.all_reduce(t)
            t /= dist.get_world_size()
        return t

    def _on_load(self, *args, **kwargs) -> None:
        self._known_inited = False  # a loaded state may hold an uninitialised codebook

    @torch.no_grad()
    def _maybe_kmeans_init(self, x: torch.Tensor) -> None:
        if self._known_inited:
            return
        if bool(self.inited.item()):  # host sync only until the codebook is known to be initialised
            self._known_inited = True
            return
        means, counts = kmeans(x, self.codebook_size, self.kmeans_iters)
        counts = counts.to(self.cluster_size.dtype)
        self.embed.copy_(means)
        self.embed_avg.copy_(means * counts.unsqueeze(1))  # a sum, so embed_avg / cluster_size = means
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)
        self._known_inited = True
        self._broadcast(self.embed, self.embed_avg, self.cluster_size)

    @torch.no_grad()
    def _expire_dead_codes(self, x: torch.Tensor) -> None:
        if self.threshold_ema_dead_code <= 0:
            return
        dead = (self.cluster_size < self.threshold_ema_dead_code).unsqueeze(1)  # no host sync: always blend
        fresh = _sample_rows(x, self.codebook_size)
        self.embed.copy_(torch.where(dead, fresh, self.embed))
        # restart the EMA statistics too, so the next normalisation keeps the new code
        self.embed_avg.copy_(torch.where(dead, fresh * self.threshold_ema_dead_code, self.embed_avg))
        self.cluster_size.copy_(torch.where(dead[:, 0], torch.full_like(self.cluster_size,
                                                                         float(self.threshold_ema_dead_code)),
                                            self.cluster_size))
        self._broadcast(self.embed, self.embed_avg, self.cluster_size)

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, ids: torch.Tensor) -> None:
        counts = torch.bincount(ids, minlength=self.codebook_size).to(x.dtype)
        sums = torch.zeros(self.codebook_size, self.dim, device=x.device, dtype=x.dtype).index_add_(0, ids, x)
        counts, sums = self._all_reduce_mean(counts), self._all_reduce_mean(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        zc = z.float().movedim(self.channel_dim, -1)
        if zc.shape[-1] != self.dim:
            raise ValueError(f"expected {self.dim} channels on dim {self.channel_dim}, got shape {tuple(z.shape)}")
        flat = zc.reshape(-1, self.dim)
        if self.training:
            self._maybe_kmeans_init(flat.detach())
        ids = nearest_code(flat, self.embed)
        zq = F.embedding(ids, self.embed).view_as(zc)
        ids = ids.view(zc.shape[:-1])
        losses = {}
        if self.training:
            self._expire_dead_codes(flat.detach())
            self._ema_update(flat.detach(), ids.reshape(-1))
            if self.commitment_weight > 0:
                losses["commitment"] = self.commitment_weight * F.mse_loss(zc, zq.detach())
            zq = zc + (zq - zc).detach()
        return QuantizerOutput(zq.movedim(-1, self.channel_dim), ids, losses,
                               codebook_stats(ids, self.codebook_size))

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, *]`` -> latents with channels on ``channel_dim``."""
        if ids.dtype != torch.long:
            ids = ids.long()
        return F.embedding(ids, self.embed).movedim(-1, self.channel_dim)
