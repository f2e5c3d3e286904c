"""WavTokenizer (Ji et al., ICLR 2025): a 24 kHz single-codebook audio codec, 40 or 75 tokens/s.

encode: waveform ``[B, T]`` in [-1, 1] -> SEANet encoder (EnCodec, LSTM, weight norm) -> latents
``[B, 512, ceil(T / hop)]`` -> nearest code of one EMA codebook (4096 x 512) -> ids ``[B, F]``.
decode: ids -> codebook vectors -> Vocos backbone (pos-net of resnet/attention blocks, ConvNeXt
blocks with AdaLayerNorm conditioned on ``bandwidth_id``) -> ISTFT head ("same" padding) ->
``F * hop`` samples, trimmed to ``Tokens.num_samples`` when known.
Official checkpoints load through ``zoo.load_official("wavtokenizer", ckpt, yaml)`` or the
registry entries below.

Zoo option (not in the official models): ``num_quantizers`` Q > 1 turns the codebook into residual
VQ over the same blocks (SoundStream / EnCodec style, each level an EMA codebook quantising what
the previous levels left): ids ``[B, F, Q]``, ``codebook_size`` a tuple of Q sizes, and
``decode(tokens, n_q=k)`` decodes from the first k levels only (k * 10 bits per frame for 1024
codes); ``quantizer_dropout`` trains with a random number of levels per batch so every k works.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.istft import ISTFTHead
from ..layers.seanet import SEANetEncoder
from ..layers.vocos import VocosBackbone
from ..quant.ema_vq import EMAVectorQuantizer
from ..validate import check_sample_rate

__all__ = ["WavTokenizer"]


class WavTokenizer(Tokenizer):
    """WavTokenizer codec (see module docstring).

    ratios: EnCodec-order ratios (the official ``dowmsamples``), applied reversed by the encoder:
        ``[6, 5, 5, 4]`` -> hop 600 (40 tokens/s at 24 kHz), ``[8, 5, 4, 2]`` -> hop 320 (75/s).
    codebook_size / codebook_dim: the EMA codebook; n_filters, lstm_layers: encoder width / LSTM.
    vocos_width, vocos_mlp_hidden, vocos_depth: Vocos backbone (the official dim, intermediate_dim,
        num_layers); num_bandwidths: AdaLayerNorm condition ids.
    n_fft, hop_length, padding: ISTFT head (hop_length must equal the encoder hop).
    kmeans_iters, decay, threshold_ema_dead_code: EMA codebook training (k-means runs only on the
        first *training* batch of a never-initialised codebook).
    commitment_weight, mel_weight: weights of the ``forward`` losses (official 1000 and 45).
    pos_net: the backbone's attention / res-block position net (official: on); without it and
        with ``lstm_layers=0`` the codec is purely convolutional (exact chunked streaming).
    num_quantizers, quantizer_dropout: residual VQ levels (1: the official single codebook) and
        training with a random number of them per batch (see the module docstring).
    """

    modality = "audio"
    input_range = (-1.0, 1.0)

    def __init__(self, ratios: Sequence[int] = (6, 5, 5, 4), codebook_size: int = 4096, codebook_dim: int = 512,
                 n_filters: int = 32, lstm_layers: int = 2, vocos_width: int = 768,
                 vocos_mlp_hidden: int = 2304, vocos_depth: int = 12, num_bandwidths: int | None = 4, n_fft: int = 2400,
                 hop_length: int = 600, padding: str = "same", sample_rate: int = 24000,
                 kmeans_iters: int = 200, decay: float = 0.99, threshold_ema_dead_code: float = 2.0,
                 commitment_weight: float = 1000.0, mel_weight: float = 45.0, pos_net_dropout: float = 0.1,
                 pos_net: bool = True, num_quantizers: int = 1, quantizer_dropout: bool = False):
        super().__init__()
        ratios = [int(r) for r in ratios]
        if math.prod(ratios) != hop_length:
            raise ValueError(f"the encoder hop prod({ratios}) = {math.prod(ratios)} must equal the ISTFT "
                             f"hop_length {hop_length}")
        if padding != "same":
            raise ValueError("WavTokenizer's ISTFT head uses padding='same' (one hop per token)")
        self.encoder = SEANetEncoder(channels=1, dimension=codebook_dim, n_filters=n_filters, ratios=ratios,
                                     lstm=lstm_layers)
        if int(num_quantizers) < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {num_quantizers}")

        def codebook() -> EMAVectorQuantizer:
            return EMAVectorQuantizer(codebook_size, codebook_dim, decay=decay, kmeans_init=True,
                                      kmeans_iters=kmeans_iters, threshold_ema_dead_code=threshold_ema_dead_code,
                                      commitment_weight=1.0, channel_dim=1)

        self.quantizer = codebook()  # the first level keeps the official name (checkpoints load unchanged)
        self.num_quantizers, self.quantizer_dropout = int(num_quantizers), bool(quantizer_dropout)
        if self.num_quantizers > 1:
            self.residual_quantizers = torch.nn.ModuleList(codebook() for _ in range(self.num_quantizers - 1))
        self.backbone = VocosBackbone(codebook_dim, vocos_width, vocos_mlp_hidden, vocos_depth,
                                      adanorm_num_embeddings=num_bandwidths, pos_net=pos_net,
                                      pos_net_dropout=pos_net_dropout)
        self.head = ISTFTHead(vocos_width, n_fft, hop_length, padding=padding)
        self.num_bandwidths = num_bandwidths
        self.hop_length = hop_length
        self._sample_rate = int(sample_rate)
        self.commitment_weight, self.mel_weight = commitment_weight, mel_weight
        self._mel_loss = None  # built on first training forward (keeps the state dict clean)

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int | tuple[int, ...]:
        """Codes per level: an int for one codebook, a tuple of Q sizes for residual VQ."""
        if self.num_quantizers == 1:
            return self.quantizer.codebook_size
        return (self.quantizer.codebook_size,) * self.num_quantizers

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def tokens_per_second(self) -> float:
        return self._sample_rate / self.hop_length

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(T,)`` or ``(1, T)`` samples -> ``(ceil(T / hop),)`` tokens (``(frames, Q)`` for residual VQ)."""
        num_samples = int(input_shape[-1])
        if num_samples < 1:
            raise ValueError(f"audio must have at least one sample, got shape {tuple(input_shape)}")
        frames = -(-num_samples // self.hop_length)
        return (frames,) if self.num_quantizers == 1 else (frames, self.num_quantizers)

    # ----------------------------------------------------------------- helpers
    def _bandwidth_id(self, bandwidth_id, batch_size: int) -> torch.Tensor | None:
        """int / LongTensor ``[1]`` or ``[B]`` -> LongTensor on device (None when unconditioned)."""
        if not self.num_bandwidths:
            return None
        if bandwidth_id is None:
            bandwidth_id = 0
        bad_type = isinstance(bandwidth_id, (float, bool, str)) or (
            isinstance(bandwidth_id, torch.Tensor) and (bandwidth_id.is_floating_point() or bandwidth_id.is_complex()))
        bw = None if bad_type else torch.as_tensor(bandwidth_id).reshape(-1).long()
        if bw is None or bw.numel() not in (1, batch_size):
            raise ValueError(f"bandwidth_id must be an int or a LongTensor of 1 or {batch_size} ids, "
                             f"got {bandwidth_id!r}")
        if bw.device.type == "cpu":  # checking a CPU tensor costs no device sync
            if bool(((bw < 0) | (bw >= self.num_bandwidths)).any()):
                raise ValueError(f"bandwidth_id must be in [0, {self.num_bandwidths}), got {bw.tolist()}")
        return bw.to(self.device)

    def _levels(self) -> list[EMAVectorQuantizer]:
        return [self.quantizer, *(self.residual_quantizers if self.num_quantizers > 1 else ())]

    def _quantize(self, latents: torch.Tensor, n_q: int | None = None):
        """Encoder latents ``[B, D, F]`` -> (straight-through quantised latents, ids ``[B, F]`` or
        ``[B, F, Q]`` (levels past ``n_q`` are -1 in training only), losses (residual VQ: the commitment
        of the latents to the summed codes of the levels used), first-level stats)."""
        if self.num_quantizers == 1:
            q = self.quantizer(latents)
            return q.z_q, q.ids, q.losses, q.stats
        residual, codes, ids, stats = latents.float(), 0.0, [], None
        for level in self._levels()[: n_q or self.num_quantizers]:
            q = level(residual)
            code = q.z_q.detach()  # the code values (a straight-through output equals its code)
            codes, residual = codes + code, residual - code
            ids.append(q.ids)
            stats = q.stats if stats is None else stats
        # one commitment term on the summed codes (not one per level: a first-level term would pull the
        # encoder onto the first codebook and leave the residual levels nothing to refine)
        losses = {"commitment": F.mse_loss(latents.float(), codes)} if self.training else {}
        ids = torch.stack(ids, dim=-1)
        if ids.shape[-1] < self.num_quantizers:
            ids = torch.cat([ids, ids.new_full((*ids.shape[:-1], self.num_quantizers - ids.shape[-1]), -1)], dim=-1)
        z_q = latents + (codes - latents).detach() if self.training else codes
        return z_q, ids, losses, stats

    def _codes(self, ids: torch.Tensor, n_q: int | None) -> torch.Tensor:
        """ids -> summed code vectors ``[B, D, F]`` of the first ``n_q`` levels."""
        if self.num_quantizers == 1:
            return self.quantizer.ids_to_latents(ids)
        n_q = self.num_quantizers if n_q is None else n_q
        if isinstance(n_q, bool) or not isinstance(n_q, int) or not 1 <= n_q <= self.num_quantizers:
            raise ValueError(f"n_q must be an int in [1, {self.num_quantizers}], got {n_q!r}")
        return sum(level.ids_to_latents(ids[..., i]) for i, level in enumerate(self._levels()[:n_q]))

    def _waveform(self, features: torch.Tensor, bandwidth_id: torch.Tensor | None) -> torch.Tensor:
        """codebook vectors ``[B, D, F]`` -> waveform ``[B, F * hop]``."""
        return self.head(self.backbone(features, bandwidth_id))

    # ----------------------------------------------------------------- API
    def _encode(self, x: torch.Tensor, sample_rate: int | None = None, bandwidth_id=None) -> Tokens:
        check_sample_rate(sample_rate, self.sample_rate)
        latents = self.encoder(x.unsqueeze(1))
        ids = self._quantize(latents)[1]  # [B, F] (or [B, F, Q])
        extras = {}
        if bandwidth_id is not None:  # a decode hint: stored as plain ints so Tokens stay serialisable
            bw = self._bandwidth_id(bandwidth_id, x.shape[0]).tolist()
            extras["bandwidth_id"] = bw[0] if len(bw) == 1 else bw
        return Tokens(ids=ids, num_samples=int(x.shape[-1]), extras=extras)

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before quantisation: ``[B, T]`` audio -> ``[B, codebook_dim, F]``."""
        x = self.validate_input(x)
        with torch.inference_mode():
            return self.encoder(x.unsqueeze(1))

    def _decode(self, tokens: Tokens, bandwidth_id=None, trim: bool = True, n_q: int | None = None) -> torch.Tensor:
        """Audio ``[B, T]`` (unclamped). bandwidth_id: the decoder's AdaNorm condition (int or per
        row; default ``tokens.extras["bandwidth_id"]`` or 0); trim: cut to ``tokens.num_samples``;
        n_q: decode from the first n_q residual levels only (residual VQ; default all)."""
        if tokens.ids.dim() != (2 if self.num_quantizers == 1 else 3):
            shape = "[B, F]" if self.num_quantizers == 1 else f"[B, F, {self.num_quantizers}]"
            raise ValueError(f"WavTokenizer ids are {shape}, got {tuple(tokens.ids.shape)}")
        if n_q is not None and self.num_quantizers == 1 and n_q != 1:
            raise ValueError(f"this WavTokenizer has one codebook: n_q must be 1 or None, got {n_q!r}")
        if bandwidth_id is None:
            bandwidth_id = tokens.extras.get("bandwidth_id")
        bw = self._bandwidth_id(bandwidth_id, tokens.batch_size)
        audio = self._waveform(self._codes(tokens.ids, n_q), bw)
        if trim and tokens.num_samples is not None:
            n = int(tokens.num_samples)
            if not 0 < n <= audio.shape[-1] or -(-n // self.hop_length) != tokens.ids.shape[1]:
                raise ValueError(f"Tokens.num_samples={n} does not fit {tokens.ids.shape[1]} tokens "
                                 f"(hop {self.hop_length}: expected {tokens.ids.shape[1] - 1} * {self.hop_length}"
                                 f" < num_samples <= {audio.shape[-1]})")
            audio = audio[:, :n]
        return audio

    def forward(self, x: torch.Tensor, bandwidth_id=None) -> TokenizerOutput:
        """Training forward. x ``[B, T]`` / ``[B, 1, T]`` -> recon ``[B, T]`` and losses
        ``commitment`` (x commitment_weight) and ``mel`` (log-mel L1, x mel_weight). A random
        bandwidth id is drawn per call in training mode unless given (returned in ``extras``)."""
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"audio must be mono [B, 1, T], got {tuple(x.shape)}")
            x = x[:, 0]
        if x.dim() != 2 or x.shape[-1] == 0:
            raise ValueError(f"audio must be a non-empty [B, T] tensor, got {tuple(x.shape)}")
        if bandwidth_id is None and self.training and self.num_bandwidths:
            bandwidth_id = torch.randint(0, self.num_bandwidths, (1,))
        bw = self._bandwidth_id(bandwidth_id, x.shape[0])
        n_q = None
        if self.training and self.quantizer_dropout and self.num_quantizers > 1:
            n_q = int(torch.randint(1, self.num_quantizers + 1, (1,)))  # drawn on the CPU: no device sync
        z_q, ids, q_losses, q_stats = self._quantize(self.encoder(x.unsqueeze(1)), n_q)
        recon = self._waveform(z_q, bw)[:, : x.shape[-1]]
        losses = {}
        if "commitment" in q_losses:
            losses["commitment"] = self.commitment_weight * q_losses["commitment"]
        if self.mel_weight > 0:
            losses["mel"] = self.mel_weight * self.mel_loss(recon, x)
        tokens = Tokens(ids=ids, num_samples=int(x.shape[-1]),
                        extras={} if bw is None else {"bandwidth_id": bw})
        stats = dict(q_stats)
        if n_q is not None:
            stats["n_q"] = torch.tensor(float(n_q))
        return TokenizerOutput(recon=recon, tokens=tokens, losses=losses, stats=stats,
                               extras={"bandwidth_id": bw, "latents": z_q})

    def mel_loss(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The official mel L1 (24 kHz, n_fft 1024, hop 256, 100 mels) between ``[B, T]`` waves."""
        if self._mel_loss is None:
            from ..losses.mel import MelL1Loss

            self._mel_loss = [MelL1Loss(sample_rate=self.sample_rate)]  # list: not a submodule
        loss = self._mel_loss[0].to(recon.device)
        return loss(recon, target)
