"""Fixed sin-cos position embeddings (1D, 2D, 3D) as ``[N, D]`` float32 tensors.

Layout follows the MAE / ViT convention: for 2D, the first half of the channels encodes the
row (height) index and the second half the column index; within each half,
``[sin(pos * w_i), cos(pos * w_i)]`` with ``w_i = 1 / 10000^(i / (D_half / 2))``.
"""
from __future__ import annotations

import torch

__all__ = ["sincos_1d", "sincos_2d", "sincos_3d"]


def sincos_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """positions ``[N]`` (any real values) -> ``[N, dim]``; dim must be even."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dim, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / temperature ** omega
    out = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def sincos_2d(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Grid ``height x width`` (row-major) -> ``[height*width, dim]``; dim divisible by 4."""
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs dim divisible by 4, got {dim}")
    gh, gw = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([sincos_1d(gh.flatten(), dim // 2, temperature),
                      sincos_1d(gw.flatten(), dim // 2, temperature)], dim=1)


def sincos_3d(frames: int, height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Grid ``frames x height x width`` -> ``[T*H*W, dim]``: dim/4 for time, 3/8 each for rows / cols."""
    if dim % 16:
        raise ValueError(f"3D sin-cos embedding needs dim divisible by 16, got {dim}")
    dt, ds = dim // 4, (dim - dim // 4) // 2
    gt, gh, gw = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([sincos_1d(gt.flatten(), dt, temperature), sincos_1d(gh.flatten(), ds, temperature),
                      sincos_1d(gw.flatten(), ds, temperature)], dim=1)
