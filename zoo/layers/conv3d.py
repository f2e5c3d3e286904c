"""Causal 3D convolution blocks for video autoencoders, and 2D -> 3D weight inflation.

Video tensors are ``[B, C, T, H, W]``. "Causal" means output frame ``t`` depends only on
input frames ``<= t``: convolutions pad the past with copies of the first frame (or zeros),
normalisation is per frame, attention is within a frame. Temporal down-sampling by 2 maps
``1 + 2k`` frames to ``1 + k`` (the first frame is coded alone), up-sampling does the
inverse, so a ``1 + 4k`` frame clip passes two temporal stages exactly.

Layer names mirror the 2D blocks of :mod:`zoo.layers.conv` (LlamaGen / FQGAN layout:
``conv_blocks.{i}.res.{j}.norm1``, ``.conv1``, ``.nin_shortcut``, ``mid.{0,1,2}``, ...), so the
weights of a zoo 2D image tokenizer inflate key by key (:func:`inflate_state_dict`): a ``[O, I, kh, kw]`` kernel becomes
``[O, I, kt, kh, kw]`` with the weight in the last (current-frame) temporal tap, or spread
evenly over the taps. Either way an inflated network maps a static clip (one frame
repeated) to the 2D network's output repeated; with ``"last"`` every conv is frame-wise.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conv import DecoderLevels, run_levels

__all__ = ["CausalConv3d", "FrameGroupNorm", "CausalResBlock3d", "CausalDownsample3d", "CausalUpsample3d",
           "FrameAttention3d", "CausalConvEncoder3d", "CausalConvDecoder3d", "inflate_conv_weight",
           "inflate_state_dict", "causal_frames_after"]


def _triple(v) -> tuple[int, int, int]:
    if isinstance(v, int):
        return (v, v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 3:
        raise ValueError(f"expected an int or 3 ints (t, h, w), got {v}")
    return v


def causal_frames_after(frames: int, temporal_stride: int) -> int:
    """Frames out of a causal stride-``s`` stage: ``1 + (T - 1) / s``; raises unless exact."""
    if (frames - 1) % temporal_stride:
        raise ValueError(f"a causal temporal stride of {temporal_stride} needs 1 + {temporal_stride}k frames, "
                         f"got {frames}")
    return 1 + (frames - 1) // temporal_stride


class CausalConv3d(nn.Conv3d):
    """Conv3d, causal in time. ``[B, Cin, T, H, W]`` -> ``[B, Cout, 1 + (T - 1) / st, H', W']``.

    The past is padded with ``kt - 1`` frames (``time_pad="replicate"``: copies of the first
    frame; ``"zeros"``), so output frame ``t`` sees input frames ``t*st - kt + 1 .. t*st``.
    Spatial padding: ``spatial_padding`` (default ``kh // 2``, zeros) as in ``nn.Conv2d``.
    The parameters are those of ``nn.Conv3d`` (keys ``weight``, ``bias``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, bias: bool = True,
                 spatial_padding: int | None = None, time_pad: str = "replicate"):
        kt, kh, kw = _triple(kernel_size)
        st, sh, sw = _triple(stride)
        if time_pad not in ("replicate", "zeros"):
            raise ValueError(f"time_pad must be 'replicate' or 'zeros', got {time_pad!r}")
        ph, pw = (kh // 2, kw // 2) if spatial_padding is None else (spatial_padding, spatial_padding)
        super().__init__(in_channels, out_channels, (kt, kh, kw), stride=(st, sh, sw), padding=(0, ph, pw),
                         bias=bias)
        self.time_pad = time_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"CausalConv3d expects [B, C, T, H, W], got shape {tuple(x.shape)}")
        kt, st = self.kernel_size[0], self.stride[0]
        if st > 1:
            causal_frames_after(x.shape[2], st)
        if kt > 1:
            if self.time_pad == "replicate":
                x = torch.cat([x[:, :, :1].expand(-1, -1, kt - 1, -1, -1), x], dim=2)
            else:
                x = F.pad(x, (0, 0, 0, 0, kt - 1, 0))
        return super().forward(x)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame (over C/G x H x W), so it stays causal.

    ``[B, C, T, H, W]`` -> same shape; equals ``nn.GroupNorm`` applied to each frame.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = F.group_norm(x.transpose(1, 2).reshape(b * t, c, h, w), self.num_groups, self.weight, self.bias,
                         self.eps)
        return y.view(b, t, c, h, w).transpose(1, 2)


class CausalResBlock3d(nn.Module):
    """``shortcut(x) + conv2(drop(act(norm2(conv1(act(norm1(x)))))))`` with causal 3x3x3 convs.

    ``[B, Cin, T, H, W]`` -> ``[B, Cout, T, H, W]``; a 1x1x1 ``nin_shortcut`` when Cin != Cout
    (the names of :class:`zoo.layers.conv.ResnetBlock`).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0,
                 num_groups: int = 32, eps: float = 1e-6, time_pad: str = "replicate"):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = FrameGroupNorm(num_groups, in_channels, eps=eps)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3, time_pad=time_pad)
        self.norm2 = FrameGroupNorm(num_groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3, time_pad=time_pad)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv3d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class CausalDownsample3d(nn.Module):
    """Stride-2 spatial (and optionally temporal) down-sampling with a learned conv.

    ``[B, C, T, H, W]`` -> ``[B, C, T', H/2, W/2]`` with ``T' = 1 + (T - 1) / 2`` when
    ``temporal`` else ``T``. Spatially: zero-pad right / bottom by one pixel, 3x3 conv with
    stride 2 (as :class:`zoo.layers.conv.Downsample`); temporally 3 causal taps, stride 2.
    """

    def __init__(self, channels: int, temporal: bool = False, time_pad: str = "replicate"):
        super().__init__()
        self.temporal = temporal
        self.conv = CausalConv3d(channels, channels, (3 if temporal else 1, 3, 3), stride=(2 if temporal else 1, 2, 2),
                                 spatial_padding=0, time_pad=time_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class CausalUpsample3d(nn.Module):
    """Nearest x2 up-sampling in space (and optionally time), then a causal 3x3x3 conv.

    ``[B, C, T, H, W]`` -> ``[B, C, T', 2H, 2W]``, ``T' = 1 + 2 (T - 1)`` when ``temporal``:
    frame 0 stays single, every later frame is doubled (the inverse of the causal down-sampling).
    """

    def __init__(self, channels: int, temporal: bool = False, time_pad: str = "replicate"):
        super().__init__()
        self.temporal = temporal
        self.conv = CausalConv3d(channels, channels, 3, time_pad=time_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            x = torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(2, dim=2)], dim=2)
        b, c, t, h, w = x.shape
        x = F.interpolate(x.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=2.0, mode="nearest")
        return self.conv(x.view(b, t, c, 2 * h, 2 * w).transpose(1, 2))


class FrameAttention3d(nn.Module):
    """Residual single-head self-attention among the ``H*W`` pixels of each frame (causal in time).

    ``[B, C, T, H, W]`` -> same shape. 1x1x1 projections ``q``, ``k``, ``v``, ``proj_out`` and
    ``norm`` (the names of :class:`zoo.layers.conv.AttnBlock`), softmax scale ``C^-1/2``.
    """

    def __init__(self, channels: int, num_groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm = FrameGroupNorm(num_groups, channels, eps=eps)
        self.q, self.k, self.v = (CausalConv3d(channels, channels, 1) for _ in range(3))
        self.proj_out = CausalConv3d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).permute(0, 2, 3, 4, 1).reshape(b * t, 1, h * w, c) for m in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v).view(b, t, h, w, c).permute(0, 4, 1, 2, 3)
        return x + self.proj_out(out)


def _flags(flags, n: int, what: str) -> tuple[bool, ...]:
    flags = tuple(bool(f) for f in flags)
    if len(flags) != n:
        raise ValueError(f"{what} needs one flag per down/up-sampling stage ({n}), got {len(flags)}")
    return flags


class CausalConvEncoder3d(nn.Module):
    """Video ``[B, in, T, H, W]`` -> latent ``[B, z_channels, T', H/f, W/f]``, causal in time.

    The 3D twin of :class:`zoo.layers.conv.ConvEncoder2d` (same arguments and parameter
    names, so its weights inflate): levels of ``num_res_blocks`` causal res-blocks (frame
    attention on ``attn_levels``, default the last), a down-sampling between levels
    (temporal too where ``temporal_down[i]``), a middle block (res, attn, res), GroupNorm,
    SiLU, conv_out. ``f = 2**(len(ch_mult) - 1)``; ``T' = 1 + (T - 1) / 2**sum(temporal_down)``.
    """

    def __init__(self, in_channels: int = 3, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256, temporal_down: Sequence[bool] = (False, True, True),
                 dropout: float = 0.0, num_groups: int = 32, attn_levels: Sequence[int] | None = None,
                 time_pad: str = "replicate"):
        super().__init__()
        n = len(ch_mult)
        self.temporal_down = _flags(temporal_down, n - 1, "temporal_down")
        attn = {n - 1} if attn_levels is None else {i % n for i in attn_levels}
        self.conv_in = CausalConv3d(in_channels, ch, 3, time_pad=time_pad)
        in_mult = (1,) + tuple(ch_mult)
        self.conv_blocks = nn.ModuleList()
        block_in = ch
        for i in range(n):
            level = nn.Module()
            block_in, block_out = ch * in_mult[i], ch * ch_mult[i]
            level.res, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                level.res.append(CausalResBlock3d(block_in, block_out, dropout, num_groups, time_pad=time_pad))
                block_in = block_out
                if i in attn:
                    level.attn.append(FrameAttention3d(block_in, num_groups))
            if i != n - 1:
                level.downsample = CausalDownsample3d(block_in, self.temporal_down[i], time_pad=time_pad)
            self.conv_blocks.append(level)
        self.mid = nn.ModuleList([CausalResBlock3d(block_in, block_in, dropout, num_groups, time_pad=time_pad),
                                  FrameAttention3d(block_in, num_groups),
                                  CausalResBlock3d(block_in, block_in, dropout, num_groups, time_pad=time_pad)])
        self.norm_out = FrameGroupNorm(num_groups, block_in, eps=1e-6)
        self.conv_out = CausalConv3d(block_in, z_channels, 3, time_pad=time_pad)
        self.spatial_factor = 2 ** (n - 1)
        self.temporal_factor = 2 ** sum(self.temporal_down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        h = run_levels(self.conv_blocks, h, "downsample")
        for blk in self.mid:
            h = blk(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class CausalConvDecoder3d(DecoderLevels):
    """Latent ``[B, z_channels, t, h, w]`` -> video ``[B, out, 1 + (t - 1) * 2**k, h*f, w*f]``.

    The 3D twin of :class:`zoo.layers.conv.ConvDecoder2d` (``conv_blocks[0]`` is the deepest
    level); ``temporal_up[i]`` doubles time after level i (give the encoder's
    ``temporal_down`` reversed to mirror it).
    """

    def __init__(self, z_channels: int = 256, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 2, 4),
                 num_res_blocks: int = 2, out_channels: int = 3, temporal_up: Sequence[bool] = (True, True, False),
                 dropout: float = 0.0, num_groups: int = 32, attn_levels: Sequence[int] | None = None,
                 time_pad: str = "replicate"):
        super().__init__()
        n = len(ch_mult)
        self.temporal_up = _flags(temporal_up, n - 1, "temporal_up")
        attn = {n - 1} if attn_levels is None else {i % n for i in attn_levels}
        block_in = ch * ch_mult[-1]
        self.conv_in = CausalConv3d(z_channels, block_in, 3, time_pad=time_pad)
        self.mid = nn.ModuleList([CausalResBlock3d(block_in, block_in, dropout, num_groups, time_pad=time_pad),
                                  FrameAttention3d(block_in, num_groups),
                                  CausalResBlock3d(block_in, block_in, dropout, num_groups, time_pad=time_pad)])
        self.conv_blocks = nn.ModuleList()
        for step, i in enumerate(reversed(range(n))):
            level = nn.Module()
            block_out = ch * ch_mult[i]
            level.res, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                level.res.append(CausalResBlock3d(block_in, block_out, dropout, num_groups, time_pad=time_pad))
                block_in = block_out
                if i in attn:
                    level.attn.append(FrameAttention3d(block_in, num_groups))
            if i != 0:
                level.upsample = CausalUpsample3d(block_in, self.temporal_up[step], time_pad=time_pad)
            self.conv_blocks.append(level)
        self.norm_out = FrameGroupNorm(num_groups, block_in, eps=1e-6)
        self.conv_out = CausalConv3d(block_in, out_channels, 3, time_pad=time_pad)



def inflate_conv_weight(weight: torch.Tensor, frames: int, mode: str = "last") -> torch.Tensor:
    """2D kernel ``[O, I, kh, kw]`` -> 3D kernel ``[O, I, frames, kh, kw]``.

    mode ``"last"``: the 2D kernel in the last (current-frame) tap, zeros elsewhere: the conv
    is frame-wise. ``"mean"``: the kernel divided evenly over the taps (a temporal average).
    """
    if weight.dim() != 4:
        raise ValueError(f"expected a 2D conv kernel [O, I, kh, kw], got shape {tuple(weight.shape)}")
    if mode == "last":
        out = weight.new_zeros(*weight.shape[:2], frames, *weight.shape[2:])
        out[:, :, -1] = weight
        return out
    if mode == "mean":
        return weight.unsqueeze(2).expand(-1, -1, frames, -1, -1).div(frames).contiguous()
    raise ValueError(f"inflation mode must be 'last' or 'mean', got {mode!r}")


@torch.no_grad()
def inflate_state_dict(module: nn.Module, state_dict_2d: Mapping[str, torch.Tensor], mode: str = "last",
                       strict: bool = True) -> list[str]:
    """Load a 2D network's weights into the 3D ``module`` key by key, inflating conv kernels.

    Keys present in both with equal shapes are copied; a 4D kernel meeting a 5D one is
    inflated (:func:`inflate_conv_weight`). Raises ``ValueError`` on shape conflicts and,
    when ``strict``, on 2D keys with no 3D counterpart. Returns the 3D keys left untouched.
    """
    own = module.state_dict()
    unused = [k for k in state_dict_2d if k not in own]
    if strict and unused:
        raise ValueError(f"{len(unused)} 2D keys have no 3D counterpart: {unused[:10]}")
    new = {}
    for key, target in own.items():
        if key not in state_dict_2d:
            continue
        src = state_dict_2d[key]
        if src.shape == target.shape:
            new[key] = src
        elif src.dim() == 4 and target.dim() == 5 and src.shape[:2] + src.shape[2:] == target.shape[:2] + target.shape[3:]:
            new[key] = inflate_conv_weight(src, target.shape[2], mode)
        else:
            raise ValueError(f"cannot inflate {key}: 2D shape {tuple(src.shape)} vs 3D shape {tuple(target.shape)}")
    module.load_state_dict(new, strict=False)
    return [k for k in own if k not in new]
