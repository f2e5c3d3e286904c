"""Nearest x2 upsampling followed by a 3x3 convolution, computed on the low-resolution grid.

``conv3x3(nearest_upsample_x2(x))`` (padding 1) is the upsampler of VQGAN / MaskGIT / Stable
Diffusion style decoders. Each output pixel of row parity a and column parity c sees only a 2x2
neighbourhood of the low-resolution input, whose taps are sums of the 3x3 taps landing on the
same source pixel: four 2x2 convolutions (run as one with 4x the output channels) give the result
with 16 / 36 of the multiply-adds, the same values up to float summation order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["upsample2x_conv3x3", "phase_kernels"]


def phase_kernels(weight: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """3x3 kernel ``[O, C, 3, 3]`` -> the four 2x2 phase kernels stacked ``[4 * O, C, 2, 2]`` (phase
    order (a, c) = (0, 0), (0, 1), (1, 0), (1, 1)) and the bias repeated ``[4 * O]``."""
    w0, w1, w2 = weight.unbind(2)
    rows = (torch.stack([w0, w1 + w2], 2), torch.stack([w0 + w1, w2], 2))  # [O, C, 2, 3] per row parity
    kernels = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1) if c == 0 else
               torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1) for r in rows for c in (0, 1)]
    return torch.cat(kernels), (None if bias is None else bias.repeat(4))


def upsample2x_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x ``[B, C, H, W]``, weight ``[O, C, 3, 3]`` -> ``[B, O, 2H, 2W]`` in channels-last memory layout.

    One convolution of the zero-padded input with the phase kernels gives ``[B, 4O, H+1, W+1]``;
    phase (a, c) of output pixel (i, j) is its entry (i + a, j + c), copied into place.
    """
    b, _, h, w = x.shape
    o = weight.shape[0]
    k, kb = phase_kernels(weight, bias)
    xp = F.pad(x.contiguous(memory_format=torch.channels_last), (1, 1, 1, 1))
    y = F.conv2d(xp, k, kb).permute(0, 2, 3, 1)  # [B, H+1, W+1, 4O]: channels-last memory, viewed as is
    y = y.reshape(b, h + 1, w + 1, 4, o) if not y.is_contiguous() else y.view(b, h + 1, w + 1, 4, o)
    out = x.new_empty(b, h, 2, w, 2, o)
    for a in (0, 1):
        for c in (0, 1):
            out[:, :, a, :, c] = y[:, a:a + h, c:c + w, 2 * a + c]
    return out.view(b, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
