"""TiTok's ViT encoder (image -> N latent tokens) and decoder (latent tokens -> grid features).

Encoder: ``[cls] + g*g patch tokens`` (+ learned positions), then N learned latent tokens
(+ their positions); pre-LN transformer; the last N outputs -> ``ln_post`` -> per-token linear
map to ``out_dim`` (the 1x1 ``conv_out`` of the official code).
Decoder: ``[cls] + g*g mask tokens`` (+ positions), then the embedded latent tokens (+ the first
L latent positions, so a tail-truncated sequence of L <= N tokens is valid); pre-LN transformer;
the g*g grid outputs -> ``ln_post`` -> head. Head ``"proxy"``: 1x1 conv W->2W, tanh, 1x1 conv
-> 1024 MaskGIT-VQGAN code logits ``[B, 1024, g, g]``; head ``"pixel"``: 1x1 conv to p*p*3,
unpatchify, 3x3 conv -> ``[B, 3, g*p, g*p]``.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..layers import PatchEmbed2d, Transformer

__all__ = ["TiTokEncoder", "TiTokDecoder", "VIT_SIZES"]

#: official (width, depth, heads) of the ViT size names
VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}


def _param(*shape: int, scale: float) -> nn.Parameter:
    return nn.Parameter(scale * torch.randn(*shape))


class TiTokEncoder(nn.Module):
    """Image ``[B, 3, S, S]`` -> latents ``[B, N, out_dim]`` (float; VAE: out_dim = 2 * token size).

    legacy_readout: reproduce the official legacy models' raw ``reshape(B, W, N, 1)`` of the
    ``[B, N, W]`` token tensor before the 1x1 projection (it mixes tokens and channels; the
    published two-stage checkpoints are trained with it). False: a plain per-token projection.
    """

    def __init__(self, image_size: int, patch_size: int, width: int, depth: int, num_heads: int,
                 num_tokens: int, out_dim: int, legacy_readout: bool = False):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.grid = image_size // patch_size
        self.num_tokens, self.width, self.legacy_readout = num_tokens, width, legacy_readout
        scale = width ** -0.5
        self.patch_embed = PatchEmbed2d(3, width, patch_size)
        self.class_embedding = _param(1, width, scale=scale)
        self.positional_embedding = _param(self.grid ** 2 + 1, width, scale=scale)
        self.latent_tokens = _param(num_tokens, width, scale=scale)
        self.latent_token_positional_embedding = _param(num_tokens, width, scale=scale)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, depth, num_heads, mlp_ratio=4.0)
        self.ln_post = nn.LayerNorm(width)
        self.conv_out = nn.Conv2d(width, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        patches = self.patch_embed(x)
        cls = self.class_embedding.to(patches.dtype).expand(b, -1, -1)
        seq = torch.cat([cls, patches], dim=1) + self.positional_embedding.to(patches.dtype)
        latents = (self.latent_tokens + self.latent_token_positional_embedding).to(patches.dtype)
        seq = torch.cat([seq, latents.expand(b, -1, -1)], dim=1)
        seq = self.transformer(self.ln_pre(seq))
        tokens = self.ln_post(seq[:, -self.num_tokens:])  # [B, N, W]
        if self.legacy_readout:  # raw memory reinterpretation, NOT a transpose
            tokens = tokens.reshape(b, self.width, self.num_tokens).transpose(1, 2)
        weight = self.conv_out.weight.flatten(1)  # [out_dim, W]
        return F.linear(tokens, weight, self.conv_out.bias)  # [B, N, out_dim]


class TiTokDecoder(nn.Module):
    """Latent tokens ``[B, L, token_dim]`` (L <= N) -> ``[B, 1024, g, g]`` logits (head "proxy")
    or ``[B, 3, g*p, g*p]`` pixels (head "pixel").

    key_padding (forward): optional bool ``[B, L]``, True = token present; absent latent tokens
    are hidden from attention, which equals decoding the truncated sequence.
    text_dim / text_len: TA-TiTok's text guidance (``[B, text_len, text_dim]`` CLIP features
    appended to the sequence; when none is given the text tokens are left out, with a warning);
    0 disables it.
    """

    def __init__(self, image_size: int, patch_size: int, width: int, depth: int, num_heads: int,
                 num_tokens: int, token_dim: int, head: str = "pixel", proxy_codebook_size: int = 1024,
                 text_dim: int = 0, text_len: int = 0):
        super().__init__()
        if head not in ("pixel", "proxy"):
            raise ValueError(f"decoder head must be 'pixel' or 'proxy', got {head!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.grid, self.patch_size, self.width, self.head = image_size // patch_size, patch_size, width, head
        self.num_tokens = num_tokens
        scale = width ** -0.5
        self.decoder_embed = nn.Linear(token_dim, width)
        self.class_embedding = _param(1, width, scale=scale)
        self.positional_embedding = _param(self.grid ** 2 + 1, width, scale=scale)
        self.mask_token = _param(1, 1, width, scale=scale)
        self.latent_token_positional_embedding = _param(num_tokens, width, scale=scale)
        self.text_len = text_len if text_dim else 0
        self._warned_no_text = False
        if text_dim:
            self.text_guidance_proj = nn.Linear(text_dim, width)
            self.text_guidance_positional_embedding = _param(text_len, width, scale=scale)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, depth, num_heads, mlp_ratio=4.0)
        self.ln_post = nn.LayerNorm(width)
        if head == "proxy":
            self.ffn = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.Tanh(),
                                     nn.Conv2d(2 * width, proxy_codebook_size, 1))
            self.conv_out = None
        else:
            self.ffn = nn.Sequential(nn.Conv2d(width, patch_size * patch_size * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, key_padding: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> torch.Tensor:
        b, length, _ = z.shape
        if length > self.num_tokens:
            raise ValueError(f"decoder got {length} tokens, at most {self.num_tokens}")
        x = self.decoder_embed(z) + self.latent_token_positional_embedding[:length].to(z.dtype)
        g2 = self.grid ** 2
        queries = torch.cat([self.class_embedding[None].expand(b, -1, -1),
                             self.mask_token.expand(b, g2, -1)], dim=1)
        queries = (queries + self.positional_embedding).to(x.dtype)
        parts = [queries, x]
        if self.text_len and text is None and not self._warned_no_text:
            warnings.warn("TA-TiTok decoder used without text guidance: the text tokens are left out (the published "
                          f"numbers use text_guidance=[B, {self.text_len}, {self.text_guidance_proj.in_features}] "
                          "CLIP ViT-L/14-336 text features)", stacklevel=3)
            self._warned_no_text = True
        if self.text_len and text is not None:
            if text.shape[1:] != (self.text_len, self.text_guidance_proj.in_features):
                raise ValueError(f"text_guidance must be [B, {self.text_len}, {self.text_guidance_proj.in_features}], "
                                 f"got {tuple(text.shape)}")
            parts.append(self.text_guidance_proj(text.to(x.dtype)) + self.text_guidance_positional_embedding)
        elif text is not None:
            raise ValueError("this decoder takes no text guidance (not a TA-TiTok checkpoint)")
        seq = torch.cat(parts, dim=1)
        mask = None
        if key_padding is not None:
            keep = torch.ones(b, seq.shape[1], dtype=torch.bool, device=seq.device)
            keep[:, 1 + g2:1 + g2 + length] = key_padding
            mask = keep[:, None, None, :]
        seq = self.transformer(self.ln_pre(seq), mask=mask)
        grid = self.ln_post(seq[:, 1:1 + g2]).transpose(1, 2).reshape(b, self.width, self.grid, self.grid)
        out = self.ffn(grid)
        if self.head == "proxy":
            return out
        out = rearrange(out, "b (p1 p2 c) h w -> b c (h p1) (w p2)", p1=self.patch_size, p2=self.patch_size)
        return self.conv_out(out)
