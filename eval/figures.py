"""Demo figure: log-mel spectrograms of speech clips and their reconstructions by several codecs.

(The image grid of the demo is :func:`eval.report.recon_grid`.)
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["spectrogram_comparison", "DISPLAY_RATE"]

#: every wave is resampled to this rate so that all panels share one frequency axis (0-8 kHz)
DISPLAY_RATE = 16000


def _log_mel(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[T]`` at ``sample_rate`` -> natural-log mel ``[80, frames]`` at :data:`DISPLAY_RATE`."""
    import torchaudio

    from zoo.audio import resample

    wave = wave.detach().float().cpu().flatten()
    if sample_rate != DISPLAY_RATE:
        wave = resample(wave[None], sample_rate, DISPLAY_RATE)[0]
    mel = torchaudio.transforms.MelSpectrogram(DISPLAY_RATE, n_fft=1024, hop_length=160, n_mels=80)
    return mel(wave[None])[0].clamp_min(1e-5).log()


def spectrogram_comparison(path: str | os.PathLike, clips: list[tuple[str, list[tuple[str, torch.Tensor, int]]]],
                           title: str | None = None) -> Path:
    """One column per clip, one row per version (original first, then each reconstruction).

    clips: ``[(clip_name, [(label, wave [T] in [-1, 1], sample_rate), ...]), ...]``; every clip
    lists the same labels in the same order. Colour scale shared within a column.
    """
    from eval.report import _plt, save_figure

    if not clips or not clips[0][1]:
        raise ValueError("spectrogram_comparison needs at least one clip with one version")
    labels = [label for label, _, _ in clips[0][1]]
    for name, versions in clips:
        if [label for label, _, _ in versions] != labels:
            raise ValueError(f"clip {name!r} lists versions {[v[0] for v in versions]}, expected {labels}")
    plt = _plt()
    rows, cols = len(labels), len(clips)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 1.9 * rows + 0.6), squeeze=False)
    for c, (name, versions) in enumerate(clips):
        specs = [_log_mel(w, sr) for _, w, sr in versions]
        lo, hi = min(float(s.min()) for s in specs), max(float(s.max()) for s in specs)
        for r, ((label, wave, sr), spec) in enumerate(zip(versions, specs)):
            ax = axes[r][c]
            seconds = wave.numel() / sr
            ax.imshow(spec.numpy(), origin="lower", aspect="auto", vmin=max(lo, hi - 12.0), vmax=hi,
                      extent=(0, seconds, 0, spec.shape[0]), cmap="magma")
            ax.set_title(f"{name}: {label}", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel("mel bin (0-8 kHz)", fontsize=7)
            if r == rows - 1:
                ax.set_xlabel("s", fontsize=7)
    return save_figure(fig, path, title)
