"""Causal 3D convolutional video tokenizer (MAGVIT-v2-style layout) with FSQ / LFQ / VQ.

Encoder ``zoo.layers.conv3d.CausalConvEncoder3d`` -> 1x1x1 ``quant_conv`` -> quantizer on
every latent voxel -> ``post_quant_conv`` -> ``CausalConvDecoder3d``. Causal in time: frame 0
is coded alone and a clip of ``1 + 4k`` frames (two temporal stages) gives ``1 + k`` latent
frames, so the tokens of a clip's first ``1 + 4j`` frames do not depend on later frames.
Fully convolutional: any ``T = 1 + t_f * k`` and ``H, W`` multiples of the spatial factor.

The parameter names are those of the zoo's 2D image tokenizers (``zoo.layers.conv``), so
:meth:`CausalConvVideoTokenizer.inflate_from_2d` initialises it from a 2D checkpoint.

Shapes: video ``[B, 3, T, H, W]`` in [0, 1] -> ids ``[B, t*h*w]`` (time-major, then rows);
``Tokens.input_shape`` keeps ``(T, H, W)`` for decoding.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.conv3d import CausalConv3d, CausalConvDecoder3d, CausalConvEncoder3d, causal_frames_after, inflate_state_dict
from .video_quant import build_quantizer

__all__ = ["CausalConvVideoTokenizer"]


class CausalConvVideoTokenizer(Tokenizer):
    """Causal conv video tokenizer; see the module docstring.

    input_size: nominal (T, H, W) (used when decoding bare ids). ch, ch_mult, num_res_blocks,
    z_channels, attn_levels, num_groups, dropout: as :class:`~zoo.layers.conv.ConvEncoder2d`.
    temporal_down: per down-sampling stage, whether it also halves time (decoder mirrors it).
    quantizer: ``"fsq"`` (``fsq_levels``), ``"lfq"`` (``codebook_size`` = 2**bits) or ``"vq"``
    (``codebook_size`` x ``codebook_dim``, l2-normalised). recon_loss: ``"l1"`` | ``"mse"`` on [-1, 1].
    """

    modality = "video"

    def __init__(self, input_size=(17, 128, 128), ch: int = 128, ch_mult=(1, 2, 2, 4), num_res_blocks: int = 2,
                 z_channels: int = 256, temporal_down=(False, True, True), attn_levels=(), num_groups: int = 32,
                 dropout: float = 0.0, quantizer: str = "fsq", fsq_levels=(8, 8, 8, 5, 5, 5), codebook_dim: int = 8,
                 codebook_size: int = 2 ** 18, quantizer_kwargs: dict | None = None, recon_loss: str = "l1",
                 quant_weight: float = 1.0):
        super().__init__()
        if recon_loss not in ("l1", "mse"):
            raise ValueError(f"recon_loss must be 'l1' or 'mse', got {recon_loss!r}")
        attn_levels = list(attn_levels) if attn_levels is not None else None
        self.encoder = CausalConvEncoder3d(3, ch, ch_mult, num_res_blocks, z_channels, temporal_down, dropout,
                                           num_groups, attn_levels)
        self.decoder = CausalConvDecoder3d(z_channels, ch, ch_mult, num_res_blocks, 3,
                                           tuple(reversed(tuple(temporal_down))), dropout, num_groups, attn_levels)
        self.quantizer, self.codebook_dim = build_quantizer(quantizer, codebook_dim, codebook_size=codebook_size,
                                                        levels=fsq_levels, **(quantizer_kwargs or {}))
        self.quant_conv = CausalConv3d(z_channels, self.codebook_dim, 1)
        self.post_quant_conv = CausalConv3d(self.codebook_dim, z_channels, 1)
        self.spatial_factor, self.temporal_factor = self.encoder.spatial_factor, self.encoder.temporal_factor
        self.recon_loss, self.quant_weight = recon_loss, quant_weight
        self.input_size = tuple(int(v) for v in input_size)
        self.latent_grid(self.input_size)

    # ----------------------------------------------------------------- shapes
    @property
    def input_multiple(self) -> int:
        """Any height and width divisible by the spatial factor (``input_size`` is nominal)."""
        return self.spatial_factor

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def latent_grid(self, thw: tuple[int, ...]) -> tuple[int, int, int]:
        """(T, H, W) -> latent (t, h, w); ValueError unless T = 1 + t_f k and H, W divide by f."""
        t, h, w = (int(v) for v in thw)
        f = self.spatial_factor
        if h % f or w % f:
            raise ValueError(f"height and width must be multiples of {f}, got {h}x{w}")
        try:
            lt = causal_frames_after(t, self.temporal_factor)
        except ValueError:
            raise ValueError(f"this causal tokenizer takes 1 + {self.temporal_factor}k frames "
                             f"(e.g. {1 + self.temporal_factor * 4}), got {t}") from None
        return lt, h // f, w // f

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        t, h, w = self.latent_grid(tuple(input_shape)[-3:])
        return (t * h * w,)

    # ----------------------------------------------------------------- model
    def _quantize(self, x: torch.Tensor):
        z = self.quant_conv(self.encoder(x * 2.0 - 1.0))            # [B, C, t, h, w]
        b, c, t, h, w = z.shape
        q = self.quantizer(z.permute(0, 2, 3, 4, 1).reshape(b, t * h * w, c))
        return q, (t, h, w)

    def _pixels(self, z_q: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """z_q ``[B, N, C]`` -> ``[B, 3, T, H, W]`` in [-1, 1] (unclamped)."""
        b, _, c = z_q.shape
        z = z_q.reshape(b, *grid, c).permute(0, 4, 1, 2, 3).to(self.post_quant_conv.weight.dtype)
        return self.decoder(self.post_quant_conv(z))

    def _encode(self, x: torch.Tensor) -> Tokens:
        self.latent_grid(tuple(x.shape[-3:]))
        q, _ = self._quantize(x)
        return Tokens(ids=q.ids, input_shape=tuple(x.shape[-3:]))

    def _decode(self, tokens: Tokens) -> torch.Tensor:
        """Clips ``[B, 3, T, H, W]`` on the [0, 1] scale (unclamped)."""
        thw = tokens.input_shape or self.input_size
        grid = self.latent_grid(thw)
        n = grid[0] * grid[1] * grid[2]
        if tokens.ids.dim() != 2 or tokens.ids.shape[1] != n:
            raise ValueError(f"expected ids [B, {n}] for a {'x'.join(map(str, thw))} clip, got "
                             f"{tuple(tokens.ids.shape)} (pass Tokens with input_shape for other sizes)")
        z_q = self.quantizer.ids_to_latents(tokens.ids)
        return (self._pixels(z_q, grid) + 1.0) / 2.0

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Training forward: recon in [0, 1] (unclamped), losses ``recon`` and ``quant_*``."""
        x = self.validate_input(x)
        self.latent_grid(tuple(x.shape[-3:]))
        q, grid = self._quantize(x)
        recon = self._pixels(q.z_q, grid)
        target = x * 2.0 - 1.0
        rec = F.l1_loss(recon.float(), target) if self.recon_loss == "l1" else F.mse_loss(recon.float(), target)
        losses = {"recon": rec, **{f"quant_{k}": self.quant_weight * v for k, v in q.losses.items()}}
        tokens = Tokens(ids=q.ids.detach(), input_shape=tuple(x.shape[-3:]))
        return TokenizerOutput(recon=(recon + 1.0) / 2.0, tokens=tokens, losses=losses,
                               stats={k: v.detach() for k, v in q.stats.items()}, extras={"z_q": q.z_q})

    # ----------------------------------------------------------------- 2D -> 3D
    def inflate_from_2d(self, state_dict_2d: Mapping[str, torch.Tensor], mode: str = "last") -> dict[str, list[str]]:
        """Initialise from a 2D image tokenizer's state dict (``encoder.*`` / ``decoder.*`` in the
        :mod:`zoo.layers.conv` layout, e.g. FQGAN / VQGAN; ``quant_conv`` / ``post_quant_conv``
        when their shapes fit). Conv kernels are inflated in time (``mode``: ``"last"`` puts
        the 2D kernel on the current frame, ``"mean"`` spreads it over the taps), so a static
        clip is coded like the 2D model codes its frame.

        Returns ``{"loaded": 3D keys set, "ignored": 2D keys not used, "untouched": 3D keys
        left at their initial values}``. Raises ``ValueError`` on a shape conflict.
        """
        prefixes = ("encoder.", "decoder.")
        own = self.state_dict()
        usable = {}
        for k, v in state_dict_2d.items():
            if k.startswith(prefixes) and k in own:
                usable[k] = v
            elif k.split(".")[0] in ("quant_conv", "post_quant_conv") and k in own and \
                    v.shape[:2] == own[k].shape[:2]:
                usable[k] = v
        untouched = inflate_state_dict(self, usable, mode=mode, strict=True)
        return {"loaded": sorted(usable), "ignored": sorted(k for k in state_dict_2d if k not in usable),
                "untouched": untouched}
