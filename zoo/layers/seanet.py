"""SEANet encoder (EnCodec style): weight-normed 1-D convs with exact "same"-style padding, residual
blocks, strided downsampling, a skip LSTM.

Length arithmetic: every :class:`SConv1d` pads ``kernel - stride`` samples (reflect, split
left-heavy) plus the extra right padding that makes the last window full, so a stride-``s`` conv
maps ``T`` samples to ``ceil(T / s)`` frames and the encoder maps ``T`` samples to
``ceil(T / hop_length)`` frames for any ``T >= 1``.
Parameter names follow EnCodec (``model.{i}.conv.conv.weight_g`` / ``weight_v`` / ``bias``).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .inference_path import fast_inference_path
from .linear import conv1x1
from .onnx_lstm import lstm_onnx

__all__ = ["WNConv1d", "SConv1d", "SEANetResnetBlock", "SLSTM", "SEANetEncoder", "pad1d", "extra_padding"]


def extra_padding(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding making the last conv window full (so no input sample is dropped)."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal - length


def pad1d(x: torch.Tensor, left: int, right: int, mode: str = "reflect") -> torch.Tensor:
    """``F.pad`` on the last axis; reflect padding of inputs shorter than the pad zero-extends first."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    if left == 0 and right == 0:
        return x
    length = x.shape[-1]
    grow = max(left, right) - length + 1 if length <= max(left, right) else 0
    if grow:
        x = F.pad(x, (0, grow))
        y = F.pad(x, (left, right), mode="reflect")
        return y[..., : y.shape[-1] - grow]
    # reflect padding as one concatenation of mirrored edges: the same values as F.pad(mode="reflect"),
    # ~3x faster on long signals
    parts = [x[..., 1:left + 1].flip(-1)] if left else []
    parts.append(x)
    if right:
        parts.append(x[..., length - 1 - right:length - 1].flip(-1))
    return torch.cat(parts, dim=-1)


