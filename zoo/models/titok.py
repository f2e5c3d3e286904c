"""TiTok (1D image tokenizer, arXiv 2406.07550), TA-TiTok and One-D-Piece as one model.

Image ``[B, 3, S, S]`` in [0, 1] -> N token ids ``[B, N]`` -> image. Variants, all options of
:class:`TiTok`:

* quantizer ``"vq"``: VQ over ``codebook_dim``-dim latents, optionally l2-normalised (the legacy
  4096 x 12 cosine codebook; the single-stage 8192 x 64 codebook has no normalisation);
  ``"vae"``: continuous diagonal-Gaussian latents (``encode`` keeps the posterior mean in
  ``Tokens.extras["latents"]``, ``ids`` are zero placeholders; ``decode`` also takes the latents
  ``[B, N, codebook_dim]`` directly; ``codebook_size`` is 1); ``"fsq"``: finite scalar quantization
  with ``fsq_levels`` (one level count per latent channel, so ``codebook_dim = len(fsq_levels)``;
  no codebook to collapse, no auxiliary losses; used by the demo tokenizer).
* decoder head ``"pixel"`` (single-stage models) or ``"proxy"`` (legacy two-stage models: 1024-way
  MaskGIT-VQGAN code logits; with ``pixel_decoder`` set, the logits are softmaxed, mixed over
  the VQGAN codebook and decoded by the MaskGIT-VQGAN decoder, as in the published checkpoints).
* ``tail_drop`` (One-D-Piece): training decodes a random prefix of L ~ U{1..N} tokens (one L per
  batch; with ``tail_drop_prob`` < 1 only that fraction of batches is truncated, the others decode
  all N tokens); every model decodes prefixes with ``decode(tokens, length=L)``.
* ``linear_path`` (zoo option, not in the published models): a global affine transform code
  (:class:`~zoo.models.titok_linear_path.LinearTransformPath`) added to the encoder's
  pre-quantizer latents and to the pixel decoder's output (pixel head, VQ or FSQ only).
* ``text_dim`` > 0 (TA-TiTok): the decoder also attends to CLIP text features passed as
  ``decode(tokens, text_guidance=[B, 77, 768])``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..quant import FSQ, VectorQuantizer
from .maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANDecoder, load_proxy_vqgan
from .titok_blocks import VIT_SIZES, TiTokDecoder, TiTokEncoder
from .titok_linear_path import LinearTransformPath

__all__ = ["TiTok"]


def _vit(size: str | None, width: int | None, depth: int | None, heads: int | None, which: str):
    if size is not None and size not in VIT_SIZES:
        raise ValueError(f"{which}_size must be one of {sorted(VIT_SIZES)}, got {size!r}")
    w, d, h = VIT_SIZES[size] if size else (None, None, None)
    width, depth = width or w, depth or d
    if width is None or depth is None:
        raise ValueError(f"give {which}_size or both {which}_width and {which}_depth")
    heads = heads or (h if width == w else max(1, width // 64))  # official head dim is 64
    if width % heads:
        raise ValueError(f"{which}_width {width} is not divisible by {which}_heads {heads}")
    return width, depth, heads


class TiTok(Tokenizer):
    """TiTok / TA-TiTok / One-D-Piece image tokenizer. See the module docstring.

    image_size, enc_patch_size, dec_patch_size: input side S and ViT patch sizes (S % p == 0).
    enc_size / dec_size: ``"small" | "base" | "large"`` presets (512/8/8, 768/12/12, 1024/24/16);
        ``*_width`` / ``*_depth`` / ``*_heads`` override them (heads default to width / 64).
    num_tokens: N latent tokens; codebook_dim: latent dim; codebook_size: VQ codes (default 4096; FSQ:
        prod(fsq_levels), which it must equal when given).
    quantizer: ``"vq"``, ``"fsq"`` or ``"vae"``; l2_norm: cosine VQ; commitment_weight: the VQ
        commitment loss weight (beta).
    fsq_levels: FSQ levels per channel (``quantizer="fsq"`` only; ``codebook_size = prod(levels)``).
    legacy_readout: the legacy encoder's raw reshape before the output projection.
    decoder_head: ``"pixel"`` or ``"proxy"``; pixel_decoder: MaskGIT-VQGAN decoder config
        ``{"channels": [...], "num_res_blocks": 2, "z_channels": 256}`` (proxy head only).
    proxy_weights: path of the frozen MaskGIT-VQGAN checkpoint giving stage-1 proxy codes, or
        ``"hub"`` for the official ``fun-research/TiTok`` ``maskgit-vqgan-imagenet-f16-256.bin``
        (training target and pixel decoding of a proxy head without ``pixel_decoder``).
    tail_drop: One-D-Piece tail-token drop during training; tail_drop_prob: fraction of training batches
        truncated (1.0: every batch, as One-D-Piece).
    text_dim / text_len: TA-TiTok text guidance width and length (0 = none).
    linear_path: add a global linear transform code to the latents and pixels (see the module docstring).
    kl_weight: weight of the VAE KL term in ``forward``.
    """

    modality = "image"
    variable_length_arg = "length"

    def __init__(self, image_size: int = 256, enc_patch_size: int = 16, dec_patch_size: int = 16,
                 enc_size: str | None = "large", dec_size: str | None = "large",
                 enc_width: int | None = None, enc_depth: int | None = None, enc_heads: int | None = None,
                 dec_width: int | None = None, dec_depth: int | None = None, dec_heads: int | None = None,
                 num_tokens: int = 32, codebook_dim: int = 12, codebook_size: int | None = None, quantizer: str = "vq",
                 l2_norm: bool = True, commitment_weight: float = 0.25, legacy_readout: bool = True,
                 decoder_head: str = "proxy", pixel_decoder: dict | None = None, proxy_weights: str | None = None,
                 tail_drop: bool = False, text_dim: int = 0, text_len: int = 0, kl_weight: float = 1e-6,
                 fsq_levels: list[int] | None = None, tail_drop_prob: float = 1.0, linear_path: bool = False):
        super().__init__()
        if quantizer not in ("vq", "fsq", "vae"):
            raise ValueError(f"quantizer must be 'vq', 'fsq' or 'vae', got {quantizer!r}")
        if (quantizer == "fsq") != (fsq_levels is not None):
            raise ValueError("fsq_levels is required with quantizer='fsq' and only used by it")
        if quantizer == "fsq" and len(fsq_levels) != codebook_dim:
            raise ValueError(f"FSQ quantizes each latent channel: codebook_dim ({codebook_dim}) must equal "
                             f"len(fsq_levels) ({len(fsq_levels)})")
        if quantizer == "fsq":
            if codebook_size not in (None, math.prod(fsq_levels)):
                raise ValueError(f"FSQ levels {list(fsq_levels)} give {math.prod(fsq_levels)} codes, not "
                                 f"codebook_size={codebook_size}")
            codebook_size = math.prod(fsq_levels)
        elif codebook_size is None:
            codebook_size = 4096
        if decoder_head not in ("pixel", "proxy"):
            raise ValueError(f"decoder_head must be 'pixel' or 'proxy', got {decoder_head!r}")
        if pixel_decoder is not None and decoder_head != "proxy":
            raise ValueError("pixel_decoder (MaskGIT-VQGAN) is only used with decoder_head='proxy'")
        if num_tokens < 1 or codebook_dim < 1 or (quantizer == "vq" and codebook_size < 2):
            raise ValueError(f"invalid num_tokens={num_tokens}, codebook_dim={codebook_dim}, "
                             f"codebook_size={codebook_size}")
        if not 0.0 < float(tail_drop_prob) <= 1.0:
            raise ValueError(f"tail_drop_prob must be in (0, 1], got {tail_drop_prob}")
        if linear_path and (decoder_head != "pixel" or quantizer == "vae"):
            raise ValueError("linear_path needs decoder_head='pixel' and a quantizer ('vq' or 'fsq'), got "
                             f"decoder_head={decoder_head!r}, quantizer={quantizer!r}")
        if bool(text_dim) != bool(text_len):
            raise ValueError(f"text_dim and text_len must both be set or both 0, got {text_dim}, {text_len}")
        ew, ed, eh = _vit(enc_size, enc_width, enc_depth, enc_heads, "enc")
        dw, dd, dh = _vit(dec_size, dec_width, dec_depth, dec_heads, "dec")
        self.image_size, self.num_tokens, self.codebook_dim = image_size, num_tokens, codebook_dim
        self.quantizer_mode, self.decoder_head, self.tail_drop = quantizer, decoder_head, tail_drop
        self.kl_weight, self.tail_drop_prob = kl_weight, float(tail_drop_prob)
        out_dim = 2 * codebook_dim if quantizer == "vae" else codebook_dim
        self.encoder = TiTokEncoder(image_size, enc_patch_size, ew, ed, eh, num_tokens, out_dim, legacy_readout)
        self.decoder = TiTokDecoder(image_size, dec_patch_size, dw, dd, dh, num_tokens, codebook_dim, decoder_head,
                                    text_dim=text_dim, text_len=text_len)
        if quantizer == "vq":
            self.quantize = VectorQuantizer(codebook_size, codebook_dim, beta=commitment_weight, l2_norm=l2_norm,
                                            channel_dim=-1)
        elif quantizer == "fsq":
            self.quantize = FSQ(fsq_levels, channel_dim=-1)
        else:
            self.quantize = None
        self.pixel_quantize = self.pixel_decoder = None
        if pixel_decoder is not None:
            cfg = dict(pixel_decoder)
            unknown = set(cfg) - {"channels", "num_res_blocks", "z_channels"}
            if unknown:
                raise ValueError(f"unknown pixel_decoder keys {sorted(unknown)} (channels, num_res_blocks, z_channels)")
            z = int(cfg.get("z_channels", 256))
            self.pixel_quantize = VectorQuantizer(1024, z, channel_dim=1)
            self.pixel_decoder = MaskGITVQGANDecoder(cfg.get("channels", (128, 128, 256, 256, 512)),
                                                     int(cfg.get("num_res_blocks", 2)), z)
            if image_size // dec_patch_size * 2 ** (len(self.pixel_decoder.up) - 1) != image_size:
                raise ValueError(f"pixel decoder with {len(self.pixel_decoder.up)} levels does not map the "
                                 f"{image_size // dec_patch_size}-cell grid to {image_size} px")
        self.linear_path = LinearTransformPath(image_size, num_tokens, codebook_dim) if linear_path else None
        self._proxy: list[MaskGITVQGAN] = []  # kept out of the state dict on purpose
        self._proxy_weights = proxy_weights

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int:
        """VQ / FSQ codebook size; 1 for the continuous VAE variants (their ids are zero placeholders
        carrying no information, the latents travel in ``Tokens.extras["latents"]``)."""
        return 1 if self.quantize is None else self.quantize.codebook_size

    @property
    def input_size(self) -> tuple[int, int]:
        """The only image size this TiTok takes (learned positions)."""
        return (self.image_size, self.image_size)

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_size(tuple(input_shape)[-2:])
        return (self.num_tokens,)

    @property
    def proxy_tokenizer(self) -> MaskGITVQGAN | None:
        """The frozen MaskGIT-VQGAN of ``proxy_weights`` (loaded on first use) or set by
        :meth:`set_proxy_tokenizer`; None when neither is given."""
        if not self._proxy and self._proxy_weights:
            self._proxy.append(load_proxy_vqgan(self._proxy_weights))
        return self._proxy[0].to(self.device) if self._proxy else None

    def set_proxy_tokenizer(self, vqgan: MaskGITVQGAN | None) -> None:
        """Attach (or detach with None) the frozen MaskGIT-VQGAN giving stage-1 proxy codes."""
        if vqgan is not None and not isinstance(vqgan, MaskGITVQGAN):
            raise TypeError(f"expected a MaskGITVQGAN, got {type(vqgan).__name__}")
        self._proxy[:] = [] if vqgan is None else [vqgan]

    def _check_size(self, hw) -> None:
        if tuple(hw) != (self.image_size, self.image_size):
            raise ValueError(f"this TiTok takes {self.image_size}x{self.image_size} images (learned positions), "
                             f"got {hw[0]}x{hw[1]}; resize or center-crop first")

    # ----------------------------------------------------------------- latents
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B, 3, S, S]`` in [0, 1] -> encoder output ``[B, N, C]`` (VAE: C = 2 * codebook_dim,
        mean then log-variance)."""
        self._check_size(x.shape[-2:])
        z = self.encoder(x)
        return z if self.linear_path is None else z + self.linear_path.encode(x).to(z.dtype)

    def latents_to_pixels(self, z: torch.Tensor, key_padding: torch.Tensor | None = None,
                          text_guidance: torch.Tensor | None = None) -> torch.Tensor:
        """Latent tokens ``[B, L, codebook_dim]`` -> raw image ``[B, 3, S, S]`` (or proxy logits
        ``[B, 1024, g, g]`` for a proxy head without pixel decoder and proxy tokenizer)."""
        out = self.decoder(z, key_padding=key_padding, text=text_guidance)
        if self.decoder_head == "pixel":
            return out if self.linear_path is None else out + self.linear_path.decode(z, key_padding).to(out.dtype)
        if self.pixel_decoder is not None:
            return self._soft_pixel_decode(out)
        proxy = self.proxy_tokenizer
        if proxy is None:
            raise ValueError("this is a stage-1 TiTok (proxy-code head without pixel decoder): pass "
                             "proxy_weights=<maskgit-vqgan-imagenet-f16-256.bin> or call set_proxy_tokenizer() "
                             "to turn its code predictions into pixels")
        return proxy.decode_codes(out.argmax(1))

    def _soft_pixel_decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Proxy logits ``[B, 1024, g, g]`` -> probability-weighted VQGAN code embeddings -> pixels
        (no argmax: the published two-stage models decode the soft mixture)."""
        mixed = torch.einsum("nchw,cd->ndhw", logits.softmax(1), self.pixel_quantize.embedding.weight)
        return self.pixel_decoder(mixed)

    # ----------------------------------------------------------------- inference
    def _as_tokens(self, tokens) -> Tokens:
        if self.quantize is None:  # continuous: latents travel in extras
            if isinstance(tokens, torch.Tensor) and tokens.is_floating_point():
                tokens = Tokens(ids=torch.zeros(tokens.shape[:2], dtype=torch.long, device=tokens.device),
                                extras={"latents": tokens})
            if not isinstance(tokens, Tokens) or "latents" not in tokens.extras:
                raise TypeError("this TiTok is continuous (VAE): decode takes the latents [B, N, codebook_dim] or "
                                "the Tokens returned by encode (latents in extras['latents'])")
            return tokens.to(self.device)
        return super()._as_tokens(tokens)

    def _encode(self, x: torch.Tensor, length: int | None = None) -> Tokens:
        z = self.encode_latents(x)
        if self.quantize is None:
            mean = z[..., :self.codebook_dim].float()
            if length is not None:
                mean = mean[:, :self._length(length, mean.shape[1])]
            return Tokens(ids=torch.zeros(mean.shape[:2], dtype=torch.long, device=mean.device),
                          input_shape=tuple(x.shape[-2:]), extras={"latents": mean})
        ids = self.quantize(z).ids
        if length is not None:
            ids = ids[:, :self._length(length, ids.shape[1])]
        return Tokens(ids=ids, input_shape=tuple(x.shape[-2:]))

    @staticmethod
    def _length(length, n: int) -> int:
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= n:
            raise ValueError(f"length must be an int in [1, {n}], got {length!r}")
        return length

    def _decode(self, tokens: Tokens, length: int | None = None,
                text_guidance: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` (unclamped). length: decode only the first ``length`` tokens;
        text_guidance: TA-TiTok's CLIP text features ``[B, 77, 768]``."""
        if self.quantize is None:
            z = tokens.extras["latents"].to(self.device, torch.float32)
            if z.dim() != 3 or z.shape[-1] != self.codebook_dim:
                raise ValueError(f"latents must be [B, N, {self.codebook_dim}], got {tuple(z.shape)}")
        else:
            if tokens.ids.dim() != 2:
                raise ValueError(f"TiTok ids are [B, N], got {tuple(tokens.ids.shape)}")
            z = self.quantize.ids_to_latents(tokens.ids)
        n = z.shape[1]
        if n > self.num_tokens:
            raise ValueError(f"got {n} tokens, this model has {self.num_tokens}")
        if length is not None:
            z = z[:, :self._length(length, n)]
        key_padding = None
        if tokens.lengths is not None:  # per-item prefixes: hide the tail tokens from attention
            lengths = tokens.lengths
            if bool(((lengths < 1) | (lengths > n)).any()):
                raise ValueError(f"Tokens.lengths must lie in [1, {n}], got {lengths.tolist()}")
            key_padding = torch.arange(z.shape[1], device=z.device)[None] < lengths[:, None]
        if text_guidance is not None:
            text_guidance = text_guidance.to(self.device)
        return self.latents_to_pixels(z, key_padding=key_padding, text_guidance=text_guidance)

    # ----------------------------------------------------------------- training
    def _tail_length(self) -> int:
        # one random prefix length per batch, drawn on the CPU (no device sync); the coin for
        # tail_drop_prob < 1 is drawn only then, so One-D-Piece's random stream is unchanged
        if self.tail_drop_prob < 1.0 and float(torch.rand(())) >= self.tail_drop_prob:
            return self.num_tokens
        return int(torch.randint(1, self.num_tokens + 1, (1,)))

    def forward(self, x: torch.Tensor, text_guidance: torch.Tensor | None = None) -> TokenizerOutput:
        """Training step: image ``[B, 3, S, S]`` in [0, 1] -> TokenizerOutput.

        losses: VQ ``commitment`` / ``codebook`` (or VAE ``kl``), plus ``recon_l2`` (pixel output)
        or ``proxy_ce`` (stage-1 proxy head: cross-entropy against the frozen MaskGIT-VQGAN codes).
        A proxy head with ``pixel_decoder`` (stage 2) freezes encoder and quantizer, as the
        official recipe does. Perceptual / GAN terms are added by the trainer.
        """
        x = self.validate_input(x)
        self._check_size(x.shape[-2:])
        losses: dict[str, torch.Tensor] = {}
        stats: dict[str, torch.Tensor] = {}
        frozen = self.pixel_decoder is not None
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            z = self.encode_latents(x)
            if self.quantize is None:
                mean, logvar = z.float().chunk(2, dim=-1)
                logvar = logvar.clamp(-30.0, 20.0)
                zq = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training else mean
                ids = torch.zeros(mean.shape[:2], dtype=torch.long, device=mean.device)
                kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum() / mean.shape[0]
                if not frozen:
                    losses["kl"] = self.kl_weight * kl
                stats["kl"] = kl.detach()
            else:
                q = self.quantize(z)
                zq, ids = q.z_q, q.ids
                if not frozen:
                    losses.update(q.losses)
                stats.update(q.stats)
        if frozen:
            zq = zq.detach()
        if self.tail_drop and self.training:
            length = self._tail_length()
            zq = zq[:, :length]
            stats["length"] = torch.tensor(float(length))
        tokens = Tokens(ids=ids, input_shape=tuple(x.shape[-2:]))
        out = self.latents_to_pixels(zq, text_guidance=text_guidance) if self.decoder_head == "pixel" \
            else self.decoder(zq, text=text_guidance)
        extras: dict[str, Any] = {"latents": zq}
        if self.decoder_head == "proxy" and self.pixel_decoder is None:
            proxy = self.proxy_tokenizer
            if proxy is None:
                raise ValueError("stage-1 TiTok training needs proxy codes: pass proxy_weights=<MaskGIT-VQGAN "
                                 "checkpoint> or call set_proxy_tokenizer()")
            codes = proxy.codes(x)
            if codes.shape[-2:] != out.shape[-2:]:
                raise ValueError(f"the proxy tokenizer gives a {tuple(codes.shape[-2:])} code grid but the decoder "
                                 f"predicts {tuple(out.shape[-2:])}: their downsampling factors must match")
            losses["proxy_ce"] = F.cross_entropy(out, codes)
            with torch.no_grad():
                recon = proxy.decode_codes(out.argmax(1)).clamp(0.0, 1.0)
                stats["proxy_accuracy"] = (out.argmax(1) == codes).float().mean()
            extras["proxy_logits"], extras["proxy_codes"] = out, codes
        else:
            recon = self._soft_pixel_decode(out) if self.decoder_head == "proxy" else out
            losses["recon_l2"] = F.mse_loss(recon.float(), x.float())
        return TokenizerOutput(recon=recon, tokens=tokens, losses=losses, stats=stats, extras=extras)

