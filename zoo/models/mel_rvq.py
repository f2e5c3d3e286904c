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

Encoder search (``search_cutoff_hz``, ``search_floor``, ``search_beam``; off by default): instead of
the residual VQ's greedy search in code space, the ids minimise the weighted squared error of the
decoded log-mel groups before the decoder refiner, ``||S (from_codes(sum of codes) - z)||^2`` with
``z`` the (refined) groups and ``S`` the square root of a per-mel-bin weight (1 for bins centred at or
below ``search_cutoff_hz``, ``search_floor`` above), found by beam search over the levels
(:func:`zoo.quant.rvq_search.residual_beam_search`, in the QR-rotated code space of ``S from_codes``).
Codecs weigh their errors perceptually too (Codec2 and Opus shape theirs by a weighting filter): the
bins that carry intelligibility get the precision. Training still quantises greedily in code space;
the decoder decodes either kind of ids.

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
from ..quant.rvq_search import metric_codebooks, residual_beam_search
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
    search_cutoff_hz, search_floor, search_beam: the encoder's id search (module docstring). None /
        1.0 / 1: the residual VQ's greedy code-space search (what training uses). A cutoff (Hz) weighs
        the mel bins above it by ``search_floor`` in (0, 1]; ``search_beam`` > 1 searches the levels
        jointly (beam search; any cutoff, or an unweighted log-mel metric without one).
    Start a fresh model with :func:`zoo.train.mel_rvq_init.kmeans_init_mel_rvq_` (k-means codebooks).
    """

    modality = "audio"
    input_range = (-1.0, 1.0)

    def __init__(self, stack: int = 4, num_quantizers: int = 4, codebook_size: int = 1024,
                 code_dim: int | None = None, width: int = 256, mlp_hidden: int = 768, depth: int = 4,
                 encoder_depth: int | None = None, vocos_width: int = 192, vocos_mlp_hidden: int = 576,
                 vocos_depth: int = 6, quantizer_dropout: bool = False, mel_weight: float = 45.0,
                 latent_weight: float = 45.0, beta: float = 0.25, search_cutoff_hz: float | None = None,
                 search_floor: float = 1.0, search_beam: int = 1):
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
        if search_cutoff_hz is not None and not (isinstance(search_cutoff_hz, (int, float))
                                                 and 0 < search_cutoff_hz < self.sample_rate / 2):
            raise ValueError(f"search_cutoff_hz must be None or in (0, {self.sample_rate // 2}) Hz, "
                             f"got {search_cutoff_hz!r}")
        if not (isinstance(search_floor, (int, float)) and 0 < search_floor <= 1):
            raise ValueError(f"search_floor must be in (0, 1], got {search_floor!r}")
        if isinstance(search_beam, bool) or not isinstance(search_beam, int) or search_beam < 1:
            raise ValueError(f"search_beam must be an int >= 1, got {search_beam!r}")
        self.search_cutoff_hz = None if search_cutoff_hz is None else float(search_cutoff_hz)
        self.search_floor, self.search_beam = float(search_floor), int(search_beam)
        # centre frequency (Hz) of every mel bin: where its triangular filter peaks
        bin_hz = torch.arange(self.mel.fbank.shape[0]) * (self.mel.sample_rate / self.mel.n_fft)
        self.register_buffer("mel_bin_hz", bin_hz[self.mel.fbank.argmax(0)].float(), persistent=False)
        self._search_cache = None  # (weight versions, search tables): see search_tables

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

    @property
    def searches_jointly(self) -> bool:
        """Whether encode uses the weighted / beam search (else the residual VQ's greedy code-space search)."""
        return self.search_cutoff_hz is not None or self.search_beam > 1

    def search_weights(self) -> torch.Tensor:
        """Per group value weight ``[stack * n_mels]`` of the encoder search's squared error (frame-major)."""
        w = torch.ones_like(self.mel_bin_hz)
        if self.search_cutoff_hz is not None:
            w = torch.where(self.mel_bin_hz <= self.search_cutoff_hz, w, torch.full_like(w, self.search_floor))
        return w.repeat(self.stack)

    def search_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The joint search's fixed tables, float32: ``rotation`` ``[D, code_dim]`` and ``bias`` ``[D]``
        (target ``Q^T S (z - b)`` = ``((z - bias) * scale) @ rotation``), ``scale`` ``[D]`` and the
        codebooks in the rotated space (``R c``, ``[K, code_dim]`` per level), where ``S W = Q R`` is the
        thin QR of the weighted decoding map. Computed once per weight version (cached; a graph export
        reuses the tables of an eager call made before it)."""
        affine = isinstance(self.from_codes, nn.Conv1d)  # else the codes are the groups themselves
        params = [layer.embedding.weight for layer in self.quantizer.layers]
        if affine:
            params += [self.from_codes.weight, self.from_codes.bias]
        if torch.compiler.is_exporting():
            if self._search_cache is None:
                raise RuntimeError("call search_tables() once before exporting a MelRVQ encoder graph")
            return self._search_cache[1]
        key = tuple((p.data_ptr(), p._version, p.device) for p in params)
        if self._search_cache is None or self._search_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad(), \
                    torch.autocast(device_type=params[0].device.type, enabled=False):
                scale = self.search_weights().sqrt()
                if affine:
                    weight, bias = self.from_codes.weight[:, :, 0].float(), self.from_codes.bias.float()
                else:
                    weight = torch.eye(self.dim, device=scale.device)
                    bias = torch.zeros(self.dim, device=scale.device)
                # ||S (W q + b - z)||^2 = ||R q - Q^T S (z - b)||^2 + a constant of z, with S W = Q R
                rotation, upper = torch.linalg.qr(scale[:, None] * weight)
                codebooks = metric_codebooks(self.quantizer.code_tables(), upper)
            self._search_cache = (key, (rotation, bias.clone(), scale, codebooks))
        return self._search_cache[1]

    def search_ids(self, log_mel: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Log-mel ``[B, F, n_mels]`` -> ids ``[B, ceil(F / stack), Q]`` (the encoder's search).

        n_q: with the joint search, the levels searched together (the first n_q; default all); the
        remaining levels continue greedily from their residual, so ``decode(ids, n_q=k)`` is best for
        ids searched with ``n_q=k``. The greedy code-space search ignores it (every prefix is greedy).
        """
        if not self.searches_jointly:
            return self.quantizer(self.analyse(log_mel)).ids
        n_q = self.num_quantizers if n_q is None else n_q
        rotation, bias, scale, codebooks = self.search_tables()
        with torch.autocast(device_type=log_mel.device.type, enabled=False):
            groups = self.encoder(self.group_frames(log_mel.float())).float()  # [B, D, N]
            target = ((groups.transpose(1, 2) - bias) * scale) @ rotation  # [B, N, code_dim]
            flat = target.reshape(-1, target.shape[-1])
            ids = residual_beam_search(flat, codebooks[:n_q], beam=self.search_beam)
            if n_q < self.num_quantizers:
                rest = flat - sum(codebooks[i][ids[:, i]] for i in range(n_q))
                ids = torch.cat([ids, residual_beam_search(rest, codebooks[n_q:], beam=1)], dim=1)
        return ids.reshape(*target.shape[:2], self.num_quantizers)

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
    def _encode(self, x: torch.Tensor, sample_rate: int | None = None, n_q: int | None = None) -> Tokens:
        """n_q: the number of levels the decoder will use (the joint search optimises them; see
        :meth:`search_ids`). The ids always hold every level."""
        check_sample_rate(sample_rate, self.sample_rate)
        self._check_n_q(n_q)
        self.mel._check_num_samples(x.shape[-1])
        return Tokens(ids=self.search_ids(self.mel.log_mel(x), n_q), num_samples=int(x.shape[-1]))

    def _check_n_q(self, n_q) -> None:
        if n_q is not None and (isinstance(n_q, bool) or not isinstance(n_q, int)
                                or not 1 <= n_q <= self.num_quantizers):
            raise ValueError(f"n_q must be an int in [1, {self.num_quantizers}], got {n_q!r}")

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
        self._check_n_q(n_q)
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
