"""Classic speech codecs as baselines at equal bit rates: Codec2 and Opus (Debian command-line tools).

- :func:`codec2`: ``c2enc`` / ``c2dec`` (Debian ``codec2``), 8 kHz 16-bit mono, modes
  :data:`CODEC2_MODES`. The decoder output lags the input by a fixed, mode-dependent delay
  (:data:`CODEC2_DELAY`, in 8 kHz samples): it is removed (output shifted left, zero-padded at the
  end) so that reference-based metrics compare the same instants. Codec2 synthesises its own
  phases, so the delay cannot be read off a waveform cross-correlation: :func:`measure_delay`
  finds the lag minimising the log-mel distance, pooled over utterances; the table holds its
  result (2-sample lag grid) on 38 training utterances of ``zoo.data.offline.speech_split()``
  (every 40th of the training list that lasts >= 2 s, first 4 s; none held out); the two halves
  of that set agree within 16 samples (2 ms), and a test re-measures it on held-out speech.
- :func:`opus`: ``opusenc`` / ``opusdec`` (Debian ``opus-tools``, libopus), VBR at a target bit
  rate; ``opusdec`` removes the encoder's pre-skip, so the output is aligned. Bits are the whole
  ``.opus`` file (Ogg pages and the Opus header / tag packets included).

Bit rates are stated as measured file sizes (``CodedSpeech.bits_per_s``); Codec2 also has its
nominal rate: 700C packs each 28-bit frame into 4 bytes, so its file holds 800 bit/s for a
700 bit/s stream.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["CodedSpeech", "codec2", "opus", "measure_delay", "CODEC2_MODES", "CODEC2_RATE", "CODEC2_DELAY",
           "OPUS_BITRATES_KBPS", "require_tool"]

CODEC2_RATE = 8000
#: mode -> nominal bit rate (bit/s)
CODEC2_MODES = {"700C": 700, "1200": 1200, "1600": 1600, "2400": 2400, "3200": 3200}
#: mode -> decoder output delay in 8 kHz samples (:func:`measure_delay`, see the module docstring)
CODEC2_DELAY = {"700C": 226, "1200": 144, "1600": 142, "2400": 144, "3200": 142}
#: Opus target bit rates shown in the demo report (kbit/s)
OPUS_BITRATES_KBPS = (6, 8, 12)
_TOOLS = {"c2enc": "codec2", "c2dec": "codec2", "opusenc": "opus-tools", "opusdec": "opus-tools"}


@dataclass
class CodedSpeech:
    """Decoded speech ``wave`` ``[T]`` in [-1, 1] at ``sample_rate`` (aligned with and as long as the
    input), the coded file's size in ``bits`` and the input duration ``seconds``."""

    wave: torch.Tensor
    sample_rate: int
    bits: int
    seconds: float

    @property
    def bits_per_s(self) -> float:
        return self.bits / self.seconds


def require_tool(name: str) -> str:
    """Path of a codec command-line tool; ``FileNotFoundError`` naming its Debian package when absent."""
    path = shutil.which(name)
    if path is None:
        pkg = _TOOLS.get(name, name)
        raise FileNotFoundError(f"{name} not found: install the Debian package '{pkg}' (apt-get install {pkg}; "
                                "`make demo` / `make test` do it)")
    return path


