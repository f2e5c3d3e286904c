"""MaskGIT-VQGAN convolutional encoder / decoder (the pixel stage of the legacy two-stage TiTok).

The legacy TiTok decoder predicts, for each cell of its ``g x g`` grid, logits over the 1024
codes of a frozen MaskGIT-VQGAN; this module turns (soft) code embeddings ``[B, 256, g, g]``
back into pixels ``[B, 3, g*2^(L-1), g*2^(L-1)]`` and, for stage-1 training, computes the
proxy codes of an image. Layout and numerics follow the official MaskGIT-VQGAN port used by
bytedance/1d-tokenizer, including its shortcut quirk (see :class:`VQGANResBlock`).

Channel widths are given per resolution level (``channels[i]`` for level ``i``, level 0 is the
full resolution), so a converter can read them off a state dict.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..hub import WeightSource, resolve_source
from ..layers.upsample import upsample2x_conv3x3
from ..quant import VectorQuantizer

__all__ = ["upsample2x_conv3x3", "VQGANResBlock", "MaskGITVQGANDecoder", "MaskGITVQGANEncoder", "MaskGITVQGAN", "OFFICIAL_VQGAN",
           "load_proxy_vqgan", "vqgan_channels_from_state_dict"]

_GN = dict(num_groups=32, eps=1e-6, affine=True)


class VQGANResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3 (x2, no bias) + shortcut. ``[B, Cin, H, W]`` -> ``[B, Cout, H, W]``.

    Quirk kept from the official weights' code: when ``Cin != Cout`` the block input is
    discarded and the 1x1 ``nin_shortcut`` is applied to the block's own output ``h``
    (result ``h + nin_shortcut(h)``); the trained checkpoints depend on it.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(num_channels=in_channels, **_GN)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(num_channels=out_channels, **_GN)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.nin_shortcut = (nn.Conv2d(out_channels, out_channels, 1, bias=False)
                             if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()  # the norm outputs are temporaries
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h = self.norm2(h)  # rebinding h frees the conv1 output before conv2 allocates its own
        h = self.conv2(F.silu(h, inplace=inplace))
        shortcut = x if self.nin_shortcut is None else self.nin_shortcut(h)
        return h.add_(shortcut) if inplace else h + shortcut  # h is a fresh conv output


class _Level(nn.Module):
    """``num_res_blocks`` res-blocks, then optional x2 nearest upsampling + conv3x3."""

    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, upsample: bool):
        super().__init__()
        self.block = nn.ModuleList(VQGANResBlock(in_channels if i == 0 else out_channels, out_channels)
                                   for i in range(num_res_blocks))
        self.upsample_conv = nn.Conv2d(out_channels, out_channels, 3, padding=1) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        if self.upsample_conv is not None:
            if torch.is_grad_enabled():
                x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
            else:
                x = upsample2x_conv3x3(x, self.upsample_conv.weight, self.upsample_conv.bias)
        return x


def _check_channels(channels) -> list[int]:
    channels = [int(c) for c in channels]
    if not channels or any(c <= 0 or c % 32 for c in channels):
        raise ValueError(f"MaskGIT-VQGAN channels must be positive multiples of 32 (GroupNorm groups), "
                         f"got {channels}")
    return channels


class MaskGITVQGANDecoder(nn.Module):
    """Code embeddings ``[B, z_channels, h, w]`` -> image ``[B, 3, h*2^(L-1), w*2^(L-1)]``.

    channels: width per level (official: 128 * (1, 1, 2, 2, 4)); levels run from L-1 (lowest
    resolution) down to 0; every level but 0 upsamples x2.
    """

    def __init__(self, channels=(128, 128, 256, 256, 512), num_res_blocks: int = 2, z_channels: int = 256,
                 out_channels: int = 3):
        super().__init__()
        channels = _check_channels(channels)
        top = channels[-1]
        self.conv_in = nn.Conv2d(z_channels, top, 3, padding=1)
        self.mid = nn.ModuleList(VQGANResBlock(top, top) for _ in range(num_res_blocks))
        self.up = nn.ModuleList(
            _Level(channels[min(i + 1, len(channels) - 1)], channels[i], num_res_blocks, upsample=i > 0)
            for i in range(len(channels)))
        self.norm_out = nn.GroupNorm(num_channels=channels[0], **_GN)
        self.conv_out = nn.Conv2d(channels[0], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # channels-last activations: the convolutions skip per-call layout reorders (~15-20 % faster
        # on CPU, same arithmetic); the output comes back in the default layout
        x = self.conv_in(z.contiguous(memory_format=torch.channels_last))
        for blk in self.mid:
            x = blk(x)
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x), inplace=not torch.is_grad_enabled())).contiguous()


class _DownLevel(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, downsample: bool):
        super().__init__()
        self.block = nn.ModuleList(VQGANResBlock(in_channels if i == 0 else out_channels, out_channels)
                                   for i in range(num_res_blocks))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        return F.avg_pool2d(x, 2, 2) if self.downsample else x


class MaskGITVQGANEncoder(nn.Module):
    """Image ``[B, 3, H, W]`` in [0, 1] -> latents ``[B, z_channels, H/2^(L-1), W/2^(L-1)]``."""

    def __init__(self, channels=(128, 128, 256, 256, 512), num_res_blocks: int = 2, z_channels: int = 256,
                 in_channels: int = 3):
        super().__init__()
        channels = _check_channels(channels)
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False)
        ins = [channels[0]] + channels[:-1]
        self.down = nn.ModuleList(_DownLevel(ins[i], channels[i], num_res_blocks, downsample=i < len(channels) - 1)
                                  for i in range(len(channels)))
        self.mid = nn.ModuleList(VQGANResBlock(channels[-1], channels[-1]) for _ in range(num_res_blocks))
        self.norm_out = nn.GroupNorm(num_channels=channels[-1], **_GN)
        self.conv_out = nn.Conv2d(channels[-1], z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        for blk in self.mid:
            x = blk(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class MaskGITVQGAN(nn.Module):
    """The frozen MaskGIT-VQGAN (encoder, 1024 x 256 codebook, decoder) that supplies TiTok's
    stage-1 proxy codes. ``codes(x)``: image ``[B, 3, H, W]`` in [0, 1] -> ids ``[B, H/16, W/16]``;
    ``decode_codes(ids)`` -> image (unclamped). Official weights: ``maskgit-vqgan-imagenet-f16-256.bin``
    (keys ``encoder.*``, ``decoder.*``, ``quantize.embedding.weight``), see :meth:`from_file`.
    """

    def __init__(self, channels=(128, 128, 256, 256, 512), num_res_blocks: int = 2, z_channels: int = 256,
                 codebook_size: int = 1024):
        super().__init__()
        self.encoder = MaskGITVQGANEncoder(channels, num_res_blocks, z_channels)
        self.decoder = MaskGITVQGANDecoder(channels, num_res_blocks, z_channels)
        self.quantize = VectorQuantizer(codebook_size, z_channels, beta=0.25, channel_dim=1)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always frozen, always eval
        return super().train(False)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize(self.encoder(x)).ids

    @torch.no_grad()
    def decode_codes(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantize.ids_to_latents(ids))

    @classmethod
    def from_file(cls, path) -> "MaskGITVQGAN":
        """Build from an official MaskGIT-VQGAN checkpoint (safetensors or torch file, read safely);
        the architecture is read off the state dict's shapes."""
        from ..checkpoint import load_state_dict_file, load_state_dict_strict

        sd = load_state_dict_file(path)
        if "quantize.embedding.weight" not in sd:
            raise KeyError(f"{path} is not a MaskGIT-VQGAN checkpoint: no 'quantize.embedding.weight' "
                           f"(keys: {sorted(sd)[:6]} ...)")
        channels, nres, zc = vqgan_channels_from_state_dict(sd, "decoder.")
        cb = sd["quantize.embedding.weight"].shape[0]
        model = cls(channels, nres, zc, cb)
        return load_state_dict_strict(model, sd, source=str(path))


