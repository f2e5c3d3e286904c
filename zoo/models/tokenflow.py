"""TokenFlow-style dual-codebook tokenizer (Qu et al., "TokenFlow: Unified Image Tokenizer for
Multimodal Understanding and Generation"), composed from zoo blocks.

Two encoders look at the image: a semantic CLIP-layout ViT (``encoder_vqkd``; patch tokens ->
``encode_task_layer`` -> Ds channels; TokenFlow initialises it from CLIP ViT-B/16) and a VQGAN
conv encoder (-> ``quant_conv`` -> Dp channels) on the same h x w grid. The concatenated latent
``[semantic | pixel]`` is quantised by the shared-mapping quantizer (one index per token for both
codebooks) with TokenFlow's multi-scale residual schedule. The pixel half is decoded to the image
by the conv decoder; the semantic half by a VQKD-style ViT (``decoder_vqkd``) +
``decode_task_layer`` to teacher features (trained with a cosine loss when a frozen teacher is
set with :meth:`TokenFlow.set_teacher`). Module names follow the official ``TokenFlow`` so that
``zoo.convert.tokenflow`` only renames inside the transformers.
Ids ``[B, sum_s s^2]`` (per-scale maps concatenated). Images in [0, 1] (the network sees [-1, 1]).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.conv import ConvDecoder2d, ConvEncoder2d
from ..layers.transformer import Block
from ..losses.semantic import cosine_alignment
from ..quant.dual import (TOKENFLOW_SCALES, DualCodebookQuantizer, MultiScaleResidualQuantizer,
                          SharedMappingQuantizer)

__all__ = ["TokenFlow", "ClipVisionEncoder", "TokenViTDecoder"]


def _interpolate_pos(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """Learned positions ``[1 + g0*g0, D]`` (class token first) -> ``[1 + grid*grid, D]``: bicubic
    resize of the patch positions with DINO's +0.1 scale offset (as CLIP / VQKD code do)."""
    n0 = pos.shape[0] - 1
    g0 = int(round(n0 ** 0.5))
    if g0 == grid:
        return pos
    patch = pos[1:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    scale = (grid + 0.1) / g0
    patch = F.interpolate(patch, scale_factor=(scale, scale), mode="bicubic")
    if patch.shape[-1] != grid:
        raise ValueError(f"cannot resize a {g0}x{g0} position grid to {grid}x{grid}")
    return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(grid * grid, -1)], dim=0)


class _QuickGELUMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))


class ClipVisionEncoder(nn.Module):
    """CLIP ViT image encoder (OpenAI layout) -> patch tokens ``[B, (H/p)*(W/p), width]``.

    ``conv1`` (bias-free patch conv), ``class_embedding``, learned ``positional_embedding`` for a
    ``pos_grid`` x ``pos_grid`` grid (bicubic-interpolated for other sizes), ``ln_pre``, pre-norm
    blocks with QuickGELU MLPs, ``ln_post`` applied to the patch tokens (class token dropped).
    """

    def __init__(self, patch_size: int, width: int, depth: int, num_heads: int, pos_grid: int):
        super().__init__()
        self.patch_size = patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(pos_grid ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            blk = Block(width, num_heads)
            blk.mlp = _QuickGELUMlp(width, 4 * width)
            self.blocks.append(blk)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.conv1(x)
        grid = t.shape[-1]
        if t.shape[-2] != grid:
            raise ValueError(f"square inputs only, got {tuple(x.shape)}")
        t = t.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(t.dtype).expand(t.shape[0], 1, -1)
        t = torch.cat([cls, t], dim=1) + _interpolate_pos(self.positional_embedding, grid).to(t.dtype)
        t = self.ln_pre(t)
        for blk in self.blocks:
            t = blk(t)
        return self.ln_post(t[:, 1:])


class TokenViTDecoder(nn.Module):
    """VQKD/BEiT-style ViT on a code grid ``[B, in_dim, g, g]`` -> tokens ``[B, g*g, width]``.

    ``patch_embed.proj`` (1x1 conv), ``cls_token``, learned ``pos_embed`` (for ``pos_grid``,
    interpolated otherwise), pre-norm GELU blocks (LayerNorm eps 1e-6), ``fc_norm`` on the patch tokens.
    """

    def __init__(self, in_dim: int, width: int, depth: int, num_heads: int, pos_grid: int):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_dim, width, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, pos_grid ** 2 + 1, width))
        self.blocks = nn.ModuleList(Block(width, num_heads, norm_eps=1e-6) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed.proj(z)
        grid = t.shape[-1]
        t = t.flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.to(t.dtype).expand(t.shape[0], 1, -1), t], dim=1)
        t = t + _interpolate_pos(self.pos_embed[0], grid).to(t.dtype)
        for blk in self.blocks:
            t = blk(t)
        return self.fc_norm(t[:, 1:])