def _check_wave(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    if not isinstance(wave, torch.Tensor) or not wave.is_floating_point():
        raise TypeError(f"wave must be a float tensor [T] in [-1, 1], got "
                        f"{wave.dtype if isinstance(wave, torch.Tensor) else type(wave).__name__}")
    wave = wave.squeeze(0) if wave.dim() == 2 and wave.shape[0] == 1 else wave
    if wave.dim() != 1 or wave.numel() == 0:
        raise ValueError(f"wave must be mono [T] (or [1, T]) with samples, got {tuple(wave.shape)}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate}")
    if float(wave.abs().max()) > 1.0:
        raise ValueError("wave must lie in [-1, 1]")
    return wave.detach().float().cpu()


def _pcm16(wave: torch.Tensor) -> np.ndarray:
    return (wave.numpy() * 32767.0).round().astype("<i2")


def _run(*cmd: str) -> None:
    proc = subprocess.run([require_tool(cmd[0]), *cmd[1:]], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


def _fit(y: torch.Tensor, n: int) -> torch.Tensor:
    return torch.nn.functional.pad(y[:n], (0, max(0, n - y.numel())))


def codec2(wave: torch.Tensor, sample_rate: int, mode: str, align: bool = True) -> CodedSpeech:
    """Encode and decode with Codec2 ``mode``; returns 8 kHz speech (band-limited to 4 kHz), delay
    removed when ``align`` (see :data:`CODEC2_DELAY`), as long as the input."""
    from zoo.audio import resample

    if mode not in CODEC2_MODES:
        raise ValueError(f"Codec2 mode must be one of {list(CODEC2_MODES)}, got {mode!r}")
    x = resample(_check_wave(wave, sample_rate)[None], int(sample_rate), CODEC2_RATE)[0].clamp(-1, 1)
    with tempfile.TemporaryDirectory(prefix="zoo_codec2_") as tmp:
        raw, bits, out = Path(tmp) / "in.raw", Path(tmp) / "coded.bin", Path(tmp) / "out.raw"
        _pcm16(x).tofile(raw)
        _run("c2enc", mode, str(raw), str(bits))
        _run("c2dec", mode, str(bits), str(out))
        nbits = 8 * bits.stat().st_size
        y = torch.from_numpy(np.fromfile(out, dtype="<i2").astype(np.float32) / 32768.0)
    if align:
        y = y[CODEC2_DELAY[mode]:]
    return CodedSpeech(_fit(y, x.numel()), CODEC2_RATE, nbits, x.numel() / CODEC2_RATE)


def opus(wave: torch.Tensor, sample_rate: int, kbps: float) -> CodedSpeech:
    """Encode with ``opusenc --bitrate kbps`` (VBR, speech at ``sample_rate``; libopus resamples to 48 kHz
    inside) and decode with ``opusdec --rate sample_rate``; as long as the input."""
    import soundfile as sf

    if not 6 <= float(kbps) <= 256:
        raise ValueError(f"Opus bit rate must be in [6, 256] kbit/s, got {kbps}")
    x = _check_wave(wave, sample_rate)
    with tempfile.TemporaryDirectory(prefix="zoo_opus_") as tmp:
        wav, coded, out = Path(tmp) / "in.wav", Path(tmp) / "coded.opus", Path(tmp) / "out.wav"
        sf.write(wav, _pcm16(x), int(sample_rate), subtype="PCM_16")
        _run("opusenc", "--quiet", "--bitrate", f"{float(kbps):g}", str(wav), str(coded))
        _run("opusdec", "--quiet", "--rate", str(int(sample_rate)), str(coded), str(out))
        nbits = 8 * coded.stat().st_size
        y, rate = sf.read(out, dtype="float32", always_2d=True)
    if rate != int(sample_rate):
        raise RuntimeError(f"opusdec wrote {rate} Hz, asked for {sample_rate} Hz")
    y = torch.from_numpy(np.ascontiguousarray(y.mean(axis=1)))
    return CodedSpeech(_fit(y, x.numel()), int(sample_rate), nbits, x.numel() / int(sample_rate))


def measure_delay(pairs: list[tuple[torch.Tensor, torch.Tensor]], sample_rate: int, max_lag: int,
                  step: int = 1) -> int:
    """The output delay (samples, in ``[0, max_lag]``) of a codec from ``(input [T], unaligned output [T'])``
    pairs: the lag minimising the log-mel L1 distance (``eval.audio.mel_distance``, 32 ms windows,
    4 ms hop, 40 mels) between input and lagged output, summed over the pairs. Needs no phase
    agreement, so it works for parametric codecs (Codec2)."""
    from eval.audio import mel_distance

    if not pairs:
        raise ValueError("measure_delay needs at least one (input, output) pair")
    lags = list(range(0, int(max_lag) + 1, int(step)))
    total = torch.zeros(len(lags), dtype=torch.float64)
    n_fft = 1 << max(6, int(round(np.log2(0.032 * sample_rate))))
    for ref, out in pairs:
        n = ref.numel() - int(max_lag)
        if n < n_fft:
            raise ValueError(f"clip of {ref.numel()} samples is too short for lags up to {max_lag}")
        out = _fit(out.flatten().float(), ref.numel())
        shifted = torch.stack([out[lag:lag + n] for lag in lags])
        dist = mel_distance(shifted, ref.flatten().float()[:n].expand(len(lags), n), sample_rate, n_fft=n_fft,
                            hop_length=max(1, sample_rate // 250), n_mels=40)
        total += dist.double()
    return lags[int(torch.argmin(total))]
