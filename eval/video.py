"""Video fidelity: per-frame PSNR / SSIM / LPIPS over clips ``[B, 3, T, H, W]`` in [0, 1].

Every frame of every clip is one sample: values are means over all frames (the usual
"per-frame PSNR" of video tokenizer papers); ``per_clip()`` gives each clip's frame mean.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from zoo.modality import VIDEO

from .image import IMAGE_PROTOCOL, LPIPS, ImageFidelity

__all__ = ["frames_of", "VideoFidelity", "VIDEO_PROTOCOL"]

VIDEO_PROTOCOL = {"frames": "every frame of every clip is one image sample; mean over all frames",
                  **IMAGE_PROTOCOL}


def frames_of(clips: Tensor) -> Tensor:
    """``[B, 3, T, H, W]`` -> ``[B*T, 3, H, W]`` (clip-major)."""
    if not isinstance(clips, Tensor) or clips.dim() != 5 or clips.shape[1] != 3:
        raise ValueError(f"video clips must be [B, 3, T, H, W], got "
                         f"{tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__}")
    return VIDEO.network_view(clips)


class VideoFidelity(Metric):
    """Per-frame image metrics on clips: ``update(preds, target)`` ``[B, 3, T, H, W]``;
    ``compute() -> {name: mean over frames}``. metrics: subset of psnr, ssim, ms_ssim, lpips."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, metrics: Sequence[str] = ("psnr", "ssim"), lpips: LPIPS | None = None, **kwargs):
        super().__init__(**kwargs)
        image = tuple(m for m in metrics if m != "lpips")
        self.image = ImageFidelity(image) if image else None
        if "lpips" in metrics and lpips is None:
            lpips = LPIPS()
        self.lpips = lpips if "lpips" in metrics else None
        self.add_state("num_frames", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        p, t = frames_of(preds), frames_of(target)
        if p.shape != t.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        if self.image is not None:
            self.image.update(p, t)
        if self.lpips is not None:
            self.lpips.update(p, t)
        self.num_frames += p.shape[0]

    def compute(self) -> dict[str, Tensor]:
        out = dict(self.image.compute()) if self.image is not None else {}
        if self.lpips is not None:
            out["lpips"] = self.lpips.compute()
        return out

    def reset(self) -> None:
        super().reset()
        for m in (self.image, self.lpips):
            if m is not None:
                m.reset()
