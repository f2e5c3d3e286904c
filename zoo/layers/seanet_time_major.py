"""Inference of a :class:`~zoo.layers.seanet.SEANetEncoder` with time-major activations.

The encoder's convolutions are few-channel, long-signal 1-D convolutions (strided ones with
kernel 2 x stride). Channels-first, oneDNN reorders every input and output into its blocked
layout and runs the strided ones far below matmul speed. Here the activations stay ``[B, T, C]``
(time-major) from the first convolution to the last: a time-major buffer viewed ``[B, C, 1, T]``
is a channels-last 2-D image, which oneDNN convolves directly (1.2-2.3x faster per layer on
this encoder's shapes); kernel-1 convolutions are plain matmuls, ELU is applied while padding,
the residual blocks' output conv accumulates into their shortcut's buffer, and the LSTM reads the
time-major tensor as is. The same products as the convolutions, summed in another order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .seanet import SConv1d, SEANetEncoder, SEANetResnetBlock, SLSTM, extra_padding

__all__ = ["encode_time_major", "time_major_supported", "pad_time"]


def _conv_weight(conv: SConv1d) -> tuple[torch.Tensor, torch.Tensor | None]:
    inner = conv.conv.conv
    return inner.weight, inner.bias


def _padding(conv: SConv1d, length: int) -> tuple[int, int]:
    total = conv.kernel_size - conv.stride
    extra = extra_padding(length, conv.kernel_size, conv.stride, total)
    return (total, extra) if conv.causal else (total - total // 2, total // 2 + extra)


def time_major_supported(encoder: nn.Module) -> bool:
    """Whether every layer of ``encoder.model`` is one :func:`encode_time_major` handles."""
    if not isinstance(encoder, SEANetEncoder):
        return False
    for layer in encoder.model:
        if isinstance(layer, nn.ELU):
            if layer.alpha != 1.0:
                return False
        elif isinstance(layer, SEANetResnetBlock):
            convs = [m for m in layer.block if isinstance(m, SConv1d)]
            acts = [m for m in layer.block if isinstance(m, nn.ELU)]
            if len(convs) != 2 or len(acts) != 2 or len(layer.block) != 4 or any(a.alpha != 1.0 for a in acts):
                return False
            if not all(_plain(c) for c in convs) or not (isinstance(layer.shortcut, nn.Identity) or _plain(layer.shortcut)):
                return False
        elif isinstance(layer, SConv1d):
            if not _plain(layer):
                return False
        elif not isinstance(layer, SLSTM):
            return False
    return True


def _plain(conv) -> bool:
    inner = getattr(getattr(conv, "conv", None), "conv", None)
    return (isinstance(conv, SConv1d) and conv.pad_mode in ("reflect", "constant") and inner is not None
            and getattr(inner, "groups", 1) == 1)


def pad_time(x: torch.Tensor, left: int, right: int, mode: str, elu: bool = False) -> torch.Tensor:
    """x ``[B, T, C]`` -> ``[B, left + T + right, C]``, padded along time (``"reflect"`` or zero
    ``"constant"``), with ELU applied to x first when ``elu`` (written straight into the buffer)."""
    b, t, c = x.shape
    if mode == "reflect" and t <= max(left, right):  # too short to mirror: the channels-first helper
        from .seanet import pad1d

        y = F.elu(x) if elu else x
        return pad1d(y.transpose(1, 2), left, right, mode).transpose(1, 2).contiguous()
    out = x.new_empty(b, left + t + right, c)
    mid = out[:, left:left + t]
    if elu:
        torch.ops.aten.elu.out(x, 1.0, 1, 1, out=mid)
    else:
        mid.copy_(x)
    if mode == "reflect":
        if left:
            out[:, :left] = mid[:, 1:left + 1].flip(1)
        if right:
            out[:, left + t:] = mid[:, t - 1 - right:t - 1].flip(1)
    else:
        out[:, :left] = 0
        out[:, left + t:] = 0
    return out


def _conv(conv: SConv1d, x: torch.Tensor, elu: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """SConv1d on time-major x ``[B, T, C]`` -> ``[B, ceil(T / stride), O]`` (ELU first when ``elu``).

    Kernel-1 convolutions are matmuls (with ``out`` ``[B, F, O]`` given, added into it); the others
    run as 2-D convolutions over the time-major buffer viewed ``[B, C, 1, T]`` in channels-last
    memory, which oneDNN computes without reordering it.
    """
    b, t, c = x.shape
    inner = conv.conv.conv
    weight, bias = _conv_weight(conv)
    k, s = weight.shape[-1], conv.stride
    d = inner.dilation[0] if isinstance(inner.dilation, tuple) else inner.dilation
    left, right = _padding(conv, t)
    if k == 1 and s == 1 and left == right == 0:
        cols = (F.elu(x) if elu else x).reshape(b * t, c)
        if out is None:
            return F.linear(cols, weight[..., 0], bias).view(b, t, -1)
        flat = out.view(b * t, -1)
        flat.addmm_(cols, weight[..., 0].t())
        return flat.add_(bias).view(out.shape) if bias is not None else out
    xp = pad_time(x, left, right, "reflect" if conv.pad_mode == "reflect" else "constant", elu=elu)
    x4 = xp.transpose(1, 2).unsqueeze(2)  # [B, C, 1, T'], channels-last strides
    w4 = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x4, w4, bias, stride=(1, s), dilation=(1, d))  # [B, O, 1, F], channels-last
    y = y.squeeze(2).transpose(1, 2)  # [B, F, O]
    if not y.is_contiguous():
        y = y.contiguous()
    return y if out is None else out.add_(y)


def _resblock(block: SEANetResnetBlock, x: torch.Tensor) -> torch.Tensor:
    conv1, conv2 = [m for m in block.block if isinstance(m, SConv1d)]
    h = _conv(conv1, x, elu=True)
    h = F.elu(h, inplace=True)
    out = x.clone() if isinstance(block.shortcut, nn.Identity) else _conv(block.shortcut, x)
    return _conv(conv2, h, out=out)  # shortcut(x) + block(x), accumulated in one buffer


def encode_time_major(encoder: SEANetEncoder, x: torch.Tensor) -> torch.Tensor:
    """``encoder(x)`` for x ``[B, channels, T]`` -> latents ``[B, dimension, F]`` (a transposed view of
    a time-major buffer), computed time-major (see the module doc). Inference only."""
    h = x.transpose(1, 2).contiguous()  # [B, T, channels]
    pending_elu = False
    for layer in encoder.model:
        if isinstance(layer, nn.ELU):
            pending_elu = True
            continue
        if pending_elu and not isinstance(layer, SConv1d):
            h, pending_elu = F.elu(h), False
        if isinstance(layer, SEANetResnetBlock):
            h = _resblock(layer, h)
        elif isinstance(layer, SConv1d):
            h, pending_elu = _conv(layer, h, elu=pending_elu), False
        elif isinstance(layer, SLSTM):
            y, _ = layer.lstm(h.transpose(0, 1))  # [T, B, C]
            y = y.transpose(0, 1)
            h = y.add_(h) if layer.skip else y.contiguous()
    if pending_elu:
        h = F.elu(h)
    return h.transpose(1, 2)
