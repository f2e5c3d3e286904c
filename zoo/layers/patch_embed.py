"""Patch embeddings and their inverses.

``PatchEmbed2d``: ``[B, C, H, W]`` -> ``[B, (H/p)*(W/p), D]``;
``PatchEmbed3d``: ``[B, C, T, H, W]`` -> ``[B, (T/pt)*(H/p)*(W/p), D]`` (tubelets).
``unpatchify_2d`` / ``unpatchify_3d`` turn per-token pixel vectors back into a signal.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

__all__ = ["PatchEmbed2d", "PatchEmbed3d", "unpatchify_2d", "unpatchify_3d"]


class PatchEmbed2d(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch_size: int, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)


class PatchEmbed3d(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch_size: int, tubelet: int, bias: bool = True):
        super().__init__()
        self.patch_size, self.tubelet = patch_size, tubelet
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=(tubelet, patch_size, patch_size),
                              stride=(tubelet, patch_size, patch_size), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[-3:]
        if t % self.tubelet or h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input size {t}x{h}x{w} is not a multiple of the tubelet "
                             f"{self.tubelet}x{self.patch_size}x{self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)


def unpatchify_2d(tokens: torch.Tensor, grid: tuple[int, int], patch_size: int, channels: int) -> torch.Tensor:
    """``[B, gh*gw, p*p*C]`` (pixel order p1 p2 c) -> ``[B, C, gh*p, gw*p]``."""
    gh, gw = grid
    return rearrange(tokens, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=gh, w=gw, p1=patch_size,
                     p2=patch_size, c=channels)


def unpatchify_3d(tokens: torch.Tensor, grid: tuple[int, int, int], patch_size: int, tubelet: int,
                  channels: int) -> torch.Tensor:
    """``[B, gt*gh*gw, pt*p*p*C]`` -> ``[B, C, gt*pt, gh*p, gw*p]``."""
    gt, gh, gw = grid
    return rearrange(tokens, "b (t h w) (pt p1 p2 c) -> b c (t pt) (h p1) (w p2)", t=gt, h=gh, w=gw,
                     pt=tubelet, p1=patch_size, p2=patch_size, c=channels)
