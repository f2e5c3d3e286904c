"""Vocoders for dMel: log10-mel frames -> waveform.

- :func:`griffin_lim`: dependency-free, untrained: pseudo-inverse of the mel filterbank to get a
  linear magnitude spectrogram, then fast Griffin-Lim (momentum 0.99) with the same STFT as the
  features (``torch.stft`` / ``torch.istft``).
- :class:`VocosVocoder`: trainable Vocos-style vocoder (``zoo.layers.vocos.VocosBackbone`` +
  ``zoo.layers.istft.ISTFTHead``, "same" padding: one hop of samples per mel frame).
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.istft import ISTFTHead
from ..layers.vocos import VocosBackbone

__all__ = ["mel_to_linear", "griffin_lim", "VocosVocoder"]


def mel_to_linear(mel_mag: torch.Tensor, inverse_fbank: torch.Tensor) -> torch.Tensor:
    """Mel magnitudes ``[B, F, n_mels]`` -> non-negative linear magnitudes ``[B, n_fft//2+1, F]``.

    inverse_fbank: ``[n_mels, n_fft//2+1]`` pseudo-inverse of the ``[n_fft//2+1, n_mels]`` filterbank.
    """
    return (mel_mag @ inverse_fbank).clamp_min(0).transpose(1, 2)


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop_length: int, win_length: int, window: torch.Tensor,
                n_iter: int = 32, momentum: float = 0.99, length: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al., 2013): magnitude ``[B, n_fft//2+1, F]`` -> wave ``[B, length]``.

    The initial phase is random (``generator`` for reproducibility) or zero when ``n_iter`` is 0.
    ``length`` defaults to ``(F - 1) * hop_length`` (centred frames).
    """
    if n_iter < 0 or not 0 <= momentum < 1:
        raise ValueError(f"need n_iter >= 0 and 0 <= momentum < 1, got {n_iter}, {momentum}")
    mag = magnitude.float()
    if length is None:
        length = (mag.shape[-1] - 1) * hop_length
    stft = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window.to(mag.device), center=True)
    if n_iter > 0:
        phase = torch.rand(mag.shape, generator=generator, device="cpu").to(mag.device) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(mag), phase)
    else:
        angles = torch.ones_like(mag, dtype=torch.complex64)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        wave = torch.istft(mag * angles, length=length, **stft)
        rebuilt = torch.stft(wave, return_complex=True, pad_mode="reflect", **stft)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return torch.istft(mag * angles, length=length, **stft)


class VocosVocoder(nn.Module):
    """Log10-mel ``[B, F, n_mels]`` -> waveform ``[B, F * hop_length]``.

    The input is standardised with fixed ``(x - center) / scale`` (dMel values lie in
    [min_value, max_value]), then VocosBackbone (ConvNeXt) and a Vocos ISTFT head.
    """

    def __init__(self, n_mels: int = 80, dim: int = 512, intermediate_dim: int = 1536, num_layers: int = 8,
                 n_fft: int = 1024, hop_length: int = 200, center: float = -2.5, scale: float = 4.5):
        super().__init__()
        self.n_mels, self.center, self.scale = n_mels, float(center), float(scale)
        self.backbone = VocosBackbone(n_mels, dim, intermediate_dim, num_layers)
        self.head = ISTFTHead(dim, n_fft, hop_length, padding="same")

    @property
    def hop_length(self) -> int:
        return self.head.hop_length

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        if log_mel.dim() != 3 or log_mel.shape[-1] != self.n_mels:
            raise ValueError(f"VocosVocoder expects log-mel [B, F, {self.n_mels}], got {tuple(log_mel.shape)}")
        x = ((log_mel - self.center) / self.scale).transpose(1, 2)
        return self.head(self.backbone(x))
