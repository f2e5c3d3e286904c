"""Codebook usage over a dataset: fraction of codes used, perplexity, per-position entropy.

``CodebookUsage.update(ids, lengths=None)`` takes token ids ``[B, N]`` or ``[B, N, G]``
(G parallel codebooks); counts are summed over processes. ``compute()`` returns, per group
(and averaged over groups):

- ``usage``: fraction of the codebook that appeared at least once;
- ``perplexity``: ``exp(H)`` of the empirical code distribution (1 .. codebook size);
- ``entropy_bits``: ``H / ln 2``;
- with ``num_positions`` (1D tokenizers): ``position_entropy_bits`` ``[N]`` (entropy of the
  code distribution at each sequence position) and its mean.
Padding positions (``>= lengths``) are ignored.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["CodebookUsage", "entropy_from_counts"]


def entropy_from_counts(counts: Tensor, dim: int = -1) -> Tensor:
    """Natural-log entropy of the distributions given by non-negative ``counts`` along ``dim``."""
    counts = counts.double()
    p = counts / counts.sum(dim, keepdim=True).clamp_min(1)
    return -(p * p.clamp_min(1e-300).log()).sum(dim)


class CodebookUsage(Metric):
    """Streaming codebook statistics (see module docstring).

    codebook_size: int or per-group tuple; num_positions: sequence length N to track
    per-position entropy for (None: off).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, codebook_size: int | Sequence[int], num_positions: int | None = None, **kwargs):
        super().__init__(**kwargs)
        sizes = (int(codebook_size),) if isinstance(codebook_size, int) else tuple(int(k) for k in codebook_size)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"codebook_size must be positive, got {codebook_size}")
        self.sizes = sizes
        kmax = max(sizes)
        self.add_state("counts", torch.zeros(len(sizes), kmax, dtype=torch.long), dist_reduce_fx="sum")
        self.num_positions = num_positions
        if num_positions is not None:
            self.add_state("pos_counts", torch.zeros(num_positions, len(sizes), kmax, dtype=torch.long),
                           dist_reduce_fx="sum")

    def update(self, ids: Tensor, lengths: Tensor | None = None) -> None:
        if not isinstance(ids, Tensor) or ids.dim() not in (2, 3) or ids.is_floating_point():
            raise ValueError(f"ids must be an integer tensor [B, N] or [B, N, G], got "
                             f"{tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__}")
        ids = ids.long() if ids.dim() == 3 else ids.long()[..., None]
        b, n, g = ids.shape
        if g != len(self.sizes):
            raise ValueError(f"ids have {g} codebook groups, the metric was built for {len(self.sizes)}")
        limits = torch.tensor(self.sizes, device=ids.device)
        if bool(((ids < 0) | (ids >= limits)).any()):
            raise ValueError(f"ids outside the codebook(s) of size {self.sizes}")
        kmax = self.counts.shape[1]
        valid = torch.ones(b, n, dtype=torch.bool, device=ids.device)
        if lengths is not None:
            valid = torch.arange(n, device=ids.device)[None] < lengths.to(ids.device)[:, None]
        valid = valid[..., None].expand(b, n, g)
        group = torch.arange(g, device=ids.device).view(1, 1, g)
        flat = (group * kmax + ids)[valid]
        self.counts += torch.bincount(flat, minlength=g * kmax).view(g, kmax).to(self.counts)
        if self.num_positions is not None:
            if n > self.num_positions:
                raise ValueError(f"sequence of {n} tokens is longer than num_positions={self.num_positions}")
            pos = torch.arange(n, device=ids.device).view(1, n, 1)
            flat = ((pos * g + group) * kmax + ids)[valid]
            self.pos_counts += torch.bincount(flat, minlength=self.num_positions * g * kmax).view(
                self.num_positions, g, kmax).to(self.pos_counts)

    def compute(self) -> dict[str, Tensor]:
        if int(self.counts.sum()) == 0:
            raise RuntimeError("CodebookUsage.compute() called before any update")
        sizes = torch.tensor(self.sizes, dtype=torch.float64, device=self.counts.device)
        used = (self.counts > 0).sum(1).double() / sizes                         # [G]
        ent = entropy_from_counts(self.counts)                                    # [G]
        out = {"usage": used.mean().float(), "perplexity": ent.exp().mean().float(),
               "entropy_bits": (ent / math.log(2)).mean().float()}
        if len(self.sizes) > 1:
            out.update({"usage_per_group": used.float(), "perplexity_per_group": ent.exp().float()})
        if self.num_positions is not None:
            seen = self.pos_counts.sum((1, 2)) > 0                               # positions ever present
            pe = entropy_from_counts(self.pos_counts).mean(1) / math.log(2)      # [N] bits, mean over groups
            out["position_entropy_bits"] = pe.float()
            out["mean_position_entropy_bits"] = pe[seen].mean().float()
        return out
