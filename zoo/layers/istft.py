"""Inverse STFT with "same" padding and the Vocos ISTFT head (spectrogram prediction -> waveform).

``ISTFT(spec)``: complex ``[B, n_fft // 2 + 1, F]`` -> real ``[B, F * hop_length]`` ("same" padding:
overlap-add, trim ``(win - hop) / 2`` samples on each side, divide by the summed squared window) or
``[B, (F - 1) * hop_length]`` ("center" padding, ``torch.istft``).
``ISTFTHead(x)``: features ``[B, F, dim]`` -> waveform, through a linear layer predicting log-magnitude
and phase of every bin.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear

__all__ = ["ISTFT", "ISTFTHead", "overlap_add"]


def overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """frames ``[B, W, F]`` (one window of W samples per column) -> ``[B, (F - 1) * hop + W]``."""
    b, w, f = frames.shape
    length = (f - 1) * hop_length + w
    out = F.fold(frames, output_size=(1, length), kernel_size=(1, w), stride=(1, hop_length))
    return out.reshape(b, length)


class ISTFT(nn.Module):
    """Inverse short-time Fourier transform with a periodic Hann window (buffer ``window``).

    n_fft: FFT size; hop_length: frame step; win_length: window length (default n_fft);
    padding: "same" (output ``F * hop`` samples, frames centred on ``hop`` multiples) or "center".
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None, padding: str = "same"):
        super().__init__()
        if padding not in ("same", "center"):
            raise ValueError(f"padding must be 'same' or 'center', got {padding!r}")
        win_length = n_fft if win_length is None else win_length
        if not 0 < hop_length <= win_length <= n_fft:
            raise ValueError(f"need 0 < hop_length <= win_length <= n_fft, got {hop_length}, {win_length}, {n_fft}")
        if padding == "same" and (win_length - hop_length) % 2:
            raise ValueError(f"'same' padding needs win_length - hop_length even, got {win_length} - {hop_length}")
        self.n_fft, self.hop_length, self.win_length, self.padding = n_fft, hop_length, win_length, padding
        self.register_buffer("window", torch.hann_window(win_length))

    def output_length(self, num_frames: int) -> int:
        """Number of samples produced for ``num_frames`` STFT frames."""
        if self.padding == "same":
            return num_frames * self.hop_length
        return (num_frames - 1) * self.hop_length

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.dim() != 3 or not spec.is_complex():
            raise ValueError(f"ISTFT expects a complex [B, {self.n_fft // 2 + 1}, F] spectrogram, "
                             f"got {spec.dtype} {tuple(spec.shape)}")
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True)
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")[:, : self.win_length]
        window = self.window.to(frames.dtype)
        frames = frames * window[None, :, None]
        num_frames = spec.shape[-1]
        pad = (self.win_length - self.hop_length) // 2
        y = overlap_add(frames, self.hop_length)
        envelope = overlap_add(window.square()[None, :, None].expand(1, -1, num_frames), self.hop_length)[0]
        end = y.shape[-1] - pad
        return y[:, pad:end] / envelope[pad:end]


class ISTFTHead(nn.Module):
    """Vocos head: ``out`` Linear(dim, n_fft + 2) -> log-magnitude (clipped at exp(.) <= 100) and
    phase for the ``n_fft // 2 + 1`` bins -> :class:`ISTFT`.

    x ``[B, F, dim]`` -> waveform ``[B, F * hop_length]`` (padding "same").
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same", max_magnitude: float = 100.0):
        super().__init__()
        self.out = Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft=n_fft, hop_length=hop_length, win_length=n_fft, padding=padding)
        self.max_magnitude = max_magnitude

    @property
    def hop_length(self) -> int:
        return self.istft.hop_length

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, F, dim]`` -> complex spectrogram ``[B, n_fft // 2 + 1, F]`` (float32 under AMP)."""
        x = self.out(x).transpose(1, 2).float()
        log_mag, phase = x.chunk(2, dim=1)
        mag = log_mag.exp().clamp(max=self.max_magnitude)
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.istft(self.spectrogram(x))
