"""A global linear transform code added to TiTok's learned latents and pixels (``linear_path=True``).

Encoder side: image ``[B, 3, S, S]`` -> ``[B, N, D]`` added to the ViT encoder's pre-quantizer
latents. Decoder side: quantized codes ``[B, L, D]`` (L <= N; absent tail tokens count as code 0)
-> ``[B, 3, S, S]`` added to the ViT decoder's pixels. Both maps are plain affine maps over the
whole image / all tokens, which a ViT learns slowly (a token must weight every patch by its
position); initialised from a PCA of training images (:func:`zoo.train.pca_init.pca_init_linear_path_`)
the pair is a transform code (like JPEG's DCT, but learned) from step 0, and the transformer learns
what it misses. Weights are stored times ``sqrt(fan_in)`` (unit-scale entries) so that Adam's
per-entry steps are small relative to them, as for the transformer's weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.linear import linear

__all__ = ["LinearTransformPath"]


class _ScaledLinear(nn.Module):
    """``y = (x @ weight.T) / sqrt(in_features) + bias`` (weight entries ~ unit scale)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.gain = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # scale the [B, out] product rather than the [out, in] weight on every call; the project's
        # linear takes the oneDNN fast path in fp32 CPU inference
        return torch.add(self.bias.to(x.dtype), linear(x, self.weight.to(x.dtype)), alpha=self.gain)

    def set_matrix(self, matrix: torch.Tensor, bias: torch.Tensor) -> None:
        """Make the layer compute ``x @ matrix.T + bias`` (matrix ``[out, in]``)."""
        with torch.no_grad():
            self.weight.copy_(matrix / self.gain)
            self.bias.copy_(bias)


class LinearTransformPath(nn.Module):
    """Affine image -> latent-token and code -> image maps (see the module docstring).

    image_size: S; num_tokens: N; token_dim: D (the quantizer's channels). Zero at construction
    (the model is then exactly the ViT tokenizer) until initialised or trained.
    """

    def __init__(self, image_size: int, num_tokens: int, token_dim: int, channels: int = 3):
        super().__init__()
        self.image_shape = (channels, image_size, image_size)
        self.num_tokens, self.token_dim = num_tokens, token_dim
        pixels, latents = channels * image_size * image_size, num_tokens * token_dim
        self.encoder = _ScaledLinear(pixels, latents)
        self.decoder = _ScaledLinear(latents, pixels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B, 3, S, S]`` -> ``[B, N, D]``."""
        return self.encoder(x.flatten(1)).view(x.shape[0], self.num_tokens, self.token_dim)

    def decode(self, codes: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``[B, L, D]`` (the first L <= N tokens; key_padding ``[B, L]`` bool, True = present)
        -> ``[B, 3, S, S]``. Missing and hidden tokens contribute code 0."""
        b, length, _ = codes.shape
        if key_padding is not None:
            codes = codes * key_padding[..., None].to(codes.dtype)
        if length < self.num_tokens:
            codes = F.pad(codes, (0, 0, 0, self.num_tokens - length))
        return self.decoder(codes.reshape(b, -1)).view(b, *self.image_shape)