def _task_layer(width: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, out_dim))


class TokenFlow(Tokenizer):
    """Dual-codebook tokenizer with shared mapping. ``encode``: ``[B, 3, H, W]`` -> ids ``[B, sum s^2]``.

    codebook_size K (shared index); semantic_dim Ds / pixel_dim Dp: code widths. Pixel branch
    (VQGAN conv): ch, ch_mult, num_res_blocks, z_channels, num_groups; dec_ch / dec_num_res_blocks
    for a wider decoder (TokenFlow's "enhanced decoder": 256, 4). Semantic branch: CLIP-layout ViT
    on ``patch_size`` patches (sem_width, sem_depth, sem_heads, learned positions for a
    ``sem_pos_grid`` grid) + ``encode_task_layer``; VQKD-style decoder (sem_dec_width,
    sem_dec_depth, sem_dec_heads) + ``decode_task_layer`` to ``teacher_dim`` features.
    Grid side = image_size / patch_size = pixel downsampling. scales: multi-scale schedule (last =
    grid side; default TokenFlow's clipb_224 prefix that fits the grid). scale_drop_prob: 0.1 in
    TokenFlow. Loss weights: commitment_weight (the official commit_loss_beta), entropy_weight (the official
    entropy_loss_ratio), semantic_weight.
    codebook_mapping: ``"shared"`` (TokenFlow: one index for both codebooks, ids ``[B, T]``) or
    ``"separate"`` (DualToken-style: own index per codebook, ids ``[B, T, 2]``, semantic first).
    """

    modality = "image"

    def __init__(self, codebook_size: int = 32768, semantic_dim: int = 32, pixel_dim: int = 8,
                 image_size: int = 224, ch: int = 128, ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256, num_groups: int = 32,
                 dec_ch: int | None = None, dec_num_res_blocks: int | None = None, patch_size: int = 16,
                 sem_width: int = 768, sem_depth: int = 12, sem_heads: int = 12, sem_pos_grid: int | None = None,
                 sem_dec_width: int | None = None, sem_dec_depth: int = 3, sem_dec_heads: int | None = None,
                 teacher_dim: int = 512, scales: Sequence[int] | None = None, scale_drop_prob: float = 0.1,
                 commitment_weight: float = 0.25, entropy_weight: float = 0.0, semantic_weight: float = 1.0,
                 codebook_mapping: str = "shared"):
        super().__init__()
        self.encoder = ConvEncoder2d(3, ch, ch_mult, num_res_blocks, z_channels, num_groups=num_groups)
        self.factor = self.encoder.downsample_factor
        if self.factor != patch_size:
            raise ValueError(f"the pixel encoder downsamples by {self.factor} but patch_size is {patch_size}: "
                             "both branches must share the token grid")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.grid = image_size // patch_size
        if scales is None:
            scales = tuple(s for s in TOKENFLOW_SCALES["clipb_224"] if s < self.grid) + (self.grid,)
        if scales[-1] != self.grid:
            raise ValueError(f"the last scale must be the grid side {self.grid}, got {tuple(scales)}")
        pos_grid = sem_pos_grid or self.grid
        self.encoder_vqkd = ClipVisionEncoder(patch_size, sem_width, sem_depth, sem_heads, pos_grid)
        self.encode_task_layer = _task_layer(sem_width, semantic_dim)
        self.quant_conv = nn.Conv2d(z_channels, pixel_dim, 1)
        if codebook_mapping == "shared":
            inner = SharedMappingQuantizer(codebook_size, semantic_dim, pixel_dim, beta=commitment_weight,
                                           entropy_loss_ratio=entropy_weight)
        elif codebook_mapping == "separate":
            inner = DualCodebookQuantizer(codebook_size, semantic_dim, pixel_dim, beta=commitment_weight,
                                          entropy_loss_ratio=entropy_weight)
        else:
            raise ValueError(f"codebook_mapping must be 'shared' or 'separate', got {codebook_mapping!r}")
        self.quantizer = MultiScaleResidualQuantizer(inner, scales, scale_drop_prob)
        self.post_quant_conv = nn.Conv2d(pixel_dim, z_channels, 1)
        self.decoder = ConvDecoder2d(z_channels, dec_ch or ch, ch_mult, dec_num_res_blocks or num_res_blocks, 3,
                                     num_groups=num_groups)
        dec_width = sem_dec_width or sem_width
        self.decoder_vqkd = TokenViTDecoder(semantic_dim, dec_width, sem_dec_depth, sem_dec_heads or sem_heads,
                                            pos_grid)
        self.decode_task_layer = _task_layer(dec_width, teacher_dim)
        self.semantic_dim, self.pixel_dim, self.semantic_weight = semantic_dim, pixel_dim, semantic_weight
        self._teacher: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def codebook_size(self) -> int | tuple[int, ...]:
        return self.quantizer.codebook_size

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.grid * self.factor, self.grid * self.factor)

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w = input_shape[-2:]
        if h != self.grid * self.factor or w != self.grid * self.factor:
            raise ValueError(f"TokenFlow takes {self.grid * self.factor}x{self.grid * self.factor} images, got {h}x{w}")
        groups = self.quantizer.codebook_size
        return (self.quantizer.num_tokens,) + ((len(groups),) if isinstance(groups, tuple) else ())

    def set_teacher(self, teacher: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Frozen feature network: images ``[B, 3, H, W]`` in [0, 1] -> patch features
        ``[B, grid*grid, teacher_dim]``. Not saved with the model; None removes it."""
        if isinstance(teacher, nn.Module):
            teacher.requires_grad_(False).eval()
        self._teacher = teacher

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> quantizer input ``[B, Ds + Dp, grid, grid]`` ([semantic | pixel])."""
        if x.shape[-1] != self.grid * self.factor or x.shape[-2] != self.grid * self.factor:
            raise ValueError(f"TokenFlow takes {self.grid * self.factor}px square images, got {tuple(x.shape)}")
        xs = x * 2.0 - 1.0  # TokenFlow feeds [-1, 1] images to both encoders (clipb_224: no CLIP normalisation)
        sem = self.encode_task_layer(self.encoder_vqkd(xs))
        sem = sem.transpose(1, 2).reshape(x.shape[0], self.semantic_dim, self.grid, self.grid)
        return torch.cat([sem, self.quant_conv(self.encoder(xs))], dim=1)

    def decode_latents(self, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, Ds + Dp, g, g]`` -> (image in [-1, 1] unclamped, semantic features ``[B, g*g, teacher_dim]``)."""
        sem, pix = torch.split(z_q, [self.semantic_dim, self.pixel_dim], dim=1)
        feats = self.decode_task_layer(self.decoder_vqkd(sem))
        return self.decoder(self.post_quant_conv(pix)), feats

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        q = self.quantizer(self.latents(x))
        dec, feats = self.decode_latents(q.z_q)
        losses = {"recon": F.mse_loss(dec, x * 2.0 - 1.0), **q.losses}
        if self._teacher is not None:
            with torch.no_grad():
                target = self._teacher(x)
            losses["semantic"] = self.semantic_weight * cosine_alignment(feats, target)
        return TokenizerOutput(recon=(dec + 1.0) / 2.0, tokens=Tokens(ids=q.ids, input_shape=tuple(x.shape[-2:])),
                               losses=losses, stats=q.stats, extras={"z_q": q.z_q, "semantic_features": feats})

    def _encode(self, x: torch.Tensor) -> Tokens:
        return Tokens(ids=self.quantizer(self.latents(x)).ids, input_shape=tuple(x.shape[-2:]))

    def _decode(self, tokens: Tokens) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` on the [0, 1] scale (unclamped)."""
        want = 2 if isinstance(self.codebook_size, int) else 3
        if tokens.ids.dim() != want:
            raise ValueError(f"TokenFlow ids must be {'[B, T]' if want == 2 else '[B, T, 2]'}, "
                             f"got {tuple(tokens.ids.shape)}")
        dec, _ = self.decode_latents(self.quantizer.ids_to_latents(tokens.ids))
        return (dec + 1.0) / 2.0

    def decode_semantic(self, tokens: Tokens | torch.Tensor) -> torch.Tensor:
        """Ids -> reconstructed teacher features ``[B, grid*grid, teacher_dim]`` (understanding path)."""
        tokens = self._as_tokens(tokens)
        with torch.inference_mode():
            return self.decode_latents(self.quantizer.ids_to_latents(tokens.ids))[1]
