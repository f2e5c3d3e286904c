"""Audio file I/O and resampling (soundfile; torchaudio 2.9 has no ``load`` backend).

Waveforms are float32 ``[C, T]`` in [-1, 1] when read; tokenizers take mono ``[B, T]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["load_audio", "save_audio", "resample", "to_mono"]


def load_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True,
               ) -> tuple[torch.Tensor, int]:
    """Read wav/flac/ogg. Returns ``(wave [C, T] float32 in [-1, 1], rate)``; ``[1, T]`` when mono.

    sample_rate: resample to this rate (returned rate is then ``sample_rate``).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    wave = torch.from_numpy(np.ascontiguousarray(data.T))
    if wave.shape[-1] == 0:
        raise ValueError(f"{path} holds no samples")
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None and sample_rate != rate:
        wave, rate = resample(wave, rate, sample_rate), sample_rate
    return wave, int(rate)


def to_mono(wave: torch.Tensor) -> torch.Tensor:
    """``[C, T]`` -> ``[1, T]`` by averaging channels."""
    return wave.mean(dim=0, keepdim=True) if wave.shape[0] > 1 else wave


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited (sinc, Hann window) resampling along the last axis."""
    if orig_rate == new_rate:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, int(orig_rate), int(new_rate))


def save_audio(path: str | os.PathLike, wave: torch.Tensor, sample_rate: int) -> Path:
    """Write ``[T]`` / ``[C, T]`` float audio (clipped to [-1, 1]) as 16-bit PCM (wav/flac) or ogg."""
    import soundfile as sf

    wave = wave.detach().float().cpu()
    if wave.dim() == 1:
        wave = wave[None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "PCM_16" if path.suffix.lower() in (".wav", ".flac") else None
    sf.write(str(path), wave.clamp(-1, 1).T.numpy(), int(sample_rate), subtype=subtype)
    return path
