"""dMel (Bai et al., 2024): discretised log-mel filterbanks as speech tokens, as Apple's ``dmel`` package.

encode: 16 kHz waveform ``[B, T]`` -> ``torch.stft`` (n_fft 1024, 50 ms periodic Hann window
zero-padded to n_fft, 12.5 ms hop, centred, reflect padding) -> magnitude
``sqrt(max(re^2 + im^2, 1e-10))`` -> 80 Slaney mel filters 80-7600 Hz (librosa's ``mel`` with
``htk=False, norm="slaney"``) -> ``log10(max(., 1e-10))`` -> clamp to [-7, 2] -> index of the nearest
of 16 evenly spaced bin centres (first index on ties) -> ids ``[B, T // 200 + 1, 80]`` in [0, 16).
The official LM framing (a bos frame 17 first, an eos frame 18 at ``lengths + 1``, pad 16) is
optional (``encode(x, bos_eos=True)``); plain ids carry no special tokens.
decode: ids -> bin centres (log10 mel) -> vocoder: Griffin-Lim (default, untrained) or a trainable
Vocos vocoder (``vocoder="vocos"``, see :mod:`zoo.models.dmel_vocoder`).

The official tokenizer is parameter-free: ``create_tokenizer("dmel.official", pretrained=True)`` and
``zoo.load_official("dmel", None, None)`` build the official configuration (there is nothing to
download; see the registry note). Everything runs batched (no Python loop over frames).
"""
from __future__ import annotations

import numpy as np
import torch

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..validate import check_sample_rate
from .dmel_vocoder import VocosVocoder, griffin_lim, mel_to_linear

__all__ = ["DMel", "slaney_mel_filterbank", "dmel_bin_centers", "OFFICIAL_DMEL_CONFIG"]

_POWER_FLOOR = 1e-10       # official clamp of re^2 + im^2 before the square root
_FILTERS_PER_GROUP = 8     # mel filters per banded matmul (the filterbank is ~90 % zeros)
_FRAMES_PER_BLOCK = 384    # STFT frames (summed over the batch) per block of the no-grad tokenizer path
_SINGLE_BLOCK_FRAMES = 1024  # up to this many frames (summed over the batch: ~12.8 s) one block is faster

#: the settings of the official example (run_example.py); LogMelFbank's own default stride is 25 ms
OFFICIAL_DMEL_CONFIG = dict(sample_rate=16000, n_fft=1024, frame_size_ms=50.0, frame_stride_ms=12.5, n_mels=80,
                            f_min=80.0, f_max=7600.0, n_bits=4, min_value=-7.0, max_value=2.0)


