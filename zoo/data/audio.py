"""Audio folders as training datasets: mono, resampled, peak-normalised, cropped segments.

Items are float ``[segment]`` in [-1, 1] at ``sample_rate``. ``dataset[i]`` is the centre
segment (deterministic); ``dataset[(i, seed)]`` a random segment chosen by that seed.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from .transforms import center_segment, generator, peak_normalize, random_segment

__all__ = ["AUDIO_EXTENSIONS", "list_audio", "AudioFolder"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus")
_OFFLINE = {"offline:speech_nl": "nl", "offline:speech_en": "en", "offline:speech_alsa": "alsa"}


def list_audio(root: str | os.PathLike) -> list[Path]:
    """Sorted audio files under ``root`` (recursive); ``"offline:speech_nl"`` / ``_en`` / ``_alsa``
    name the offline speech corpora."""
    if str(root) in _OFFLINE:
        from .offline import speech_paths

        return speech_paths(_OFFLINE[str(root)])
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}")
    return paths


def _frames(path: Path) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(path)).frames)
    except RuntimeError:  # unreadable header: let the loader raise its own error later
        return -1


class AudioFolder(torch.utils.data.Dataset):
    """paths: audio files; sample_rate: target rate (resampled on load); segment: samples per
    item (or ``segment_seconds``); peak: peak-normalise each clip to this level (None: off);
    random_crop: random segment for seeded items; preload: keep decoded clips in memory."""

    def __init__(self, paths: list[str | os.PathLike], sample_rate: int, segment: int | None = None,
                 segment_seconds: float | None = None, peak: float | None = 0.95, random_crop: bool = True,
                 preload: bool = False):
        if not paths:
            raise ValueError("AudioFolder needs at least one audio path")
        if (segment is None) == (segment_seconds is None):
            raise ValueError("give exactly one of segment (samples) or segment_seconds")
        self.paths = [Path(p) for p in paths]
        empty = [p for p in self.paths if p.is_file() and _frames(p) == 0]
        if empty:  # e.g. two fillets-ng utterances are zero-length files
            warnings.warn(f"AudioFolder skips {len(empty)} audio file(s) holding no samples: {[str(p) for p in empty]}")
            self.paths = [p for p in self.paths if p not in empty]
            if not self.paths:
                raise ValueError("AudioFolder: every audio file is empty")
        self.sample_rate = int(sample_rate)
        self.segment = int(segment) if segment is not None else int(round(segment_seconds * self.sample_rate))
        if self.segment <= 0:
            raise ValueError(f"segment must be positive, got {self.segment}")
        self.peak, self.random_crop = peak, bool(random_crop)
        self._cache = [self._load(p) for p in self.paths] if preload else None

    def _load(self, path: Path) -> torch.Tensor:
        from ..audio import load_audio

        wave, _ = load_audio(path, sample_rate=self.sample_rate)
        wave = wave[0].clamp(-1, 1)
        return peak_normalize(wave, self.peak) if self.peak else wave

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int, gen: torch.Generator | None = None) -> torch.Tensor:
        wave = self._cache[index] if self._cache is not None else self._load(self.paths[index])
        if gen is not None and self.random_crop:
            return random_segment(wave, self.segment, gen).contiguous()
        return center_segment(wave, self.segment).contiguous()

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, seed = item
            return self.get(int(index), generator(seed))
        return self.get(int(item))
