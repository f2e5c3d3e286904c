"""Inference decode of a diffusers ``AutoencoderKL`` (Stable Diffusion style VAE), faster on CPU.

:func:`vae_decode` runs the same modules with the same weights as ``vae.decode(z).sample`` but
keeps activations in channels-last memory (convolutions skip their layout reorders), computes
each nearest-x2 upsampler as :func:`~zoo.layers.upsample.upsample2x_conv3x3` (16 / 36 of the
multiply-adds), and applies SiLU and the residual sums in place. Results equal the diffusers
decode up to float summation order. Decoders with parts this path does not cover (time
conditioning, spatial norms, transposed-conv upsamplers, ...) go through diffusers unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .upsample import upsample2x_conv3x3

__all__ = ["vae_decode", "fast_decode_supported"]


def _plain_resnet(r: nn.Module) -> bool:
    return (type(r).__name__ == "ResnetBlock2D" and getattr(r, "time_emb_proj", None) is None
            and getattr(r, "upsample", None) is None and getattr(r, "downsample", None) is None
            and isinstance(r.norm1, nn.GroupNorm) and isinstance(r.norm2, nn.GroupNorm)
            and isinstance(r.nonlinearity, nn.SiLU) and float(getattr(r, "output_scale_factor", 1.0)) == 1.0)


def _plain_upsampler(u: nn.Module) -> bool:
    conv = getattr(u, "conv", None)
    return (type(u).__name__ == "Upsample2D" and getattr(u, "use_conv", False) and not u.use_conv_transpose
            and getattr(u, "interpolate", True) and getattr(u, "norm", None) is None and isinstance(conv, nn.Conv2d)
            and conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1))


def fast_decode_supported(vae: nn.Module) -> bool:
    """Whether ``vae``'s decoder consists only of the parts :func:`vae_decode` handles."""
    dec = getattr(vae, "decoder", None)
    if dec is None or not isinstance(getattr(dec, "conv_norm_out", None), nn.GroupNorm):
        return False
    if not isinstance(getattr(dec, "conv_act", None), nn.SiLU):
        return False
    mid = dec.mid_block
    if mid is None or type(mid).__name__ != "UNetMidBlock2D" or not all(_plain_resnet(r) for r in mid.resnets):
        return False
    for up in dec.up_blocks:
        if type(up).__name__ != "UpDecoderBlock2D" or not all(_plain_resnet(r) for r in up.resnets):
            return False
        if up.upsamplers is not None and not all(_plain_upsampler(u) for u in up.upsamplers):
            return False
    return True


def _resnet(r: nn.Module, x: torch.Tensor) -> torch.Tensor:
    h = r.conv1(F.silu(r.norm1(x), inplace=True))
    h = r.conv2(F.silu(r.norm2(h), inplace=True))  # dropout is the identity in eval
    shortcut = x if r.conv_shortcut is None else r.conv_shortcut(x)
    return h.add_(shortcut)


def vae_decode(vae: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``vae.decode(z).sample`` for unscaled latents ``z`` ``[B, C, h, w]`` -> images ``[B, 3, 8h, 8w]``
    (roughly [-1, 1], unclamped). The fast path runs only without autograd (inference)."""
    if torch.is_grad_enabled() or vae.training or not fast_decode_supported(vae):
        return vae.decode(z).sample
    dec = vae.decoder
    if getattr(vae, "post_quant_conv", None) is not None:
        z = vae.post_quant_conv(z)
    h = dec.conv_in(z.contiguous(memory_format=torch.channels_last))
    mid = dec.mid_block
    h = _resnet(mid.resnets[0], h)
    for attn, r in zip(mid.attentions, mid.resnets[1:]):
        if attn is not None:
            h = attn(h)
        h = _resnet(r, h)
    for up in dec.up_blocks:
        for r in up.resnets:
            h = _resnet(r, h)
        for u in up.upsamplers or []:
            h = upsample2x_conv3x3(h, u.conv.weight, u.conv.bias)
    h = dec.conv_out(F.silu(dec.conv_norm_out(h), inplace=True))
    return h.contiguous()