class WNConv1d(nn.Module):
    """Conv1d with weight normalisation stored as ``weight_g`` ``[out, 1, 1]`` and ``weight_v``
    ``[out, in / groups, k]`` (the legacy ``torch.nn.utils.weight_norm`` layout):
    weight = g * v / ||v||, the norm taken per output channel. Initialised like ``nn.Conv1d``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        ref = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups, bias=bias)
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.weight_v = nn.Parameter(ref.weight.detach().clone())
        v = ref.weight.detach()
        # on the meta device (zoo.checkpoint.parameters_on_meta) only the shape matters: torch.norm there
        # would route through torch._refs and import torch._dynamo (sympy, triton) just to build a shape
        g = torch.empty(v.shape[0], 1, 1, device="meta") if v.is_meta else v.norm(dim=(1, 2), keepdim=True)
        self.weight_g = nn.Parameter(g)
        self.bias = nn.Parameter(ref.bias.detach().clone()) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.norm(dim=(1, 2), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.shape[-1] == 1 and self.stride == 1 and self.groups == 1:
            return conv1x1(x, w, self.bias)
        return F.conv1d(x, w, self.bias, self.stride, 0, self.dilation, self.groups)


class _NormConv1d(nn.Module):
    """Holds the conv as ``.conv`` (EnCodec's NormConv1d nesting, for parameter names)."""

    def __init__(self, *args, norm: str = "weight_norm", **kwargs):
        super().__init__()
        if norm not in ("weight_norm", "none"):
            raise ValueError(f"norm must be 'weight_norm' or 'none', got {norm!r}")
        self.conv = WNConv1d(*args, **kwargs) if norm == "weight_norm" else nn.Conv1d(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SConv1d(nn.Module):
    """Conv1d with EnCodec padding: x ``[B, C_in, T]`` -> ``[B, C_out, ceil(T / stride)]``.

    causal: pad only on the left; otherwise pad ``ceil(p / 2)`` left and ``floor(p / 2)`` right
    (p = effective kernel - stride), plus the extra right padding of :func:`extra_padding`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = True, causal: bool = False, norm: str = "weight_norm",
                 pad_mode: str = "reflect"):
        super().__init__()
        self.conv = _NormConv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups,
                                bias=bias, norm=norm)
        self.causal, self.pad_mode = causal, pad_mode
        self.kernel_size, self.stride = (kernel_size - 1) * dilation + 1, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.kernel_size - self.stride
        extra = extra_padding(x.shape[-1], self.kernel_size, self.stride, total)
        if self.causal:
            left, right = total, extra
        else:
            left, right = total - total // 2, total // 2 + extra
        return self.conv(pad1d(x, left, right, self.pad_mode))


class SEANetResnetBlock(nn.Module):
    """x ``[B, dim, T]`` -> same: ``block`` = [ELU, SConv1d(dim, dim/compress, k), ELU,
    SConv1d(dim/compress, dim, 1)] plus ``shortcut`` (1x1 SConv1d, or identity when true_skip)."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2, true_skip: bool = False,
                 causal: bool = False, norm: str = "weight_norm", pad_mode: str = "reflect"):
        super().__init__()
        hidden = dim // compress
        kw = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        self.block = nn.Sequential(nn.ELU(), SConv1d(dim, hidden, kernel_size, dilation=dilation, **kw),
                                   nn.ELU(), SConv1d(hidden, dim, 1, **kw))
        self.shortcut = nn.Identity() if true_skip else SConv1d(dim, dim, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """Unidirectional multi-layer LSTM over time with a skip connection. x ``[B, C, T]`` -> same."""

    def __init__(self, dim: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # one ONNX LSTM node per layer: any sequence length
            y = lstm_onnx(self.lstm, x.permute(2, 0, 1))
        else:
            y, _ = self.lstm(x.permute(2, 0, 1))
        y = y.permute(1, 2, 0)
        return y + x if self.skip else y


class SEANetEncoder(nn.Module):
    """Waveform ``[B, channels, T]`` -> latents ``[B, dimension, ceil(T / hop_length)]``.

    ratios: upsampling ratios in EnCodec's decoder order; the encoder downsamples by them in
    REVERSE order (``ratios=[8, 5, 4, 2]`` -> strides 2, 4, 5, 8), each with kernel 2 * stride.
    Widths double from ``n_filters`` at every downsampling; ``lstm`` LSTM layers at the end.
    """

    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 1,
                 ratios: Sequence[int] = (8, 5, 4, 2), kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = "reflect", true_skip: bool = False, compress: int = 2, lstm: int = 2,
                 norm: str = "weight_norm"):
        super().__init__()
        self.channels, self.dimension = channels, dimension
        self.strides = list(reversed([int(r) for r in ratios]))
        self.hop_length = math.prod(self.strides)
        kw = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        mult = 1
        layers: list[nn.Module] = [SConv1d(channels, n_filters, kernel_size, **kw)]
        for stride in self.strides:
            width = mult * n_filters
            for j in range(n_residual_layers):
                layers.append(SEANetResnetBlock(width, residual_kernel_size, dilation_base ** j, compress=compress,
                                                true_skip=true_skip, **kw))
            layers += [nn.ELU(), SConv1d(width, 2 * width, 2 * stride, stride=stride, **kw)]
            mult *= 2
        if lstm:
            layers.append(SLSTM(mult * n_filters, num_layers=lstm))
        layers += [nn.ELU(), SConv1d(mult * n_filters, dimension, last_kernel_size, **kw)]
        self.model = nn.Sequential(*layers)

    def num_frames(self, num_samples: int) -> int:
        return -(-int(num_samples) // self.hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"SEANetEncoder expects [B, {self.channels}, T], got {tuple(x.shape)}")
        if fast_inference_path(self) and not torch.is_autocast_enabled(x.device.type):
            # inference: time-major convolutions (same maths; its in-place sums assume one dtype)
            from .seanet_time_major import encode_time_major, time_major_supported

            if time_major_supported(self):
                return encode_time_major(self, x)
        return self.model(x)