#: where the official MaskGIT-VQGAN (ImageNet, f16, 1024 codes) used by TiTok stage 1 is published
#: (revision not pinned: no full commit hash of fun-research/TiTok holding this file was findable offline)
OFFICIAL_VQGAN = WeightSource(hf_repo="fun-research/TiTok", files={"weights": "maskgit-vqgan-imagenet-f16-256.bin"})


def load_proxy_vqgan(weights: str) -> MaskGITVQGAN:
    """``weights``: a checkpoint path, or ``"hub"`` for :data:`OFFICIAL_VQGAN` (the HF cache is used;
    works offline with ``HF_HUB_OFFLINE=1`` once cached)."""
    if weights == "hub":
        weights = resolve_source(OFFICIAL_VQGAN)["weights"]
    return MaskGITVQGAN.from_file(weights)


def vqgan_channels_from_state_dict(sd, prefix: str) -> tuple[list[int], int, int]:
    """(channels per level, res-blocks per level, z_channels) of a MaskGIT-VQGAN decoder whose
    keys start with ``prefix`` (e.g. ``"pixel_decoder."``)."""
    levels = sorted({int(k[len(prefix) + 3:].split(".")[0]) for k in sd if k.startswith(prefix + "up.")})
    if not levels or levels != list(range(len(levels))):
        raise KeyError(f"no MaskGIT-VQGAN decoder levels '{prefix}up.<i>.' found in the state dict")
    channels = [int(sd[f"{prefix}up.{i}.block.0.conv1.weight"].shape[0]) for i in levels]
    nres = len({k.split(".")[len(prefix.split(".")) + 2] for k in sd if k.startswith(f"{prefix}up.0.block.")})
    zc = int(sd[f"{prefix}conv_in.weight"].shape[1])
    return channels, nres, zc
