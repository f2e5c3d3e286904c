"""Audio file I/O and resampling (soundfile; torchaudio 2.9 has no ``load`` backend).

Waveforms are float32 ``[C, T]`` in [-1, 1] when read; tokenizers take mono ``[B, T]``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np
import torch

__all__ = ["read_audio", "load_audio", "save_audio", "resample", "to_mono"]


def read_audio(source: str | os.PathLike | IO[bytes]) -> tuple[torch.Tensor, int]:
    """Read wav/flac/ogg from a path or binary file object -> ``(wave [C, T] float32 in [-1, 1], rate)``.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a file that cannot be
    decoded or holds no samples.
    """
    import soundfile as sf

    name = getattr(source, "name", source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise FileNotFoundError(f"audio file not found: {source}")
    try:
        data, rate = sf.read(source if not isinstance(source, os.PathLike) else str(source), dtype="float32",
                             always_2d=True)  # [T, C]
    except RuntimeError as e:  # soundfile.LibsndfileError: not a readable audio file
        raise ValueError(f"cannot read audio {name}: {e}") from None
    wave = torch.from_numpy(np.ascontiguousarray(data.T))
    if wave.shape[-1] == 0:
        raise ValueError(f"{name} holds no samples")
    return wave, int(rate)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True,
               ) -> tuple[torch.Tensor, int]:
    """Read wav/flac/ogg. Returns ``(wave [C, T] float32 in [-1, 1], rate)``; ``[1, T]`` when mono.

    sample_rate: resample to this rate (returned rate is then ``sample_rate``).
    """
    wave, rate = read_audio(path)
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
