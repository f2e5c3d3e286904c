"""Periodic held-out evaluation: reconstruct, measure, write sample reconstructions.

The modality object (:mod:`zoo.modality`) gives the per-item metrics (``quick_metrics``: PSNR for
images and video frames, SI-SDR and log-mel L1 for audio, from :mod:`zoo.fidelity`, the functions
``eval`` reports too) and writes the samples (``save_samples``); every modality adds ``recon_mse``
and, for single-codebook tokenizers, ``codebook_usage`` (fraction of codes used on the held-out
set). Samples go to ``<out_dir>/samples/step_XXXXXXXX.*``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..modality import Modality, modality_named

__all__ = ["evaluate", "reconstruct"]


def reconstruct(model, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Inference path ``decode(encode(x))``; models without it fall back to ``forward(x).recon``."""
    try:
        tokens = model.encode(x)
        return model.decode(tokens), tokens
    except NotImplementedError:
        out = model(x)
        return out.recon, out.tokens


@torch.no_grad()
def evaluate(model, dataset, *, modality: Modality | str, num_samples: int = 8, batch_size: int = 4, out_dir: str | Path,
             step: int, save_samples: int = 4, device: torch.device | str = "cpu") -> dict[str, float]:
    """Evaluate ``model`` (a zoo Tokenizer, already in eval mode) on the first ``num_samples`` items."""
    n = min(int(num_samples), len(dataset))
    if n == 0:
        return {}
    modality, rate = modality_named(modality), getattr(model, "sample_rate", None)
    sums: dict[str, float] = {}
    ids, originals, recons = [], [], []
    for start in range(0, n, batch_size):
        x = torch.stack([dataset[i] for i in range(start, min(n, start + batch_size))]).to(device)
        recon, tokens = reconstruct(model, x)
        recon = recon.float().reshape(x.shape) if recon.numel() == x.numel() else recon.float()
        per_item: dict[str, torch.Tensor] = {}
        if recon.shape == x.shape:
            per_item["recon_mse"] = (recon - x).square().flatten(1).mean(1)
            per_item.update(modality.quick_metrics(recon, x, rate))
        for k, v in per_item.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
        if tokens is not None and getattr(tokens, "ids", None) is not None:
            ids.append(tokens.ids.reshape(-1).cpu())
        if len(originals) < save_samples:
            originals.append(x.cpu())
            recons.append(recon.cpu())
    metrics = {k: v / n for k, v in sums.items()}
    size = getattr(model, "codebook_size", None)
    if ids and isinstance(size, int):
        metrics["codebook_usage"] = torch.cat(ids).unique().numel() / size
    if save_samples > 0 and originals:
        x, recon = torch.cat(originals)[:save_samples], torch.cat(recons)[:save_samples]
        folder = Path(out_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        if recon.shape == x.shape:
            modality.save_samples(folder, f"step_{step:08d}", x, recon, rate)
    return metrics

