"""Training-only dead-code restarts for a tokenizer's ``zoo.quant.VectorQuantizer`` (recipe ``model.setup``).

Why: a small TiTok trained from scratch collapses at once: the latent tokens' outputs hardly depend
on the image, every image gets the same ids (one code per position), the decoder can only learn
the mean photo and the straight-through gradient never moves a latent across a code boundary.
Re-seeding unused codes with current encoder outputs (as k-means init + dead-code replacement do
for EMA codebooks) puts codes where the latents are, so small image-dependent differences pick
different codes and learning starts.

``attach_code_restarts(model, ...)`` registers a forward hook on ``model.quantize`` (training mode
only): a running usage per code (1.0 = uniform use; every code starts at 1.0); after each training
batch, codes whose usage fell below ``dead_below`` are replaced by randomly chosen latents of that
batch (l2-normalised when the quantizer is) and get their usage reset to 1.0. The state dict is
unchanged (the usage lives outside it), so a resumed run gives such codes a fresh grace period.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["attach_code_restarts"]


def attach_code_restarts(model: nn.Module, decay: float = 0.9, dead_below: float = 0.03, noise: float = 0.01,
                         seed: int = 0, attr: str = "quantize") -> None:
    """Register the restart hook on ``getattr(model, attr)`` (a ``VectorQuantizer``)."""
    from zoo.quant import VectorQuantizer

    vq = getattr(model, attr, None)
    if not isinstance(vq, VectorQuantizer):
        raise TypeError(f"attach_code_restarts needs model.{attr} to be a VectorQuantizer, got {type(vq).__name__}")
    if not 0.0 < decay < 1.0 or dead_below <= 0.0:
        raise ValueError(f"need 0 < decay < 1 and dead_below > 0, got {decay}, {dead_below}")
    k = vq.codebook_size
    usage = torch.ones(k)
    gen = torch.Generator().manual_seed(int(seed))
    restarts = [0]

    def hook(module: nn.Module, args, out) -> None:
        if not module.training:
            return
        with torch.no_grad():
            z = args[0].detach().float().movedim(module.channel_dim, -1).reshape(-1, module.dim)
            if module.l2_norm:
                z = F.normalize(z, dim=-1)
            counts = torch.bincount(out.ids.detach().reshape(-1).cpu(), minlength=k).float()
            usage.mul_(decay).add_(counts * (k / counts.sum().clamp_min(1.0)), alpha=1.0 - decay)
            dead = (usage < dead_below).nonzero().flatten()
            if dead.numel() == 0:
                return
            pick = torch.randint(z.shape[0], (dead.numel(),), generator=gen)
            new = z.cpu()[pick] + noise * torch.randn(dead.numel(), module.dim, generator=gen)
            weight = module.embedding.weight
            weight.data[dead.to(weight.device)] = new.to(weight.device, weight.dtype)
            usage[dead] = 1.0
            restarts[0] += int(dead.numel())
            module.restarted_codes = restarts[0]  # plain attribute: visible for debugging, not saved

    vq.register_forward_hook(hook)
