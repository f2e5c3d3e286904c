"""RobusTok's latent perturbation for dMel's fixed scalar bins (``DMel.token_perturbation()``).

Every (frame, mel channel) id is the nearest of the ``2**n_bits`` bin centres of the log-mel value.
RobusTok's definition is applied per id: each channel is a code group whose codebook is the
one-dimensional bin centres, the "encoder output" is the continuous log-mel value, and the
candidates are the ``delta`` centres nearest to it (mode ``"encoder"``) or to the id's own centre
(mode ``"tokens"``), the clean bin always first; ``delta`` is at most the number of bins.
"""
from __future__ import annotations

import torch

from ..api import Tokens
from ..quant.perturb import TokenPerturbation, sample_candidates

__all__ = ["BinPerturbation"]


class BinPerturbation(TokenPerturbation):
    """Per-id perturbation of a :class:`~zoo.models.dmel.DMel`'s bin ids (see module docstring)."""

    def unsupported_reason(self) -> str | None:
        return None

    def definition(self) -> str:
        return ("dMel: each (frame, mel channel) id; its codebook is the channel's bin centres (1-D), its "
                "encoder output the log-mel value")

    @torch.no_grad()
    def tokens(self, x: torch.Tensor, alpha: float, delta: int, seed: int, mode: str = "encoder") -> Tokens:
        tok = self.tokenizer
        tokens = tok.encode(x)
        centers = tok.centers.double()
        k = centers.numel()
        if delta > k:
            raise ValueError(f"delta must be in [1, {k}] (dMel bins per channel), got {delta}")
        if alpha == 0 or delta == 1:
            return tokens
        ids = tokens.ids
        anchor = tok.log_mel(x).double() if mode == "encoder" else centers[ids]
        if anchor.shape != ids.shape:
            raise RuntimeError(f"dMel log-mel {tuple(anchor.shape)} does not match its ids {tuple(ids.shape)}")
        dist = (anchor[..., None] - centers).abs().reshape(-1, k)
        dist.scatter_(1, ids.reshape(-1, 1), -1.0)  # the clean bin (nearest, lower on ties) always comes first
        cands = dist.topk(delta, dim=1, largest=False, sorted=True).indices
        gen = torch.Generator(device=ids.device).manual_seed(int(seed))
        new = sample_candidates(cands, alpha, gen).view_as(ids).to(ids.dtype)
        return Tokens(ids=new, lengths=tokens.lengths, num_samples=tokens.num_samples,
                      input_shape=tokens.input_shape, extras=dict(tokens.extras))
