"""Codebook entropy regulariser (MaskGIT / LlamaGen / FQGAN form).

With per-token code probabilities ``p = softmax(-d / T)`` over the K codes:
``loss = mean_tokens H(p) - H(mean_tokens p)``: low when each token is confident (low per-token
entropy) and the codebook is used evenly (high entropy of the average distribution).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["codebook_entropy_loss"]


def codebook_entropy_loss(distances: torch.Tensor, temperature: float = 0.01, eps: float = 1e-5) -> torch.Tensor:
    """distances ``[..., K]`` (squared distances to the K codes, lower = closer) -> scalar.

    temperature: softmax temperature on the negated distances (0.01 in FQGAN / LlamaGen).
    eps: added inside the log of the average distribution (official value 1e-5).
    Computed in float32 whatever the input dtype (AMP-safe).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = -distances.reshape(-1, distances.shape[-1]).float() / temperature
    log_probs = F.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    sample_entropy = -(probs * log_probs).sum(-1).mean()
    avg_probs = probs.mean(0)
    avg_entropy = -(avg_probs * (avg_probs + eps).log()).sum()
    return sample_entropy - avg_entropy
