"""Evaluation reports: ``report.json`` (metric -> value + protocol), ``report.md`` and PNG figures.

Figures: reconstruction grid (images), frame strips (video), waveform + spectrogram
comparison (audio), and quality-vs-tokens curves for variable-length tokenizers. Matplotlib
runs headless (Agg).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["to_jsonable", "write_report", "write_table", "render_markdown", "save_figure", "recon_grid", "frame_strips",
           "audio_comparison", "tokens_curve"]


def to_jsonable(value: Any) -> Any:
    """Tensors / numpy values -> floats and lists; dicts and sequences recursively; NaN -> None."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        if len(value) > 8:
            return f"[{len(value)} values, mean {sum(v for v in value if v is not None) / max(1, len(value)):.4f}]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def render_markdown(report: dict) -> str:
    """The markdown version of a report dict (as written by :func:`write_report`)."""
    lines = [f"# Evaluation of {report.get('tokenizer', '?')}", ""]
    for key in ("modality", "data", "num_samples", "input", "device", "world_size", "weights", "date"):
        if key in report:
            lines.append(f"- **{key}**: {_fmt(report[key])}")
    lines += ["", "| metric | value | protocol |", "|---|---|---|"]
    for name, entry in report.get("metrics", {}).items():
        proto = "; ".join(f"{k}: {_fmt(v)}" for k, v in (entry.get("protocol") or {}).items())
        lines.append(f"| {entry.get('label', name)} | {_fmt(entry.get('value'))} | {proto.replace('|', '/')} |")
    if report.get("skipped"):
        lines += ["", "## Not computed", ""]
        lines += [f"- **{k}**: {v}" for k, v in report["skipped"].items()]
    curve = report.get("curve")
    if curve:
        lines += ["", f"## Quality vs number of tokens (decode argument `{curve['arg']}`)", "",
                  "| tokens | " + " | ".join(k for k in curve if k not in ("arg", "tokens")) + " |",
                  "|---" * (1 + sum(k not in ("arg", "tokens") for k in curve)) + "|"]
        for i, t in enumerate(curve["tokens"]):
            vals = [_fmt(curve[k][i]) for k in curve if k not in ("arg", "tokens")]
            lines.append(f"| {t} | " + " | ".join(vals) + " |")
    if report.get("figures"):
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in report["figures"]]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | os.PathLike, report: dict) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomically); returns both paths."""
    from zoo.checkpoint import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = to_jsonable(report)
    paths = []
    for name, text in (("report.json", json.dumps(data, indent=2)), ("report.md", render_markdown(data))):
        with atomic_path(out / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        paths.append(out / name)
    return paths[0], paths[1]


def write_table(rows: list[dict], out_dir: str | os.PathLike, stem: str, header: list[str],
                cells) -> Path:
    """``<stem>.json`` (the rows) and ``<stem>.md`` (a Markdown table: ``header``, then
    ``cells(row)`` -> one string per column for each row) in ``out_dir``; returns the .md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(to_jsonable(rows), indent=2))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    path = out / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt



def save_figure(fig, path: str | os.PathLike, title: str | None = None) -> Path:
    """Optional suptitle, tight layout, write ``path`` (PNG, 100 dpi), close the figure."""
    plt = _plt()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

def _img(x: torch.Tensor):
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def recon_grid(path: str | os.PathLike, originals: torch.Tensor, recons: torch.Tensor, max_items: int = 8,
               title: str | None = None) -> Path:
    """Originals (top row) over reconstructions (bottom row); images ``[N, 3, H, W]`` in [0, 1]."""
    plt = _plt()
    n = min(max_items, originals.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.3), squeeze=False)
    for i in range(n):
        for row, src in enumerate((originals, recons)):
            ax = axes[row][i]
            ax.imshow(_img(src[i]))
            ax.set_xticks([]), ax.set_yticks([])
        axes[0][i].set_title(f"#{i}", fontsize=8)
    axes[0][0].set_ylabel("input")
    axes[1][0].set_ylabel("reconstruction")
    return save_figure(fig, path, title)


def frame_strips(path: str | os.PathLike, originals: torch.Tensor, recons: torch.Tensor, max_clips: int = 2,
                 max_frames: int = 8, title: str | None = None) -> Path:
    """Per clip: a strip of input frames over a strip of reconstructed frames (``[N, 3, T, H, W]``)."""
    plt = _plt()
    n = min(max_clips, originals.shape[0])
    t_total = originals.shape[2]
    frames = sorted({round(i * (t_total - 1) / max(1, min(max_frames, t_total) - 1))
                     for i in range(min(max_frames, t_total))})
    fig, axes = plt.subplots(2 * n, len(frames), figsize=(1.6 * len(frames), 3.4 * n), squeeze=False)
    for c in range(n):
        for row, src in enumerate((originals, recons)):
            for j, t in enumerate(frames):
                ax = axes[2 * c + row][j]
                ax.imshow(_img(src[c, :, t]))
                ax.set_xticks([]), ax.set_yticks([])
                if 2 * c + row == 0:
                    ax.set_title(f"t={t}", fontsize=8)
            axes[2 * c + row][0].set_ylabel(f"clip {c} " + ("input" if row == 0 else "recon"), fontsize=8)
    return save_figure(fig, path, title)


def audio_comparison(path: str | os.PathLike, original: torch.Tensor, recon: torch.Tensor, sample_rate: int,
                     title: str | None = None) -> Path:
    """Waveforms and log-mel spectrograms of one clip and its reconstruction (``[T]`` in [-1, 1])."""
    import torchaudio

    plt = _plt()
    original, recon = original.detach().float().cpu().flatten(), recon.detach().float().cpu().flatten()
    n = min(original.numel(), recon.numel())
    original, recon = original[:n], recon[:n]
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80)
    t = torch.arange(n) / sample_rate
    fig, axes = plt.subplots(2, 2, figsize=(11, 5.5), squeeze=False)
    for col, (name, wave) in enumerate((("input", original), ("reconstruction", recon))):
        axes[0][col].plot(t.numpy(), wave.numpy(), lw=0.5)
        axes[0][col].set_ylim(-1, 1)
        axes[0][col].set_title(f"{name} waveform", fontsize=9)
        axes[0][col].set_xlabel("s")
        spec = mel(wave[None])[0].clamp_min(1e-5).log().numpy()
        axes[1][col].imshow(spec, origin="lower", aspect="auto", extent=(0, n / sample_rate, 0, spec.shape[0]))
        axes[1][col].set_title(f"{name} log-mel spectrogram", fontsize=9)
        axes[1][col].set_xlabel("s")
        axes[1][col].set_ylabel("mel bin")
    return save_figure(fig, path, title)


def tokens_curve(path: str | os.PathLike, tokens: list[int], series: dict[str, list[float]],
                 title: str | None = None) -> Path:
    """Quality vs number of tokens: one panel per series (e.g. PSNR, rFID); log2 x axis."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.5), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items()):
        pts = [(t, v) for t, v in zip(tokens, values) if v is not None and math.isfinite(v)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tokens")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title)
