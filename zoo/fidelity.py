"""Signal fidelity functions shared by training (quick held-out metrics) and ``eval``.

- :func:`psnr`: per-image PSNR in dB, data range 1 (images ``[B, 3, H, W]`` in [0, 1] or uint8).
- :func:`si_sdr`: scale-invariant SDR in dB of zero-mean signals along the last axis (float64).
- :func:`mel_distance`: mean |natural-log mel magnitude difference| per clip (``torchaudio``
  MelSpectrogram, power 1, HTK mel scale, no filter normalisation, reflect-padded centred frames,
  log floor 1e-5); defaults ``n_fft=1024, hop=256, n_mels=80``.

``eval.image`` / ``eval.audio`` re-export them next to their streaming metrics; ``zoo`` never
imports ``eval``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["psnr", "si_sdr", "mel_distance", "check_image_pair"]


def check_image_pair(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Both float32 ``[B, 3, H, W]`` (uint8 scaled to [0, 1]); ``ValueError`` / ``TypeError`` otherwise."""
    for name, x in (("preds", preds), ("target", target)):
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name} must be images [B, 3, H, W], got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
    if preds.dtype == torch.uint8:
        preds = preds.float() / 255
    if target.dtype == torch.uint8:
        target = target.float() / 255
    if not preds.is_floating_point() or not target.is_floating_point():
        raise TypeError(f"images must be float in [0, 1] or uint8, got {preds.dtype} / {target.dtype}")
    return preds.float(), target.float()


def psnr(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB ``[B]`` (data range 1)."""
    preds, target = check_image_pair(preds, target)
    mse = (preds.double() - target.double()).square().flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).float()


def si_sdr(preds: Tensor, target: Tensor, eps: float = 1e-12) -> Tensor:
    """Scale-invariant SDR in dB along the last axis: ``[..., T] -> [...]`` (float64)."""
    p = preds.double() - preds.double().mean(-1, keepdim=True)
    t = target.double() - target.double().mean(-1, keepdim=True)
    alpha = (p * t).sum(-1, keepdim=True) / ((t * t).sum(-1, keepdim=True) + eps)
    proj = alpha * t
    noise = p - proj
    return 10 * torch.log10(((proj * proj).sum(-1) + eps) / ((noise * noise).sum(-1) + eps))


def _mel_transform(sample_rate: int, n_fft: int, hop_length: int, n_mels: int, f_min: float,
                   f_max: float | None):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, f_min=f_min, f_max=f_max,
        power=1.0, center=True, pad_mode="reflect", norm=None, mel_scale="htk")


def mel_distance(preds: Tensor, target: Tensor, sample_rate: int, n_fft: int = 1024, hop_length: int = 256,
                 n_mels: int = 80, f_min: float = 0.0, f_max: float | None = None, floor: float = 1e-5) -> Tensor:
    """Mean |log mel(preds) - log mel(target)| per clip: ``[B, T] x2 -> [B]`` (see module docstring)."""
    mel = _mel_transform(sample_rate, n_fft, hop_length, n_mels, f_min, f_max).to(preds.device)
    lp = mel(preds.float()).clamp_min(floor).log()
    lt = mel(target.float()).clamp_min(floor).log()
    return (lp - lt).abs().mean(dim=(-2, -1))
