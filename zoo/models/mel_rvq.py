"""Mel residual-VQ codec (zoo model): dMel's log-mel frames, residual VQ of stacked frames, a Vocos vocoder.

encode: waveform ``[B, T]`` (16 kHz, [-1, 1]) -> dMel's fixed log10-mel front end (80 bins, 80
frames/s) -> ``stack`` consecutive frames side by side (``D = stack * 80`` values, the last frame
repeated to fill the final group) -> a residual refinement ``z = m + E(m)`` -> an affine map to
``code_dim`` channels (``None``: none, the codes live in the ``D``-dim group space) -> residual VQ
with ``num_quantizers`` codebooks of ``codebook_size`` codes -> ids ``[B, N, Q]``,
``N = ceil(frames / stack)``.
decode: ids -> summed codes -> the affine map back to ``D`` -> ``u + G(u)`` (log-mel frames) ->
the dMel Vocos vocoder (ConvNeXt + ISTFT) -> ``Tokens.num_samples`` samples.

``E`` and ``G`` are ConvNeXt stacks (``zoo.layers.vocos.VocosBackbone``) whose output projection
starts at zero: the codec starts as plain residual VQ of log-mel frames, codebooks fitted by k-means
on training frames and the affine maps set to their principal directions (PCA, so the codes are
the coordinates of the strongest ``code_dim`` directions of the spectrogram groups;
:func:`zoo.train.mel_rvq_init.kmeans_init_mel_rvq_`), and training refines the
encoder, the codebooks (``zoo.quant.ResidualVectorQuantizer``: gradient-trained, only the code
tables are stored), the decoder and the vocoder together (the demo recipe keeps the affine map and
the codebooks fixed and trains the decoder side). It is a zoo design for small
CPU-trained demo codecs, not a published model: the codes live in log-mel space, so every level is a
coarse-to-fine description of the spectrogram and ``decode(tokens, n_q=k)`` works for any k.

Losses of ``forward``: ``mel`` (log-mel L1 of the decoded waveform, dMel's loss), ``latent`` (L1
of the decoded log-mel frames before the vocoder) and the residual VQ's ``commitment`` / ``codebook``
terms (summed over the levels used).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.vocos import VocosBackbone
from ..quant.rvq import ResidualVectorQuantizer
from ..validate import check_sample_rate
from .dmel import OFFICIAL_DMEL_CONFIG, DMel

__all__ = ["MelRVQ", "MelRefiner"]


class MelRefiner(nn.Module):
    """``x + out(ConvNeXt((x - center) / scale))`` on ``[B, D, N]`` log-mel groups; ``out`` starts at zero,
    so a fresh refiner is the identity. num_conditions: AdaLayerNorm condition ids (``forward(x, cond)``
    with a LongTensor ``[1]`` or ``[B]``), None for an unconditioned refiner."""

    def __init__(self, dim: int, width: int, mlp_hidden: int, depth: int, center: float, scale: float,
                 num_conditions: int | None = None):
        super().__init__()
        self.center, self.scale = float(center), float(scale)
        self.backbone = VocosBackbone(dim, width, mlp_hidden, depth, adanorm_num_embeddings=num_conditions)
        self.out = nn.Conv1d(width, dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.backbone((x - self.center) / self.scale, cond)  # [B, N, width]
        return x + self.out(h.transpose(1, 2))


class MelRVQ(Tokenizer):
    """Mel residual-VQ codec (see module docstring). Ids ``[B, ceil(frames / stack), num_quantizers]``.

    stack: log-mel frames per token position (80 frames/s / stack positions per second).
    num_quantizers, codebook_size: residual levels and codes per level (bits/s = 80 / stack * Q *
        log2(codebook_size)).
    code_dim: channels of the codes (an affine map from / to the ``stack * 80`` group values; None:
        the codes are the groups themselves). Smaller codes make smaller codebooks.
    width, mlp_hidden, depth: the decoder refiner (ConvNeXt), and the encoder's unless ``encoder_depth``
        is given; a depth of 0 makes a refiner the identity (no parameters).
    vocos_width, vocos_mlp_hidden, vocos_depth: the dMel Vocos vocoder.
    quantizer_dropout: train with a random number of levels per batch (every ``n_q`` decodes well); the
        decoder refiner is then conditioned on the number of levels decoded (AdaLayerNorm, one id per
        ``n_q``), so it learns what each rate's codes leave out.
    mel_weight, latent_weight: loss weights; beta: the residual VQ's commitment weight.
    Start a fresh model with :func:`zoo.train.mel_rvq_init.kmeans_init_mel_rvq_` (k-means codebooks).
    """

    modality = "audio"
    input_range = (-1.0, 1.0)

    def __init__(self, stack: int = 4, num_quantizers: int = 4, codebook_size: int = 1024,
                 code_dim: int | None = None, width: int = 256, mlp_hidden: int = 768, depth: int = 4,
                 encoder_depth: int | None = None, vocos_width: int = 192, vocos_mlp_hidden: int = 576,
                 vocos_depth: int = 6, quantizer_dropout: bool = False, mel_weight: float = 45.0,
                 latent_weight: float = 45.0, beta: float = 0.25):
        super().__init__()
        encoder_depth = depth if encoder_depth is None else encoder_depth
        if (int(stack) < 1 or int(num_quantizers) < 1 or int(codebook_size) < 2
                or min(int(depth), int(encoder_depth)) < 0):
            raise ValueError(f"need stack >= 1, num_quantizers >= 1, codebook_size >= 2 and depths >= 0, got "
                             f"{stack}, {num_quantizers}, {codebook_size}, {depth}, {encoder_depth}")
        self.stack, self.num_quantizers = int(stack), int(num_quantizers)
        self.quantizer_dropout = bool(quantizer_dropout)
        self.mel_weight, self.latent_weight = mel_weight, latent_weight
        # the fixed front end and the trainable vocoder (dMel's, so a trained dMel vocoder loads into it)
        self.mel = DMel(**OFFICIAL_DMEL_CONFIG, vocoder="vocos", vocos_width=vocos_width,
                        vocos_mlp_hidden=vocos_mlp_hidden, vocos_depth=vocos_depth, mel_weight=mel_weight)
        n_mels = self.mel.n_mels
        self.dim = self.stack * n_mels
        center = (self.mel.min_value + self.mel.max_value) / 2
        scale = (self.mel.max_value - self.mel.min_value) / 2
        self.encoder = (MelRefiner(self.dim, width, mlp_hidden, encoder_depth, center, scale) if encoder_depth
                        else nn.Identity())
        conditions = self.num_quantizers if self.quantizer_dropout and self.num_quantizers > 1 else None
        self.decoder = (MelRefiner(self.dim, width, mlp_hidden, depth, center, scale, num_conditions=conditions)
                        if depth else None)
        if code_dim is not None and not 1 <= int(code_dim) <= self.dim:
            raise ValueError(f"code_dim must be in [1, stack * n_mels = {self.dim}] or None, got {code_dim}")
        self.code_dim = self.dim if code_dim is None else int(code_dim)
        identity = code_dim is None
        self.to_codes = nn.Identity() if identity else nn.Conv1d(self.dim, self.code_dim, 1)
        self.from_codes = nn.Identity() if identity else nn.Conv1d(self.code_dim, self.dim, 1)
        # the number of levels is drawn here (not by the quantizer): the decoder is told which it was
        self.quantizer = ResidualVectorQuantizer(self.num_quantizers, int(codebook_size), self.code_dim, beta=beta,
                                                 channel_dim=1, quantizer_dropout=False)

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> tuple[int, ...]:
        return (self.quantizer.codebook_size,) * self.num_quantizers

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @property
    def tokens_per_second(self) -> float:
        return self.mel.tokens_per_second / self.stack

    @property
    def bits_per_second(self) -> float:
        return self.tokens_per_second * sum(math.log2(k) for k in self.codebook_size)

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(T,)`` or ``(1, T)`` samples -> ``(ceil(frames / stack), num_quantizers)``."""
        frames = self.mel.token_shape(input_shape)[0]
        return (-(-frames // self.stack), self.num_quantizers)

    # ----------------------------------------------------------------- frames <-> groups
    def group_frames(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, F, n_mels]`` -> groups ``[B, stack * n_mels, ceil(F / stack)]`` (last frame repeated)."""
        b, f, c = log_mel.shape
        pad = -f % self.stack
        if pad:
            log_mel = torch.cat([log_mel, log_mel[:, -1:].expand(b, pad, c)], dim=1)
        return log_mel.reshape(b, -1, self.stack * c).transpose(1, 2)

    def ungroup_frames(self, groups: torch.Tensor, frames: int) -> torch.Tensor:
        """Groups ``[B, stack * n_mels, N]`` -> log-mel ``[B, frames, n_mels]`` (``frames <= N * stack``)."""
        b, _, n = groups.shape
        return groups.transpose(1, 2).reshape(b, n * self.stack, self.mel.n_mels)[:, :frames]

    def analyse(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, F, n_mels]`` -> the encoder output before quantisation ``[B, code_dim, N]``."""
        return self.to_codes(self.encoder(self.group_frames(log_mel)))

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before quantisation: ``[B, T]`` audio -> ``[B, code_dim, N]``."""
        x = self.validate_input(x)
        with torch.inference_mode():
            return self.analyse(self.mel.log_mel(x))

    def _refine(self, groups: torch.Tensor, n_q: int) -> torch.Tensor:
        """The decoder refiner on decoded groups ``[B, D, N]`` from ``n_q`` levels (identity without one)."""
        if self.decoder is None:
            return groups
        cond = None
        if self.decoder.backbone.adanorm_num_embeddings:
            cond = torch.tensor([n_q - 1], device=groups.device)
        return self.decoder(groups, cond)

    # ----------------------------------------------------------------- API
    def _encode(self, x: torch.Tensor, sample_rate: int | None = None) -> Tokens:
        check_sample_rate(sample_rate, self.sample_rate)
        self.mel._check_num_samples(x.shape[-1])
        return Tokens(ids=self.quantizer(self.analyse(self.mel.log_mel(x))).ids, num_samples=int(x.shape[-1]))

    def _decode(self, tokens: Tokens, n_q: int | None = None) -> torch.Tensor:
        """Audio ``[B, T]`` (unclamped), ``T = Tokens.num_samples`` (or ``(N * stack - 1) * hop``).
        n_q: decode from the first n_q residual levels only (default all)."""
        if tokens.ids.dim() != 3 or tokens.ids.shape[-1] != self.num_quantizers:
            raise ValueError(f"MelRVQ ids are [B, N, {self.num_quantizers}], got {tuple(tokens.ids.shape)}")
        n = tokens.ids.shape[1]
        if tokens.num_samples is None:
            frames = n * self.stack
            num_samples = None
        else:
            num_samples = int(tokens.num_samples)
            frames = self.mel.num_frames(num_samples)
            if -(-frames // self.stack) != n:
                raise ValueError(f"Tokens.num_samples={num_samples} gives {frames} frames = "
                                 f"{-(-frames // self.stack)} groups of {self.stack}, but the tokens have {n}")
        if n_q is not None and (isinstance(n_q, bool) or not isinstance(n_q, int)
                                or not 1 <= n_q <= self.num_quantizers):
            raise ValueError(f"n_q must be an int in [1, {self.num_quantizers}], got {n_q!r}")
        n_q = n_q or self.num_quantizers
        codes = self.quantizer.ids_to_latents(tokens.ids[..., :n_q])
        log_mel = self.ungroup_frames(self._refine(self.from_codes(codes), n_q), frames)
        return self.mel.vocode(log_mel, num_samples, vocoder="vocos", clamp=False)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Training forward. x ``[B, T]`` / ``[B, 1, T]`` -> recon ``[B, T]``; losses ``mel``, ``latent``,
        ``commitment`` and ``codebook``; the residual VQ's usage stats (``n_q``: levels used)."""
        x = self.validate_input(x)
        if x.dim() == 3:
            x = x[:, 0]
        self.mel._check_num_samples(x.shape[-1])
        with torch.no_grad():
            target = self.mel.log_mel(x)  # [B, F, n_mels]
        n_q = self.num_quantizers
        if self.training and self.quantizer_dropout and self.num_quantizers > 1:
            n_q = int(torch.randint(1, self.num_quantizers + 1, ()))  # drawn on the CPU: no device sync
        q = self.quantizer(self.analyse(target), n_q=n_q)
        decoded = self.ungroup_frames(self._refine(self.from_codes(q.z_q), n_q), target.shape[1])
        recon = self.mel.vocos(decoded)[:, : x.shape[-1]]
        losses = dict(q.losses)
        if self.latent_weight > 0:
            losses["latent"] = self.latent_weight * F.l1_loss(decoded, target)
        if self.mel_weight > 0:
            losses["mel"] = self.mel_weight * F.l1_loss(self.mel.log_mel(recon), target)
        stats = dict(q.stats)
        stats["n_q"] = torch.tensor(float(n_q))
        return TokenizerOutput(recon=recon, tokens=Tokens(ids=q.ids, num_samples=int(x.shape[-1])), losses=losses,
                               stats=stats, extras={"latents": q.z_q})
