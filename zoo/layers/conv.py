"""2D convolutional building blocks of VQGAN / LlamaGen-style autoencoders.

``ResnetBlock`` (GroupNorm + SiLU + 3x3 conv, twice, with a 1x1 shortcut when the width
changes), ``AttnBlock`` (single-head spatial self-attention on SDPA), ``Downsample`` (stride-2
3x3 conv with right/bottom zero padding), ``Upsample`` (nearest x2 then 3x3 conv), and the
``ConvEncoder2d`` / ``ConvDecoder2d`` stacks built from them. Parameter names follow LlamaGen
(``conv_blocks.{i}.res.{j}``, ``mid.{0,1,2}``, ``norm_out``, ``conv_out``), the layout used by
FQGAN and TokenFlow checkpoints. Images ``[B, C, H, W]``; H and W divisible by the total
downsampling factor ``2 ** (len(ch_mult) - 1)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["group_norm", "ResnetBlock", "AttnBlock", "Downsample", "Upsample", "ConvEncoder2d",
           "ConvDecoder2d", "conv_levels_from_state_dict", "conv_autoencoder_from_state_dict"]


def group_norm(channels: int, num_groups: int = 32, eps: float = 1e-6) -> nn.GroupNorm:
    """Affine GroupNorm (VQGAN default: 32 groups, eps 1e-6); ``channels`` must divide evenly."""
    if channels % num_groups:
        raise ValueError(f"{channels} channels cannot be split into {num_groups} GroupNorm groups")
    return nn.GroupNorm(num_groups, channels, eps=eps, affine=True)


def run_levels(levels: nn.ModuleList, h: torch.Tensor, resample: str) -> torch.Tensor:
    """Run each resolution level of an encoder / decoder: ``res[j]`` (then ``attn[j]`` when the
    level has attention) for every block, then the level's ``resample`` module if it has one."""
    for level in levels:
        for j, res in enumerate(level.res):
            h = res(h)
            if len(level.attn):
                h = level.attn[j](h)
        if hasattr(level, resample):
            h = getattr(level, resample)(h)
    return h


