"""Input checks shared by every tokenizer: clear errors instead of silent wrong answers."""
from __future__ import annotations

import math

import torch

__all__ = ["validate_image", "validate_video", "validate_audio", "validate_ids", "check_sample_rate"]

_RANGE_SLACK = 1e-3


def _as_float(x: torch.Tensor, what: str, expected: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor {expected}, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a float tensor {expected} (or uint8 in [0, 255]), got {x.dtype}")
    return x


def _check_range(x: torch.Tensor, lo: float, hi: float, what: str) -> None:
    if x.numel() == 0:
        raise ValueError(f"{what} is empty (shape {tuple(x.shape)})")
    # one fused reduction; a single host sync per batch is unavoidable for a range check
    mn, mx = torch.stack([x.amin(), x.amax()]).tolist()
    # amin/amax propagate NaN, so finite extremes prove the whole tensor finite (no slow isfinite pass)
    if not (math.isfinite(mn) and math.isfinite(mx)):
        raise ValueError(f"{what} contains NaN or inf")
    if not (mn >= lo - _RANGE_SLACK and mx <= hi + _RANGE_SLACK):
        raise ValueError(f"{what} values must lie in [{lo:g}, {hi:g}], got min {mn:.4g}, max {mx:.4g}"
                         + (" (images are [0, 1] floats, not [0, 255] or [-1, 1])" if lo == 0 else ""))


def validate_image(x: torch.Tensor) -> torch.Tensor:
    """Images: float ``[B, 3, H, W]`` in [0, 1] (uint8 accepted and converted)."""
    expected = "of shape [B, 3, H, W] in [0, 1]"
    x = _as_float(x, "image", expected)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"image must have shape [B, 3, H, W], got {tuple(x.shape)}"
                         + (" (add a batch dimension with x[None])" if x.dim() == 3 else ""))
    _check_range(x, 0.0, 1.0, "image")
    return x


def validate_video(x: torch.Tensor) -> torch.Tensor:
    """Video: float ``[B, 3, T, H, W]`` in [0, 1] (uint8 accepted and converted)."""
    expected = "of shape [B, 3, T, H, W] in [0, 1]"
    x = _as_float(x, "video", expected)
    if x.dim() != 5 or x.shape[1] != 3:
        raise ValueError(f"video must have shape [B, 3, T, H, W], got {tuple(x.shape)}")
    _check_range(x, 0.0, 1.0, "video")
    return x


def validate_audio(x: torch.Tensor) -> torch.Tensor:
    """Audio: float ``[B, T]`` or ``[B, 1, T]`` in [-1, 1], mono. Returns ``[B, T]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"audio must be a torch.Tensor of shape [B, T] or [B, 1, T], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"audio must be a float tensor in [-1, 1], got {x.dtype} "
                        "(convert int16 PCM with x.float() / 32768)")
    if x.dim() == 3:
        if x.shape[1] != 1:
            raise ValueError(f"audio must be mono: [B, 1, T], got {x.shape[1]} channels "
                             f"(shape {tuple(x.shape)}); mix down with x.mean(1, keepdim=True)")
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"audio must have shape [B, T] or [B, 1, T], got {tuple(x.shape)}"
                         + (" (add a batch dimension with x[None])" if x.dim() == 1 else ""))
    if x.shape[-1] == 0:
        raise ValueError("audio is empty (0 samples)")
    _check_range(x, -1.0, 1.0, "audio")
    return x


def check_sample_rate(sample_rate: int | None, expected: int) -> None:
    """Raise unless ``sample_rate`` (if given) equals the tokenizer's rate."""
    if sample_rate is not None and int(sample_rate) != int(expected):
        raise ValueError(f"audio sample rate is {sample_rate} Hz but this tokenizer expects {expected} Hz; "
                         f"resample first (zoo.audio.resample(x, {sample_rate}, {expected}))")


def validate_ids(ids: torch.Tensor, codebook_size) -> None:
    """Raise if any id is outside ``[0, codebook_size)`` (per group for tuple sizes)."""
    if ids.numel() == 0:
        raise ValueError(f"token ids are empty (shape {tuple(ids.shape)})")
    if isinstance(codebook_size, (tuple, list)):
        if ids.dim() != 3 or ids.shape[-1] != len(codebook_size):
            raise ValueError(f"ids must be [B, N, {len(codebook_size)}] for {len(codebook_size)} codebooks, "
                             f"got {tuple(ids.shape)}")
        sizes = torch.as_tensor(codebook_size, device=ids.device)
        bad = (ids < 0) | (ids >= sizes)
    else:
        bad = (ids < 0) | (ids >= codebook_size)
    if bad.any():
        lo, hi = int(ids.min()), int(ids.max())
        raise ValueError(f"token ids out of range: codebook size {codebook_size}, got ids in [{lo}, {hi}]")
