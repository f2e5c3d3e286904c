"""Log-mel spectrogram and the mel L1 reconstruction loss of Vocos / WavTokenizer / HiFi-GAN.

``MelSpectrogram(x [B, T] or [B, 1, T]) -> log mel [B, n_mels, frames]`` (magnitude STFT with a
periodic Hann window, HTK mel filters as ``torchaudio.transforms.MelSpectrogram``,
``log(clamp(mel, min=clip))``). Buffers are non-persistent, so a tokenizer holding this loss keeps
a clean state dict.
``MelL1Loss(recon, target)``: mean absolute difference of the two log-mels (a scalar).
``MultiScaleMelL1Loss``: the mean of :class:`MelL1Loss` over several FFT sizes.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MelSpectrogram", "MelL1Loss", "MultiScaleMelL1Loss"]


class MelSpectrogram(nn.Module):
    """Log-mel spectrogram; defaults are the WavTokenizer / Vocos training loss settings
    (24 kHz, n_fft 1024, hop 256, 100 mels, centred frames, power 1, clip 1e-7)."""

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100,
                 win_length: int | None = None, f_min: float = 0.0, f_max: float | None = None,
                 center: bool = True, power: float = 1.0, clip: float = 1e-7, mel_scale: str = "htk"):
        super().__init__()
        import torchaudio.functional as AF

        self.n_fft, self.hop_length = n_fft, hop_length
        self.win_length = win_length or n_fft
        self.center, self.power, self.clip = center, power, clip
        fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min, f_max if f_max is not None else sample_rate / 2, n_mels,
                                sample_rate, norm=None, mel_scale=mel_scale)
        self.register_buffer("fb", fb, persistent=False)  # [n_freqs, n_mels]
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"MelSpectrogram expects mono [B, T] or [B, 1, T], got {tuple(x.shape)}")
            x = x[:, 0]
        if x.dim() != 2:
            raise ValueError(f"MelSpectrogram expects [B, T] or [B, 1, T], got {tuple(x.shape)}")
        spec = torch.stft(x.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=self.center,
                          pad_mode="reflect", return_complex=True).abs()
        if self.power != 1.0:
            spec = spec.pow(self.power)
        mel = torch.matmul(spec.transpose(1, 2), self.fb).transpose(1, 2)
        return mel.clamp_min(self.clip).log()


class MelL1Loss(nn.Module):
    """L1 between log-mels of ``recon`` and ``target`` (same shapes ``[B, T]``); kwargs go to
    :class:`MelSpectrogram`."""

    def __init__(self, **mel_kwargs):
        super().__init__()
        self.mel = MelSpectrogram(**mel_kwargs)

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if recon.shape != target.shape:
            raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ in shape")
        return F.l1_loss(self.mel(recon), self.mel(target))


class MultiScaleMelL1Loss(nn.Module):
    """Mean of :class:`MelL1Loss` over ``n_ffts`` (hop = n_fft / 4; mels per scale ``n_mels``)."""

    def __init__(self, sample_rate: int = 24000, n_ffts: Sequence[int] = (512, 1024, 2048),
                 n_mels: Sequence[int] = (40, 80, 160), **mel_kwargs):
        super().__init__()
        if len(n_ffts) != len(n_mels):
            raise ValueError("n_ffts and n_mels must have the same length")
        self.losses = nn.ModuleList([MelL1Loss(sample_rate=sample_rate, n_fft=n, hop_length=n // 4, n_mels=m,
                                               **mel_kwargs) for n, m in zip(n_ffts, n_mels)])

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(loss(recon, target) for loss in self.losses) / len(self.losses)