class ResnetBlock(nn.Module):
    """x ``[B, in, H, W]`` -> ``[B, out, H, W]``: ``shortcut(x) + conv2(drop(act(n2(conv1(act(n1(x)))))))``."""

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0,
                 num_groups: int = 32, conv_shortcut: bool = False):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 3, padding=1)
            else:
                self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        elif hasattr(self, "conv_shortcut"):
            x = self.conv_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions; x ``[B, C, H, W]`` -> same shape.

    1x1 conv projections ``q``, ``k``, ``v``, ``proj_out`` (VQGAN names), softmax scale C^-1/2.
    """

    def __init__(self, channels: int, num_groups: int = 32):
        super().__init__()
        self.norm = group_norm(channels, num_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).flatten(2).transpose(1, 2).unsqueeze(1) for m in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # [B, 1, HW, C]
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Halve H and W: zero-pad right/bottom by 1 then a stride-2 3x3 conv (or 2x2 average pooling)."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_conv:
            return self.conv(F.pad(x, (0, 1, 0, 1)))
        return F.avg_pool2d(x, 2, 2)


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour interpolation, then (optionally) a 3x3 conv."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x


def _attn_levels(attn_levels: Sequence[int] | None, n: int) -> set[int]:
    return {n - 1} if attn_levels is None else {i % n for i in attn_levels}


class ConvEncoder2d(nn.Module):
    """Image ``[B, in_channels, H, W]`` -> latent ``[B, z_channels, H/f, W/f]``, f = 2**(len(ch_mult)-1).

    Level i has ``num_res_blocks`` ResnetBlocks of width ``ch * ch_mult[i]`` (each followed by
    an AttnBlock on ``attn_levels``, default the last level), then a Downsample except at the
    last level; a middle block (res, attn, res); then GroupNorm, SiLU, 3x3 conv to z_channels.
    ``z_channels=None`` omits that output head (``forward`` returns the trunk features of width
    ``out_width``), for models with several heads (FQGAN).
    """

    def __init__(self, in_channels: int = 3, ch: int = 128, ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int | None = 256, dropout: float = 0.0,
                 num_groups: int = 32, attn_levels: Sequence[int] | None = None, resamp_with_conv: bool = True):
        super().__init__()
        n = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        attn = _attn_levels(attn_levels, n)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        in_mult = (1,) + tuple(ch_mult)
        self.conv_blocks = nn.ModuleList()
        block_in = ch
        for i in range(n):
            level = nn.Module()
            block_in, block_out = ch * in_mult[i], ch * ch_mult[i]
            level.res = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                level.res.append(ResnetBlock(block_in, block_out, dropout, num_groups))
                block_in = block_out
                if i in attn:
                    level.attn.append(AttnBlock(block_in, num_groups))
            if i != n - 1:
                level.downsample = Downsample(block_in, resamp_with_conv)
            self.conv_blocks.append(level)
        self.mid = nn.ModuleList([ResnetBlock(block_in, block_in, dropout, num_groups), AttnBlock(block_in, num_groups),
                                  ResnetBlock(block_in, block_in, dropout, num_groups)])
        self.out_width = block_in
        self.downsample_factor = 2 ** (n - 1)
        if z_channels is not None:
            self.norm_out = group_norm(block_in, num_groups)
            self.conv_out = nn.Conv2d(block_in, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        h = run_levels(self.conv_blocks, h, "downsample")
        for blk in self.mid:
            h = blk(h)
        if hasattr(self, "conv_out"):
            h = self.conv_out(F.silu(self.norm_out(h)))
        return h


class DecoderLevels(nn.Module):
    """Forward shared by the 2D and causal 3D decoders: ``conv_in``, ``mid`` blocks, the levels
    (deepest first, each ending in an optional ``upsample``), then norm, SiLU and ``conv_out``."""

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the output conv (for adaptive GAN loss weighting)."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for blk in self.mid:
            h = blk(h)
        h = run_levels(self.conv_blocks, h, "upsample")
        return self.conv_out(F.silu(self.norm_out(h)))


class ConvDecoder2d(DecoderLevels):
    """Latent ``[B, z_channels, h, w]`` -> image ``[B, out_channels, h*f, w*f]`` (mirror of the encoder).

    3x3 conv_in to ``ch * ch_mult[-1]``, middle block, then levels from the deepest up, each
    with ``num_res_blocks + 1`` ResnetBlocks (AttnBlocks on ``attn_levels``, default the
    deepest) and an Upsample except at level 0; GroupNorm, SiLU, 3x3 conv_out. ``conv_blocks[0]``
    is the deepest level (LlamaGen ordering).
    """

    def __init__(self, z_channels: int = 256, ch: int = 128, ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, out_channels: int = 3, dropout: float = 0.0, num_groups: int = 32,
                 attn_levels: Sequence[int] | None = None, resamp_with_conv: bool = True):
        super().__init__()
        n = len(ch_mult)
        attn = _attn_levels(attn_levels, n)
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(block_in, block_in, dropout, num_groups), AttnBlock(block_in, num_groups),
                                  ResnetBlock(block_in, block_in, dropout, num_groups)])
        self.conv_blocks = nn.ModuleList()
        for i in reversed(range(n)):
            level = nn.Module()
            block_out = ch * ch_mult[i]
            level.res = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                level.res.append(ResnetBlock(block_in, block_out, dropout, num_groups))
                block_in = block_out
                if i in attn:
                    level.attn.append(AttnBlock(block_in, num_groups))
            if i != 0:
                level.upsample = Upsample(block_in, resamp_with_conv)
            self.conv_blocks.append(level)
        self.norm_out = group_norm(block_in, num_groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)
        self.upsample_factor = 2 ** (n - 1)



def conv_levels_from_state_dict(sd, prefix: str, decoder: bool = False) -> tuple[list[int], int]:
    """(width of every level, ResnetBlocks per level) of the :class:`ConvEncoder2d` (or, with
    ``decoder=True``, :class:`ConvDecoder2d`) whose keys start with ``prefix`` (e.g.
    ``"encoder."``), read from the weight shapes. Widths are in encoder order (level 0 = full
    resolution) for both: a decoder's ``conv_blocks[0]`` is its deepest level."""
    import re

    pattern = re.compile(rf"{re.escape(prefix)}conv_blocks\.(\d+)\.res\.(\d+)\.conv1\.weight$")
    found = [(int(m.group(1)), int(m.group(2))) for k in sd if (m := pattern.match(k))]
    levels = sorted({i for i, _ in found})
    if not levels or levels != list(range(len(levels))):
        raise KeyError(f"no conv levels '{prefix}conv_blocks.<i>.res.<j>.conv1.weight' numbered 0..n-1 in the "
                       f"state dict (found levels {levels})")
    per_level = {len({j for i, j in found if i == level}) for level in levels}
    if len(per_level) != 1:
        raise KeyError(f"'{prefix}conv_blocks' levels have different ResnetBlock counts {sorted(per_level)}")
    widths = [int(sd[f"{prefix}conv_blocks.{i}.res.0.conv1.weight"].shape[0]) for i in levels]
    return (widths[::-1] if decoder else widths), per_level.pop()


def conv_autoencoder_from_state_dict(sd, encoder: str = "encoder.", decoder: str = "decoder.") -> dict:
    """Arguments of a :class:`ConvEncoder2d` / :class:`ConvDecoder2d` pair read from weight shapes:
    the encoder's ``ch``, ``ch_mult``, ``num_res_blocks`` and the decoder's ``dec_ch`` /
    ``dec_num_res_blocks`` (its levels must follow the same ``ch_mult``; ``ValueError`` otherwise)."""
    ch = int(sd[f"{encoder}conv_in.weight"].shape[0])
    widths, num_res = conv_levels_from_state_dict(sd, encoder)
    if any(w % ch for w in widths):
        raise ValueError(f"'{encoder}' level widths {widths} are not multiples of ch={ch}")
    ch_mult = [w // ch for w in widths]
    dec_widths, dec_res = conv_levels_from_state_dict(sd, decoder, decoder=True)
    dec_ch = dec_widths[0] // ch_mult[0]
    if [dec_ch * m for m in ch_mult] != dec_widths:
        raise ValueError(f"'{decoder}' level widths {dec_widths} do not follow the encoder's ch_mult {ch_mult}")
    return dict(ch=ch, ch_mult=ch_mult, num_res_blocks=num_res, dec_ch=dec_ch, dec_num_res_blocks=dec_res - 1)
