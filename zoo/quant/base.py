"""The interface every quantizer implements, and codebook statistics.

``forward(z) -> QuantizerOutput`` with ``z_q`` (same shape as ``z``, straight-through
gradients), integer ``ids``, named ``losses`` and ``stats``; ``ids_to_latents(ids)`` inverts
the lookup; ``codebook_size`` is an int (or a per-group tuple).

Declared capability: a quantizer whose nearest-code search RobusTok's latent perturbation
(:mod:`zoo.quant.perturb`) can hook sets ``perturbable = True`` and implements
``perturbation_space(z)`` and ``code_tables()``; wrappers (residual, multi-scale) give their
``code_tables()`` and leave the search to the quantizers inside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

__all__ = ["QuantizerOutput", "Quantizer", "codebook_stats"]


@dataclass
class QuantizerOutput:
    """z_q: quantised latents (shape of the input); ids: LongTensor (input shape without the
    channel dim, plus a trailing group dim for multi-codebook quantizers); losses: named scalar
    terms; stats: named scalar diagnostics (no grad)."""

    z_q: torch.Tensor
    ids: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        return sum(self.losses.values()) if self.losses else self.z_q.new_zeros(())


@torch.no_grad()
def codebook_stats(ids: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """``usage``: fraction of the codebook hit by ``ids``; ``perplexity``: exp(entropy) of the
    empirical code distribution (1 .. codebook_size). Tensors, no host sync."""
    counts = torch.bincount(ids.reshape(-1), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum()
    return {"usage": (counts > 0).float().mean(), "perplexity": entropy.exp()}


class Quantizer(nn.Module):
    """Base class: subclasses implement ``forward`` and ``ids_to_latents``.

    channel_dim: the axis of ``z`` holding the latent channels (1 for ``[B, C, ...]``,
    -1 for ``[B, N, C]``); ids drop that axis.
    """

    codebook_size: int
    #: True when the latent perturbation can hook this quantizer (it implements ``perturbation_space``)
    perturbable: ClassVar[bool] = False

    def forward(self, z: torch.Tensor) -> QuantizerOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def perturbation_space(self, z) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The nearest-code search on input ``z`` as (query ``[B, ..., D]``, effective codebook ``[K, D]``)
        per code group: queries in the space where the search is a squared-L2 argmin."""
        raise TypeError(f"{type(self).__name__} has no codebook search the perturbation understands; "
                        "implement perturbation_space(z) -> [(query, codebook), ...]")

    def code_tables(self) -> list[torch.Tensor]:
        """Effective code tables ``[K_g, D_g]`` per code group, in the space of :meth:`perturbation_space`."""
        raise TypeError(f"{type(self).__name__}: implement code_tables() -> [codebook [K, D], ...]")
