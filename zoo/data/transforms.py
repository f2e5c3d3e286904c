"""Tensor transforms for training data, driven by an explicit ``torch.Generator``.

Every random choice takes a generator so that a sample's augmentation depends only on its
seed (see ``zoo.train.sampling``): data order and augmentations are reproducible, resumable
and independent of worker processes. Images are float ``[3, H, W]`` in [0, 1]; audio float
``[T]`` in [-1, 1].
"""
from __future__ import annotations

import torch

__all__ = ["generator", "random_crop", "center_crop", "ten_crop", "random_hflip", "random_segment",
           "center_segment", "peak_normalize"]


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (any int; reduced to 63 bits)."""
    g = torch.Generator()
    g.manual_seed(int(seed) % (2**63 - 1))
    return g


def _check_image(img: torch.Tensor, size: tuple[int, int]) -> None:
    if img.dim() != 3:
        raise ValueError(f"expected an image [C, H, W], got shape {tuple(img.shape)}")
    if img.shape[-2] < size[0] or img.shape[-1] < size[1]:
        raise ValueError(f"image {tuple(img.shape[-2:])} is smaller than the crop {size}")


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def random_crop(img: torch.Tensor, size: int | tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Uniformly placed ``size`` crop of ``img [C, H, W]``."""
    h, w = _pair(size)
    _check_image(img, (h, w))
    top = int(torch.randint(img.shape[-2] - h + 1, (1,), generator=gen))
    left = int(torch.randint(img.shape[-1] - w + 1, (1,), generator=gen))
    return img[:, top:top + h, left:left + w]


def center_crop(img: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    h, w = _pair(size)
    _check_image(img, (h, w))
    top, left = (img.shape[-2] - h) // 2, (img.shape[-1] - w) // 2
    return img[:, top:top + h, left:left + w]


def random_hflip(img: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    return img.flip(-1) if float(torch.rand((), generator=gen)) < p else img


def random_segment(wave: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """Random ``length``-sample window of ``wave [T]``; shorter clips are zero-padded at the end."""
    if wave.shape[-1] <= length:
        return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
    start = int(torch.randint(wave.shape[-1] - length + 1, (1,), generator=gen))
    return wave[..., start:start + length]


def center_segment(wave: torch.Tensor, length: int) -> torch.Tensor:
    if wave.shape[-1] <= length:
        return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
    start = (wave.shape[-1] - length) // 2
    return wave[..., start:start + length]


def peak_normalize(wave: torch.Tensor, peak: float = 0.95, eps: float = 1e-8) -> torch.Tensor:
    """Scale so that ``max |wave| == peak`` (silent clips are returned unchanged)."""
    if not 0.0 < peak <= 1.0:
        raise ValueError(f"peak must lie in (0, 1], got {peak}")
    m = wave.abs().amax()
    return wave if float(m) < eps else wave * (peak / m)


def ten_crop(img: torch.Tensor, size: int | tuple[int, int]) -> tuple[torch.Tensor, list[str]]:
    """The four corner crops and the centre crop of ``img [C, H, W]``, then their horizontal flips
    -> ``([10, C, h, w], names)`` (the views of torchvision's ``TenCrop``)."""
    h, w = _pair(size)
    _check_image(img, (h, w))
    H, W = img.shape[-2:]
    corners = {"top_left": (0, 0), "top_right": (0, W - w), "bottom_left": (H - h, 0),
               "bottom_right": (H - h, W - w), "center": ((H - h) // 2, (W - w) // 2)}
    crops = [img[:, t:t + h, l:l + w] for t, l in corners.values()]
    views = torch.stack(crops + [c.flip(-1) for c in crops])
    return views, list(corners) + [f"{n}_flip" for n in corners]
