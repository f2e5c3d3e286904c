"""FQGAN: factorized visual tokenizer (Bai et al., "Factorized Visual Tokenization and Generation").

A VQGAN/LlamaGen conv encoder trunk feeds G branch heads (a small transformer adapter, then
GroupNorm + SiLU + 3x3 conv), each projected by a 1x1 ``quant_conv`` to its own l2-normalised
sub-codebook (:class:`~zoo.quant.factorized.FactorizedQuantizer`). The concatenated sub-codes
go through a 1x1 ``post_quant_conv`` to the conv decoder. Dual: branches ``("vis", "sem")``;
triple: ``("vis", "sem_mid", "sem_high")``. Semantic branches can be aligned to frozen teacher
features through a feature-prediction head (``set_teacher``). Images in [0, 1]; the network
works in [-1, 1] like the official code.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.conv import ConvDecoder2d, ConvEncoder2d, group_norm
from ..layers.transformer import Transformer
from ..losses.semantic import semantic_alignment
from ..quant.factorized import FactorizedQuantizer

__all__ = ["FQGAN", "FactorizedAdapter", "FeatPredHead", "BRANCHES"]

BRANCHES = {"dual": ("vis", "sem"), "triple": ("vis", "sem_mid", "sem_high")}


class FactorizedAdapter(nn.Module):
    """Per-branch transformer on the latent grid: ``[B, C, h, w]`` -> same shape (learned pos-embed)."""

    def __init__(self, width: int, grid_size: int, depth: int = 6, num_heads: int = 8):
        super().__init__()
        self.positional_embedding = nn.Parameter(width ** -0.5 * torch.randn(grid_size ** 2, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, depth, num_heads, mlp_ratio=4.0)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h * w != self.positional_embedding.shape[0]:
            raise ValueError(f"adapter built for {self.positional_embedding.shape[0]} positions, got {h}x{w}")
        t = x.flatten(2).transpose(1, 2) + self.positional_embedding.to(x.dtype)
        t = self.ln_post(self.transformer(self.ln_pre(t)))
        return t.transpose(1, 2).reshape(b, c, h, w)


class FeatPredHead(nn.Module):
    """Quantised branch ``[B, D, h, w]`` -> predicted teacher tokens ``[B, 1 + h*w, width]`` (CLS first)."""

    def __init__(self, input_dim: int, width: int, grid_size: int, depth: int = 3, num_heads: int = 8):
        super().__init__()
        self.upscale = nn.Sequential(nn.Linear(input_dim, width), nn.ReLU(), nn.Linear(width, width))
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(1, width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid_size ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, depth, num_heads, mlp_ratio=4.0)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.upscale(x.flatten(2).transpose(1, 2))
        cls = self.class_embedding.to(t.dtype).expand(t.shape[0], 1, -1)
        t = torch.cat([cls, t], dim=1) + self.positional_embedding.to(t.dtype)
        return self.ln_post(self.transformer(self.ln_pre(t)))


class _BranchHead(nn.Module):
    def __init__(self, width: int, z_channels: int, grid_size: int, adapter_depth: int, adapter_heads: int,
                 num_groups: int):
        super().__init__()
        self.adapter = (FactorizedAdapter(width, grid_size, adapter_depth, adapter_heads) if adapter_depth > 0
                        else nn.Identity())
        self.norm_out = group_norm(width, num_groups)
        self.conv_out = nn.Conv2d(width, z_channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.adapter(h))))


class FQGAN(Tokenizer):
    """Factorized VQ tokenizer. ``encode``: images ``[B, 3, H, W]`` -> ids ``[B, (H/f)*(W/f), G]``.

    variant: ``"dual"`` or ``"triple"`` (branch names in :data:`BRANCHES`, ids in that order).
    codebook_size / codebook_dim: per sub-codebook. ch, ch_mult, num_res_blocks, z_channels,
    num_groups: conv trunk (f = 2**(len(ch_mult)-1)). image_size: training resolution (sets the
    adapters' position count). adapter_depth=0 drops the transformer adapters.
    teacher_dims: ``{branch: teacher width}`` for the feature-prediction heads (None: no heads).
    Loss weights (FQGAN's commit_loss_beta, entropy_loss_ratio, disentanglement_ratio, semantic_weight):
    commitment_weight, entropy_weight, disentangle_weight, semantic_weight;
    semantic_loss ``"infonce"`` (FQGAN) or ``"cosine"``.
    """

    modality = "image"

    def __init__(self, variant: str = "dual", codebook_size: int = 16384, codebook_dim: int = 8,
                 z_channels: int = 256, ch: int = 128, ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, num_groups: int = 32, dropout: float = 0.0, image_size: int = 256,
                 adapter_depth: int = 6, adapter_heads: int = 8, teacher_dims: dict | None = None,
                 feat_depth: int = 3, feat_heads: int = 8, commitment_weight: float = 0.25,
                 entropy_weight: float = 0.0, disentangle_weight: float = 0.0, semantic_weight: float = 0.5,
                 semantic_loss: str = "infonce"):
        super().__init__()
        if variant not in BRANCHES:
            raise ValueError(f"variant must be one of {sorted(BRANCHES)}, got {variant!r}")
        self.branches = BRANCHES[variant]
        teacher_dims = dict(teacher_dims or {})
        if set(teacher_dims) - set(self.branches):
            raise ValueError(f"teacher_dims keys {sorted(teacher_dims)} are not branches of {variant}: {self.branches}")
        self.encoder = ConvEncoder2d(3, ch, ch_mult, num_res_blocks, z_channels=None, dropout=dropout,
                                     num_groups=num_groups)
        self.factor = self.encoder.downsample_factor
        if image_size % self.factor:
            raise ValueError(f"image_size {image_size} is not divisible by the downsampling factor {self.factor}")
        grid = image_size // self.factor
        self.image_size, self.adapter_depth = image_size, adapter_depth
        width = self.encoder.out_width
        self.heads = nn.ModuleList(_BranchHead(width, z_channels, grid, adapter_depth, adapter_heads, num_groups)
                                   for _ in self.branches)
        self.quant_convs = nn.ModuleList(nn.Conv2d(z_channels, codebook_dim, 1) for _ in self.branches)
        self.quantizer = FactorizedQuantizer(codebook_size, codebook_dim, len(self.branches), beta=commitment_weight,
                                             entropy_loss_ratio=entropy_weight, l2_norm=True,
                                             disentangle_ratio=disentangle_weight, names=self.branches)
        self.post_quant_conv = nn.Conv2d(codebook_dim * len(self.branches), z_channels, 1)
        self.decoder = ConvDecoder2d(z_channels, ch, ch_mult, num_res_blocks, 3, dropout, num_groups)
        self.feat_heads = nn.ModuleDict({name: FeatPredHead(codebook_dim, d, grid, feat_depth, feat_heads)
                                         for name, d in teacher_dims.items()})
        self.semantic_weight, self.semantic_loss = semantic_weight, semantic_loss
        self._teachers: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def codebook_size(self) -> tuple[int, ...]:
        return self.quantizer.codebook_size

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    @property
    def input_multiple(self) -> int | None:
        """Without adapters (learned positions) any side divisible by the downsampling factor."""
        return None if self.adapter_depth > 0 else self.factor

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w = input_shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"image size {h}x{w} is not divisible by {self.factor}")
        return ((h // self.factor) * (w // self.factor), len(self.branches))

    def set_teacher(self, branch: str, teacher: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Frozen feature network for ``branch``: images ``[B, 3, H, W]`` in [0, 1] -> ``[B, D]``
        (D = ``teacher_dims[branch]``). Not saved with the model; None removes it."""
        if branch not in self.feat_heads:
            raise ValueError(f"branch {branch!r} has no feature-prediction head (have {list(self.feat_heads)})")
        if teacher is None:
            self._teachers.pop(branch, None)
        else:
            if isinstance(teacher, nn.Module):
                teacher.requires_grad_(False).eval()
            self._teachers[branch] = teacher

    # ------------------------------------------------------------------ network
    def branch_latents(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images in [0, 1] -> the G quantizer inputs ``[B, codebook_dim, h, w]`` in branch order."""
        h = self.encoder(x * 2.0 - 1.0)
        return [qc(head(h)) for head, qc in zip(self.heads, self.quant_convs)]

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        """Concatenated codes ``[B, G*codebook_dim, h, w]`` -> image in [-1, 1] (unclamped)."""
        return self.decoder(self.post_quant_conv(z_q))

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        q = self.quantizer(self.branch_latents(x))
        dec = self.decode_latents(q.z_q)
        losses = {"recon": F.mse_loss(dec, x * 2.0 - 1.0), **q.losses}
        branch_codes = dict(zip(self.branches, self.quantizer.split(q.z_q)))
        feats = {}
        for name, head in self.feat_heads.items():
            feats[name] = head(branch_codes[name])
            teacher = self._teachers.get(name)
            if teacher is not None:
                with torch.no_grad():
                    target = teacher(x)
                pred = feats[name][:, 0] if target.dim() == 2 else feats[name][:, 1:]
                losses[f"semantic_{name}"] = self.semantic_weight * semantic_alignment(
                    self.semantic_loss if target.dim() == 2 else "cosine", pred, target)
        tokens = Tokens(ids=q.ids.flatten(1, 2), input_shape=tuple(x.shape[-2:]))
        return TokenizerOutput(recon=(dec + 1.0) / 2.0, tokens=tokens, losses=losses, stats=q.stats,
                               extras={"z_q": q.z_q, "semantic_features": feats})

    def _encode(self, x: torch.Tensor) -> Tokens:
        q = self.quantizer(self.branch_latents(x))
        return Tokens(ids=q.ids.flatten(1, 2), input_shape=tuple(x.shape[-2:]))

    def _grid(self, tokens: Tokens) -> tuple[int, int]:
        n = tokens.ids.shape[1]
        if tokens.input_shape is not None:
            h, w = (s // self.factor for s in tokens.input_shape[-2:])
        else:
            h = w = int(round(n ** 0.5))
        if h * w != n:
            raise ValueError(f"{n} tokens do not form a {h}x{w} grid; pass Tokens with input_shape")
        return h, w

    def _decode(self, tokens: Tokens) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` on the [0, 1] scale (unclamped)."""
        ids = tokens.ids
        if ids.dim() != 3 or ids.shape[-1] != len(self.branches):
            raise ValueError(f"FQGAN ids must be [B, N, {len(self.branches)}], got {tuple(ids.shape)}")
        h, w = self._grid(tokens)
        z_q = self.quantizer.ids_to_latents(ids.view(ids.shape[0], h, w, -1))
        return (self.decode_latents(z_q) + 1.0) / 2.0
