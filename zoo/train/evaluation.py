"""Periodic held-out evaluation: reconstruct, measure, write sample reconstructions.

Images / video: PSNR (``eval.image.psnr``); audio: SI-SDR and log-mel L1 (``eval.audio``);
every modality: ``recon_mse`` and, for single-codebook tokenizers, ``codebook_usage`` (fraction
of codes used on the held-out set). Samples go to ``<out_dir>/samples/step_XXXXXXXX.*``.

The metric functions are imported from ``eval`` lazily, at evaluation time only: the one place
where ``zoo`` calls into ``eval`` (the training issue asks for ``eval/`` metrics during training;
``eval`` is installed with ``zoo``, and importing ``zoo`` never imports it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["evaluate", "reconstruct"]


def reconstruct(model, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Inference path ``decode(encode(x))``; models without it fall back to ``forward(x).recon``."""
    try:
        tokens = model.encode(x)
        return model.decode(tokens), tokens
    except NotImplementedError:
        out = model(x)
        return out.recon, out.tokens


def _psnr(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from eval.image import psnr  # lazy: eval ships in the same distribution (see module docstring)

    return psnr(preds.clamp(0, 1), target)


def _audio_metrics(preds: torch.Tensor, target: torch.Tensor, rate: int | None) -> dict[str, torch.Tensor]:
    from eval.audio import mel_distance, si_sdr

    out = {"si_sdr": si_sdr(preds, target)}
    if rate:
        out["mel_distance"] = mel_distance(preds, target, rate)
    return out


@torch.no_grad()
def evaluate(model, dataset, *, modality: str, num_samples: int = 8, batch_size: int = 4, out_dir: str | Path,
             step: int, save_samples: int = 4, device: torch.device | str = "cpu") -> dict[str, float]:
    """Evaluate ``model`` (a zoo Tokenizer, already in eval mode) on the first ``num_samples`` items."""
    n = min(int(num_samples), len(dataset))
    if n == 0:
        return {}
    sums: dict[str, float] = {}
    ids, originals, recons = [], [], []
    for start in range(0, n, batch_size):
        x = torch.stack([dataset[i] for i in range(start, min(n, start + batch_size))]).to(device)
        recon, tokens = reconstruct(model, x)
        recon = recon.float().reshape(x.shape) if recon.numel() == x.numel() else recon.float()
        per_item: dict[str, torch.Tensor] = {}
        if recon.shape == x.shape:
            per_item["recon_mse"] = (recon - x).square().flatten(1).mean(1)
            if modality == "image":
                per_item["psnr"] = _psnr(recon, x)
            elif modality == "video":
                per_item["psnr"] = _psnr(recon.transpose(1, 2).flatten(0, 1), x.transpose(1, 2).flatten(0, 1)
                                         ).view(x.shape[0], -1).mean(1)
            elif modality == "audio":
                per_item.update(_audio_metrics(recon.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1),
                                               getattr(model, "sample_rate", None)))
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
        _save(torch.cat(originals)[:save_samples], torch.cat(recons)[:save_samples], modality,
              Path(out_dir) / "samples", step, getattr(model, "sample_rate", None))
    return metrics


def _save(x: torch.Tensor, recon: torch.Tensor, modality: str, folder: Path, step: int, rate: int | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    if recon.shape != x.shape:
        return
    if modality == "image":
        from torchvision.utils import save_image

        save_image(torch.cat([x, recon.clamp(0, 1)]), folder / f"{name}.png", nrow=x.shape[0])
    elif modality == "video":  # one row of frames per clip: original above reconstruction
        from torchvision.utils import save_image

        rows = torch.cat([torch.stack([a, b]) for a, b in zip(x, recon.clamp(0, 1))])  # [2B, 3, T, H, W]
        save_image(rows.transpose(1, 2).flatten(0, 1), folder / f"{name}.png", nrow=x.shape[2])
    elif modality == "audio" and rate:
        from zoo.audio import save_audio

        for i, (a, b) in enumerate(zip(x.reshape(x.shape[0], -1), recon.reshape(x.shape[0], -1))):
            save_audio(folder / name / f"{i:02d}_original.wav", a, rate)
            save_audio(folder / name / f"{i:02d}_recon.wav", b, rate)