_F_SP = 200.0 / 3            # Slaney mel scale: linear part, Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / _F_SP
    high = f >= _MIN_LOG_HZ
    return np.where(high, _MIN_LOG_MEL + np.log(np.where(high, f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Slaney-normalised triangular mel filters ``[n_fft // 2 + 1, n_mels]`` float32.

    Same arithmetic as librosa's ``filters.mel(htk=False, norm="slaney", dtype=float32)``: float64
    triangles rounded to float32, then scaled by the float64 area normalisation (bit-identical).
    """
    freqs = np.arange(n_fft // 2 + 1) * (1.0 / (n_fft * (1.0 / sample_rate)))
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    weights = (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)
    return torch.from_numpy(weights.T.copy())


def _decision_thresholds(centers: torch.Tensor) -> torch.Tensor:
    """Exact float32 decision points of the official nearest-centre rule.

    For each pair of neighbouring centres ``(c_i, c_i+1)``, the smallest float32 ``x`` with
    ``fl32(|x - c_i+1|) < fl32(|x - c_i|)`` (the official ``argmin`` keeps the lower index on ties).
    The rule is monotone in ``x``, so ``id = #{i : x >= t_i}`` reproduces ``argmin |x - c|`` bit for bit.
    """
    c = centers.numpy().astype(np.float32)
    out = []
    for lo, hi in zip(c[:-1], c[1:]):
        x = np.float32((np.float64(lo) + np.float64(hi)) / 2)
        for _ in range(64):  # step down while the upper centre still wins
            below = np.nextafter(x, np.float32(-np.inf))
            if not np.abs(below - hi) < np.abs(below - lo):
                break
            x = below
        for _ in range(64):  # step up until it wins
            if np.abs(x - hi) < np.abs(x - lo):
                break
            x = np.nextafter(x, np.float32(np.inf))
        if not (np.abs(x - hi) < np.abs(x - lo)) or np.abs(np.nextafter(x, np.float32(-np.inf)) - hi) < \
                np.abs(np.nextafter(x, np.float32(-np.inf)) - lo):
            raise RuntimeError(f"no exact decision point found between {lo} and {hi}")
        out.append(x)
    return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``[B, T]`` -> ``[B, T + 2 pad]`` mirrored at both ends without repeating the edge sample: the values of
    ``F.pad(mode="reflect")`` (pure copies) at a fraction of its CPU cost. Needs ``T > pad``."""
    b, t = x.shape
    out = x.new_empty(b, t + 2 * pad)
    out[:, pad:pad + t] = x
    out[:, :pad] = x[:, 1:pad + 1].flip(-1)
    out[:, pad + t:] = x[:, t - pad - 1:t - 1].flip(-1)
    return out


class _UniformBins:
    """``torch.bucketize(x, thresholds, right=True)`` for nearly uniform thresholds, in a few elementwise
    passes: estimate the bin from the uniform step, then correct it by one comparison on each side with
    the exact thresholds (identical ids; about 15 % faster than ``bucketize``'s binary search on CPU).

    Valid when every threshold lies within half a step of its uniform position (``applies``; else
    ``bucketize`` runs), so the estimate is off by at most one bin. Finite inputs only.
    """

    def __init__(self, thresholds: torch.Tensor):
        t = thresholds.double()
        self.n = len(t)
        self.origin = float(t[0])
        self.scale = float((self.n - 1) / (t[-1] - t[0])) if self.n > 1 else 1.0
        pos = (t - self.origin) * self.scale
        self.applies = bool((pos - torch.arange(self.n, dtype=torch.float64, device=t.device)).abs().max() < 0.5)

    def __call__(self, x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
        """``x`` float32 (finite) -> int64 ids in [0, n]; ``thresholds`` the exact decision points."""
        if not self.applies:
            return torch.bucketize(x, thresholds, right=True)
        inf = thresholds.new_full((1,), float("inf"))
        table = torch.cat([-inf, thresholds, inf])  # table[k] <= x < table[k + 1]  <=>  id k
        k = torch.sub(x, self.origin).mul_(self.scale).floor_().add_(1).clamp_(0, self.n).to(torch.long)
        k.sub_((x < table.take(k)).long())
        k.add_((x >= table.take(k + 1)).long())
        return k


def dmel_bin_centers(n_bits: int, min_value: float, max_value: float) -> torch.Tensor:
    """``2**n_bits`` centres ``min + i * round(step, 4)`` (float64 arithmetic, stored float32), as official."""
    step = np.round((max_value - min_value) / (2 ** n_bits - 1), 4)
    return torch.from_numpy(np.array([min_value + i * step for i in range(2 ** n_bits)]).astype(np.float32))


class DMel(Tokenizer):
    """dMel tokenizer (see module docstring). Ids ``[B, frames, n_mels]`` with ``2**n_bits`` values each.

    sample_rate, n_fft, frame_size_ms, frame_stride_ms, n_mels, f_min, f_max: the log-mel front end;
    n_bits, min_value, max_value: the uniform quantiser; mel_floor: floor before ``log10``;
    vocoder: ``"griffin_lim"`` (no parameters) or ``"vocos"`` (trainable, sized by ``vocos_*``);
    griffin_lim_iters: Griffin-Lim iterations; mel_weight: weight of the ``forward`` mel L1 loss.
    """

    modality = "audio"
    input_range = (-1.0, 1.0)
    decode_draws_noise = True  # Griffin-Lim starts from random phases (the vocos vocoder draws none)

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, frame_size_ms: float = 50.0,
                 frame_stride_ms: float = 12.5, n_mels: int = 80, f_min: float = 80.0, f_max: float = 7600.0,
                 n_bits: int = 4, min_value: float = -7.0, max_value: float = 2.0, mel_floor: float = 1e-10,
                 vocoder: str = "griffin_lim", griffin_lim_iters: int = 32, vocos_width: int = 512,
                 vocos_mlp_hidden: int = 1536, vocos_depth: int = 8, mel_weight: float = 45.0):
        super().__init__()
        self.win_length = round(sample_rate * frame_size_ms / 1000.0)
        self.hop_length = round(sample_rate * frame_stride_ms / 1000.0)
        if not 0 < self.hop_length <= self.win_length <= n_fft:
            raise ValueError(f"need 0 < hop ({self.hop_length}) <= window ({self.win_length}) <= n_fft ({n_fft})")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}")
        if not 1 <= n_bits <= 8 or not min_value < max_value:
            raise ValueError(f"need 1 <= n_bits <= 8 and min_value < max_value, got {n_bits}, {min_value}, {max_value}")
        if vocoder not in ("griffin_lim", "vocos"):
            raise ValueError(f"vocoder must be 'griffin_lim' or 'vocos', got {vocoder!r}")
        self._sample_rate, self.n_fft, self.n_mels = int(sample_rate), int(n_fft), int(n_mels)
        self.n_bits, self.min_value, self.max_value = int(n_bits), float(min_value), float(max_value)
        self.mel_floor, self.griffin_lim_iters, self.mel_weight = float(mel_floor), int(griffin_lim_iters), mel_weight
        self.vocoder_type = vocoder
        fbank = slaney_mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
        centers = dmel_bin_centers(n_bits, min_value, max_value)
        # fixed front end: non-persistent buffers (the tokenizer has no learned weights)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer("fbank", fbank, persistent=False)
        self.register_buffer("inverse_fbank", torch.linalg.pinv(fbank.double()).float(), persistent=False)
        self.register_buffer("centers", centers, persistent=False)
        thresholds = _decision_thresholds(centers)  # numpy-made: on the CPU even when built on the meta device
        self.register_buffer("thresholds", thresholds, persistent=False)
        self._uniform_bins = _UniformBins(thresholds)
        self._groups = self._banded_groups(fbank)
        self.vocos = (VocosVocoder(n_mels, vocos_width, vocos_mlp_hidden, vocos_depth, n_fft=n_fft,
                                   hop_length=self.hop_length, center=(min_value + max_value) / 2,
                                   scale=(max_value - min_value) / 2) if vocoder == "vocos" else None)

    def _banded_groups(self, fbank: torch.Tensor) -> list[tuple[int, int, int, int]]:
        """Split the filters into groups over contiguous bin ranges; register each group's weights."""
        groups = []
        for i, f0 in enumerate(range(0, self.n_mels, _FILTERS_PER_GROUP)):
            f1 = min(f0 + _FILTERS_PER_GROUP, self.n_mels)
            nz = (fbank[:, f0:f1] != 0).any(dim=1).nonzero()[:, 0]
            lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
            self.register_buffer(f"_fbank_group{i}", fbank[lo:hi, f0:f1].t().contiguous(), persistent=False)
            groups.append((f0, f1, lo, hi))
        used = [(lo, hi) for _, _, lo, hi in groups if hi > lo]
        if not used:
            raise ValueError("the mel filterbank is empty (check f_min / f_max / n_fft)")
        self._bins = (min(lo for lo, _ in used), max(hi for _, hi in used))
        groups = [(f0, f1, lo, hi) if hi > lo else (f0, f1, self._bins[0], self._bins[0]) for f0, f1, lo, hi in groups]
        return groups

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> tuple[int, ...]:
        return (2 ** self.n_bits,) * self.n_mels

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def tokens_per_second(self) -> float:
        return self._sample_rate / self.hop_length

    @property
    def pad_id(self) -> int:
        return 2 ** self.n_bits

    @property
    def bos_id(self) -> int:
        return 2 ** self.n_bits + 1

    @property
    def eos_id(self) -> int:
        return 2 ** self.n_bits + 2

    def num_frames(self, num_samples):
        """Frames for ``num_samples`` samples (int or LongTensor): ``num_samples // hop + 1`` (centred STFT)."""
        return (num_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length + 1

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(T,)`` or ``(1, T)`` samples -> ``(T // hop + 1, n_mels)``."""
        n = int(input_shape[-1])
        self._check_num_samples(n)
        return (self.num_frames(n), self.n_mels)

    def _check_num_samples(self, n: int) -> None:
        if n <= self.n_fft // 2:
            ms = 1000 * (self.n_fft // 2 + 1) / self.sample_rate
            raise ValueError(f"dMel needs more than {self.n_fft // 2} samples ({ms:.0f} ms at {self.sample_rate} Hz) "
                             f"for its centred, reflect-padded STFT; got {n}")

    # ----------------------------------------------------------------- features
    def _magnitude(self, spec: torch.Tensor) -> torch.Tensor:
        """``sqrt(max(re^2 + im^2, 1e-10))`` of a complex STFT (bit-identical to the official ops)."""
        if torch.is_grad_enabled() and spec.requires_grad:
            return (spec.real * spec.real + spec.imag * spec.imag).clamp_min(_POWER_FLOOR).sqrt()
        sq = torch.view_as_real(spec).square_()  # in place: the spectrum is a temporary
        return (sq[..., 0] + sq[..., 1]).clamp_min_(_POWER_FLOOR).sqrt_()

    def _log_mel_channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """log10 mel magnitudes ``[B, n_mels, F]`` of ``[B, T]`` audio (float32 even under autocast)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._log_mel_fp32(x)

    def _log_mel_fp32(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        first, last = self._bins
        mag = self._magnitude(spec[:, first:last])  # [B, used bins, F]
        # banded filterbank: each group of filters only touches a contiguous range of bins
        groups = [(getattr(self, f"_fbank_group{i}"), f0, f1, lo - first, hi - first)
                  for i, (f0, f1, lo, hi) in enumerate(self._groups)]
        if torch.is_grad_enabled() and mag.requires_grad:
            mel = torch.cat([torch.matmul(w, mag[:, lo:hi]) for w, _, _, lo, hi in groups], dim=1)
            return mel.clamp_min(self.mel_floor).log10()
        mel = mag.new_empty(mag.shape[0], self.n_mels, mag.shape[-1])
        for w, f0, f1, lo, hi in groups:
            torch.matmul(w, mag[:, lo:hi], out=mel[:, f0:f1])
        return mel.clamp_min_(self.mel_floor).log10_()

    def _ids(self, x: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, T // hop + 1, n_mels]`` of ``[B, T]`` audio.

        On CPU without autograd the signal is processed in blocks of frames (one reflect padding of the whole
        signal, then ``center=False`` STFTs of overlapping slices): every frame sees exactly the same
        samples and arithmetic, so the ids are identical, while the temporaries stay cache-sized
        (about 2x faster on long or batched audio than one STFT over everything).
        """
        if (torch.is_grad_enabled() and x.requires_grad) or x.device.type != "cpu":  # blocks pay off on CPUs
            return torch.bucketize(self._log_mel_channels_first(x).transpose(1, 2).contiguous(), self.thresholds,
                                   right=True)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            pad = self.n_fft // 2
            xp = _reflect_pad(x, pad)
            frames = (xp.shape[-1] - self.n_fft) // self.hop_length + 1
            # short inputs in one block (fewer calls); long or batched ones in cache-sized blocks
            block = frames if frames * x.shape[0] <= _SINGLE_BLOCK_FRAMES else max(32, _FRAMES_PER_BLOCK // x.shape[0])
            first, last = self._bins
            groups = [(getattr(self, f"_fbank_group{i}"), f0, f1, lo - first, hi - first)
                      for i, (f0, f1, lo, hi) in enumerate(self._groups)]
            out = []
            for f0 in range(0, frames, block):
                f1 = min(frames, f0 + block)
                seg = xp[:, f0 * self.hop_length:(f1 - 1) * self.hop_length + self.n_fft]
                spec = torch.stft(seg, self.n_fft, self.hop_length, self.win_length, self.window, center=False,
                                  normalized=False, onesided=True, return_complex=True)
                mag = self._magnitude(spec[:, first:last])
                mel = mag.new_empty(mag.shape[0], self.n_mels, mag.shape[-1])
                for w, g0, g1, lo, hi in groups:
                    torch.matmul(w, mag[:, lo:hi], out=mel[:, g0:g1])
                log_mel = mel.clamp_min_(self.mel_floor).log10_().transpose(1, 2).contiguous()
                out.append(self._uniform_bins(log_mel, self.thresholds))
            return torch.cat(out, dim=1) if len(out) > 1 else out[0]

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """log10 mel magnitudes: ``[B, T]`` -> ``[B, T // hop + 1, n_mels]`` float32 (differentiable)."""
        return self._log_mel_channels_first(x).transpose(1, 2)

    def quantize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[..., n_mels]`` -> ids: the nearest bin centre after clamping to [min, max] (the
        lower one on exact ties), computed as one ``bucketize`` against exact float32 decision points."""
        return torch.bucketize(log_mel.float().contiguous(), self.thresholds, right=True)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[..., n_mels]`` in [0, 2**n_bits) -> bin centres (log10 mel), float32."""
        return self.centers[ids]

    # ----------------------------------------------------------------- LM framing
    def add_bos_eos(self, ids: torch.Tensor, lengths: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Official framing: ``[B, F, C]`` -> ``[B, F + 2, C]`` with a bos frame first, a pad frame last,
        then the eos frame written at ``lengths + 1`` (frames after it keep their ids); lengths + 2."""
        b, f, c = ids.shape
        lengths = torch.full((b,), f, dtype=torch.long, device=ids.device) if lengths is None else lengths.long()
        out = torch.cat([ids.new_full((b, 1, c), self.bos_id), ids, ids.new_full((b, 1, c), self.pad_id)], dim=1)
        out[torch.arange(b, device=ids.device), lengths.to(ids.device) + 1] = self.eos_id
        return out, lengths + 2

    def strip_bos_eos(self, tokens: Tokens) -> Tokens:
        """Inverse of the framing: drop the first and last frame; special ids left inside (the eos
        frame of a shorter item) become id 0; lengths - 2."""
        ids = tokens.ids[:, 1:-1]
        ids = ids.masked_fill(ids >= self.pad_id, 0)
        lengths = None if tokens.lengths is None else tokens.lengths - 2
        extras = {k: v for k, v in tokens.extras.items() if k != "bos_eos"}
        return Tokens(ids=ids, lengths=lengths, num_samples=tokens.num_samples, input_shape=tokens.input_shape,
                      extras=extras)

    # ----------------------------------------------------------------- API
    def tokenize(self, x: torch.Tensor, lengths: torch.Tensor | None = None, bos_eos: bool = False) -> Tokens:
        """Like ``encode`` without the [-1, 1] range check (log-mel features take any amplitude).

        x: float ``[B, T]``; lengths: valid samples per item (only sets ``Tokens.lengths`` in frames
        and, with ``bos_eos``, the eos position: features always cover the whole padded input).
        """
        if x.dim() != 2:
            raise ValueError(f"dMel expects mono audio [B, T], got {tuple(x.shape)}")
        self._check_num_samples(x.shape[-1])
        ids = self._ids(x)  # [B, F, n_mels]
        frames = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
            if lengths.shape != (x.shape[0],):
                raise ValueError(f"lengths must be [B]={x.shape[0]}, got {tuple(lengths.shape)}")
            frames = self.num_frames(lengths)
        extras = {}
        if bos_eos:
            ids, frames = self.add_bos_eos(ids, frames)
            extras["bos_eos"] = True
        return Tokens(ids=ids, lengths=frames, num_samples=int(x.shape[-1]), extras=extras)

    def _encode(self, x: torch.Tensor, sample_rate: int | None = None, lengths: torch.Tensor | None = None,
                bos_eos: bool = False) -> Tokens:
        check_sample_rate(sample_rate, self.sample_rate)
        return self.tokenize(x, lengths=lengths, bos_eos=bos_eos)

    def _as_tokens(self, tokens):
        if isinstance(tokens, Tokens) and tokens.extras.get("bos_eos"):
            tokens = self.strip_bos_eos(tokens)
        return super()._as_tokens(tokens)

    def vocode(self, log_mel: torch.Tensor, num_samples: int | None = None, vocoder: str | None = None,
               griffin_lim_iters: int | None = None, generator: torch.Generator | None = None,
               clamp: bool = True) -> torch.Tensor:
        """Log10 mel ``[B, F, n_mels]`` -> waveform ``[B, num_samples or (F - 1) * hop]``, clipped to
        [-1, 1] unless ``clamp=False``."""
        vocoder = vocoder or self.vocoder_type
        frames = log_mel.shape[1]
        if num_samples is not None and self.num_frames(int(num_samples)) != frames:
            raise ValueError(f"num_samples={num_samples} gives {self.num_frames(int(num_samples))} frames, "
                             f"but the tokens have {frames}")
        length = (frames - 1) * self.hop_length if num_samples is None else int(num_samples)
        if vocoder == "griffin_lim":
            mag = mel_to_linear(torch.pow(10.0, log_mel.float()), self.inverse_fbank)
            wave = griffin_lim(mag, self.n_fft, self.hop_length, self.win_length, self.window,
                               n_iter=self.griffin_lim_iters if griffin_lim_iters is None else griffin_lim_iters,
                               length=length, generator=generator)
        elif vocoder == "vocos":
            if self.vocos is None:
                raise ValueError("this dMel tokenizer has no Vocos vocoder (build it with vocoder='vocos')")
            wave = self.vocos(log_mel)[:, :length]
        else:
            raise ValueError(f"vocoder must be 'griffin_lim' or 'vocos', got {vocoder!r}")
        return wave.clamp(-1.0, 1.0) if clamp else wave

    def token_perturbation(self):
        """RobusTok's perturbation applied per bin id (:mod:`zoo.models.dmel_perturbation`)."""
        from .dmel_perturbation import BinPerturbation

        return BinPerturbation(self)

    def _decode(self, tokens: Tokens, vocoder: str | None = None, griffin_lim_iters: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Audio ``[B, T]`` (unclamped). vocoder: ``"griffin_lim"`` or ``"vocos"`` (default: the
        model's); griffin_lim_iters: iterations; generator: Griffin-Lim's initial phases."""
        return self.vocode(self.dequantize(tokens.ids), tokens.num_samples, vocoder=vocoder,
                           griffin_lim_iters=griffin_lim_iters, generator=generator, clamp=False)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Training forward (trains the Vocos vocoder; the tokenizer itself is fixed).

        x ``[B, T]`` / ``[B, 1, T]`` -> recon ``[B, T]``; loss ``mel`` = mel_weight * L1 between the
        log10 mels of recon and x (Vocos only); stats ``quant_error`` (mean |dequantised - log mel|).
        """
        x = self.validate_input(x)
        self._check_num_samples(x.shape[-1])
        with torch.no_grad():
            target = self.log_mel(x)
            ids = self.quantize(target)
        values = self.dequantize(ids)
        tokens = Tokens(ids=ids, num_samples=int(x.shape[-1]))
        stats = {"quant_error": (values - target).abs().mean().detach()}
        losses = {}
        if self.vocos is None:
            with torch.no_grad():
                recon = self.vocode(values, x.shape[-1])
        else:
            recon = self.vocos(values)[:, : x.shape[-1]]
            if self.mel_weight > 0:
                losses["mel"] = self.mel_weight * (self.log_mel(recon) - target).abs().mean()
        return TokenizerOutput(recon=recon, tokens=tokens, losses=losses, stats=stats,
                               extras={"log_mel": target, "dequantized": values})
