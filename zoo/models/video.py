"""Holistic 1D video tokenizer ("TiTok-3D", LARP-style): a clip -> K ids, no space-time grid.

Encoder: tubelet patches (``tubelet x patch x patch``) + factorised space-time position
embeddings, followed by K learned latent queries; a ViT reads both and the K query outputs
are projected to ``codebook_dim`` and quantised (l2-normalised VQ, or FSQ / LFQ). Decoder: the K
codes (+ learned 1D positions, sin-cos initialised) followed by one mask query per tubelet
(+ factorised positions); a ViT and a linear head turn the mask queries back into tubelet pixels.
Optional (``prior=True``): LARP's autoregressive prior, a small causal transformer trained
to predict each next token from the quantised latents; its cross-entropy joins the losses.

Shapes: video ``[B, 3, T, H, W]`` in [0, 1] at exactly ``input_size``; ids ``[B, K]``.
Official LARP checkpoints load through ``zoo.convert.larp`` (``larp_l_long.k600_ucf101``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers import PatchEmbed3d, Transformer, sincos_1d, unpatchify_3d
from .video_prior import LatentPrior
from .video_quant import build_quantizer, codebook_vectors

__all__ = ["FactorizedPosEmbed3d", "Video1DTokenizer"]


class FactorizedPosEmbed3d(nn.Module):
    """Learned position embedding ``pos[t, h, w] = time[t] + row[h] + col[w]`` -> ``[T*H*W, D]``.

    Each factor starts as a 1D sin-cos table (so different axes start decorrelated).
    """

    def __init__(self, grid: tuple[int, int, int], dim: int):
        super().__init__()
        gt, gh, gw = grid
        self.time = nn.Parameter(sincos_1d(torch.arange(gt), dim))
        self.row = nn.Parameter(sincos_1d(torch.arange(gh), dim))
        self.col = nn.Parameter(sincos_1d(torch.arange(gw), dim))

    def forward(self) -> torch.Tensor:
        pos = self.time[:, None, None] + self.row[None, :, None] + self.col[None, None, :]
        return pos.flatten(0, 2)


class Video1DTokenizer(Tokenizer):
    """LARP-style 1D video tokenizer; see the module docstring.

    input_size: (T, H, W) clip size; tubelet, patch_size: tubelet extent in frames / pixels.
    num_tokens: K latent tokens. encoder_* / decoder_*: ViT width, depth, heads.
    quantizer: ``"vq"`` (``codebook_size`` codes of ``codebook_dim``, l2-normalised),
        ``"fsq"`` (``fsq_levels``) or ``"lfq"`` (``codebook_size`` = 2**bits).
    recon_loss: ``"l1"`` or ``"mse"`` on the model's pixels; quant_weight scales quantizer losses.
    signed_pixels: the networks see / produce pixels in [-1, 1] (True) or in [0, 1] (False, LARP).
    enc_norm: LayerNorm on the encoder's query outputs before the code projection (LARP: none).
    query_init_std: std of the latent queries' Gaussian init (LARP: 0.02); latent_pos_init_scale:
        factor on the decoder's sin-cos latent positions at init. Small models train more reliably
        with distinct queries (std ~1) and positions that do not drown the codes (~0.1).
    prior: add LARP's AR prior (width ``prior_width``, ``prior_depth`` layers, ``prior_heads``),
        its next-token cross-entropy weighted by ``prior_weight``.
    """

    modality = "video"

    def __init__(self, input_size=(16, 128, 128), tubelet: int = 4, patch_size: int = 8, num_tokens: int = 1024,
                 enc_width: int = 768, enc_depth: int = 12, enc_heads: int = 12,
                 dec_width: int = 768, dec_depth: int = 12, dec_heads: int = 12, mlp_ratio: float = 4.0,
                 quantizer: str = "vq", codebook_dim: int = 16, codebook_size: int = 8192, fsq_levels=None,
                 quantizer_kwargs: dict | None = None, recon_loss: str = "l1", quant_weight: float = 0.1,
                 prior: bool = False, prior_width: int = 384, prior_depth: int = 12, prior_heads: int = 6,
                 prior_weight: float = 0.06, prior_temperature: float = 1.0, signed_pixels: bool = True,
                 enc_norm: bool = True, query_init_std: float = 0.02, latent_pos_init_scale: float = 1.0):
        super().__init__()
        t, h, w = (int(v) for v in input_size)
        if t % tubelet or h % patch_size or w % patch_size:
            raise ValueError(f"input_size {t}x{h}x{w} must be a multiple of the tubelet {tubelet}x{patch_size}x{patch_size}")
        if recon_loss not in ("l1", "mse"):
            raise ValueError(f"recon_loss must be 'l1' or 'mse', got {recon_loss!r}")
        self.input_size = (t, h, w)
        self.tubelet, self.patch_size, self.num_tokens = tubelet, patch_size, num_tokens
        self.grid = (t // tubelet, h // patch_size, w // patch_size)
        self.recon_loss, self.quant_weight, self.prior_weight = recon_loss, quant_weight, prior_weight
        self.signed_pixels = signed_pixels

        self.patch_embed = PatchEmbed3d(3, enc_width, patch_size, tubelet)
        self.encoder_pos = FactorizedPosEmbed3d(self.grid, enc_width)
        self.latent_queries = nn.Parameter(torch.randn(num_tokens, enc_width) * query_init_std)
        self.encoder = Transformer(enc_width, enc_depth, enc_heads, mlp_ratio=mlp_ratio)
        self.encoder_norm = nn.LayerNorm(enc_width) if enc_norm else nn.Identity()

        self.quantizer, self.codebook_dim = build_quantizer(quantizer, codebook_dim, codebook_size=codebook_size,
                                                        levels=fsq_levels, **(quantizer_kwargs or {}))
        self.quant_proj = nn.Linear(enc_width, self.codebook_dim)
        self.post_quant_proj = nn.Linear(self.codebook_dim, dec_width)

        self.latent_pos = nn.Parameter(sincos_1d(torch.arange(num_tokens), dec_width) * latent_pos_init_scale)
        self.mask_token = nn.Parameter(torch.randn(dec_width) * 0.02)
        self.decoder_pos = FactorizedPosEmbed3d(self.grid, dec_width)
        self.decoder = Transformer(dec_width, dec_depth, dec_heads, mlp_ratio=mlp_ratio)
        self.decoder_norm = nn.LayerNorm(dec_width, eps=1e-6)
        self.head = nn.Linear(dec_width, tubelet * patch_size * patch_size * 3)

        self.prior = (LatentPrior(self.codebook_dim, num_tokens - 1, prior_width, prior_depth, prior_heads,
                                  temperature=prior_temperature) if prior else None)
        self._init_weights()

    def _init_weights(self) -> None:
        skip = set(self.quantizer.modules()) | (set(self.prior.modules()) if self.prior is not None else set())
        for m in self.modules():
            if isinstance(m, nn.Linear) and m not in skip:
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_shape(tuple(input_shape)[-3:])
        return (self.num_tokens,)

    def _check_shape(self, thw: tuple[int, ...]) -> None:
        if tuple(thw) != self.input_size:
            t, h, w = self.input_size
            raise ValueError(f"this tokenizer takes clips of exactly {t}x{h}x{w} (T x H x W), got "
                             f"{'x'.join(str(v) for v in thw)}; resize / crop / sample frames first")

    # ----------------------------------------------------------------- model
    def _to_model(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0 if self.signed_pixels else x

    def _from_model(self, y: torch.Tensor) -> torch.Tensor:
        return (y + 1.0) / 2.0 if self.signed_pixels else y

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 3, T, H, W]`` in [0, 1] -> pre-quantisation latents ``[B, K, codebook_dim]``."""
        self._check_shape(tuple(x.shape[-3:]))
        patches = self.patch_embed(self._to_model(x)) + self.encoder_pos()
        queries = self.latent_queries.expand(x.shape[0], -1, -1)
        h = self.encoder(torch.cat([patches, queries.to(patches.dtype)], dim=1))[:, -self.num_tokens:]
        return self.quant_proj(self.encoder_norm(h))

    def _pixels(self, z_q: torch.Tensor) -> torch.Tensor:
        """Quantised latents ``[B, K, codebook_dim]`` -> clip ``[B, 3, T, H, W]`` in model pixels (unclamped)."""
        b = z_q.shape[0]
        latents = self.post_quant_proj(z_q) + self.latent_pos
        queries = (self.mask_token + self.decoder_pos()).expand(b, -1, -1).to(latents.dtype)
        n = queries.shape[1]
        h = self.decoder(torch.cat([latents, queries], dim=1))[:, -n:]
        return unpatchify_3d(self.head(self.decoder_norm(h)), self.grid, self.patch_size, self.tubelet, 3)

    def _encode(self, x: torch.Tensor) -> Tokens:
        q = self.quantizer(self._latents(x))
        return Tokens(ids=q.ids, input_shape=tuple(x.shape[-3:]))

    def _decode(self, tokens: Tokens) -> torch.Tensor:
        """Clips ``[B, 3, T, H, W]`` on the [0, 1] scale (unclamped)."""
        if tokens.ids.dim() != 2 or tokens.ids.shape[1] != self.num_tokens:
            raise ValueError(f"expected ids [B, {self.num_tokens}], got {tuple(tokens.ids.shape)}")
        z_q = self.quantizer.ids_to_latents(tokens.ids)
        return self._from_model(self._pixels(z_q))

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Training forward: recon ``[B, 3, T, H, W]`` in [0, 1] (unclamped), losses ``recon``,
        ``quant_*`` (times ``quant_weight``) and, with the prior, ``prior_ce``."""
        x = self.validate_input(x)
        q = self.quantizer(self._latents(x))
        recon = self._pixels(q.z_q)
        target = self._to_model(x)
        rec = F.l1_loss(recon.float(), target) if self.recon_loss == "l1" else F.mse_loss(recon.float(), target)
        losses = {"recon": rec, **{f"quant_{k}": self.quant_weight * v for k, v in q.losses.items()}}
        stats = {k: v.detach() for k, v in q.stats.items()}
        if self.prior is not None:
            ce, acc = self.prior.loss(q.z_q, q.ids, codebook_vectors(self.quantizer, q.ids.device))
            losses["prior_ce"] = self.prior_weight * ce
            stats["prior_acc"] = acc
        tokens = Tokens(ids=q.ids.detach(), input_shape=tuple(x.shape[-3:]))
        return TokenizerOutput(recon=self._from_model(recon), tokens=tokens, losses=losses, stats=stats,
                               extras={"z_q": q.z_q})
