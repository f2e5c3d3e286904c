"""Demo figures: log-mel spectrograms of speech clips and their reconstructions by several codecs,
and rate-distortion panels (quality vs bits, learned tokenizers next to classic codecs).

(The image grid of the demo is :func:`eval.report.recon_grid`.)
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["spectrogram_comparison", "rate_distortion", "DISPLAY_RATE"]

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


def rate_distortion(path: str | os.PathLike, panels: list[dict], title: str | None = None, cols: int = 3) -> Path:
    """Quality vs bits, one panel per dict: ``{"title", "xlabel", "ylabel", "series": [...]}``; each
    series ``{"label", "x": [...], "y": [...], "learned": bool}`` (several points are joined by a
    line; learned tokenizers are drawn with filled markers, classic codecs with open ones). Log x axis;
    at most ``cols`` panels per row.
    """
    from eval.report import _plt, save_figure

    if not panels:
        raise ValueError("rate_distortion needs at least one panel")
    plt = _plt()
    ncols = min(cols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    markers = "osD^vP*Xh<>p"
    for ax, panel in zip(axes.flat, panels):
        for i, s in enumerate(panel["series"]):
            if len(s["x"]) != len(s["y"]) or not s["x"]:
                raise ValueError(f"series {s.get('label')!r}: x and y must be non-empty and equally long")
            learned = bool(s.get("learned"))
            ax.plot(s["x"], s["y"], marker=markers[i % len(markers)], linestyle="-" if len(s["x"]) > 1 else "none",
                    markersize=8 if learned else 6, markerfacecolor=None if learned else "none",
                    linewidth=2.0 if learned else 1.0, label=s["label"])
        ax.set_xscale("log")
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path, title)
