"""A small convolutional VQ tokenizer used to exercise the training engine (not a test file).

Loaded by ``tiny_recipe.yaml`` as ``class: tiny_model.py:TinyConvVQ`` (relative to the recipe);
images ``[B, 3, H, W]`` (H, W multiples of 4) -> ``[B, H/4 * W/4]`` ids of a ``codebook_size`` VQ
codebook.
"""
from __future__ import annotations

from torch import nn

from zoo.api import Tokenizer, TokenizerOutput, Tokens
from zoo.quant.vq import VectorQuantizer


class TinyConvVQ(Tokenizer):
    modality = "image"

    def __init__(self, width: int = 16, codebook_dim: int = 8, codebook_size: int = 64):
        super().__init__()
        self._k = codebook_size
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.GELU(), nn.Conv2d(width, width, 4, 2, 1),
                                     nn.GELU(), nn.Conv2d(width, codebook_dim, 1))
        self.quantize = VectorQuantizer(codebook_size, codebook_dim, beta=0.25)
        self.decoder = nn.Sequential(nn.Conv2d(codebook_dim, width, 3, 1, 1), nn.GELU(),
                                     nn.ConvTranspose2d(width, width, 4, 2, 1), nn.GELU(),
                                     nn.ConvTranspose2d(width, 3, 4, 2, 1))

    @property
    def codebook_size(self) -> int:
        return self._k

    def token_shape(self, input_shape):
        return (input_shape[-2] // 4 * (input_shape[-1] // 4),)

    def _quant(self, x):
        q = self.quantize(self.encoder(x * 2 - 1))
        return q, Tokens(ids=q.ids.flatten(1), input_shape=tuple(x.shape[-2:]))

    def _encode(self, x):
        return self._quant(x)[1]

    def _decode(self, tokens):
        h, w = tokens.input_shape
        z = self.quantize.ids_to_latents(tokens.ids.view(-1, h // 4, w // 4))
        return self.decoder(z) * 0.5 + 0.5

    def forward(self, x):
        q, tokens = self._quant(x)
        recon = self.decoder(q.z_q) * 0.5 + 0.5
        return TokenizerOutput(recon=recon, tokens=tokens, losses=dict(q.losses), stats=dict(q.stats))
