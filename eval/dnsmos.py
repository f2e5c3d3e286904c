"""DNSMOS P.835 (SIG / BAK / OVRL) and P.808 MOS through the ONNX models shipped by PyPI ``speechmos``.

Protocol (Microsoft DNS-Challenge ``dnsmos_local.py``, as ``speechmos.dnsmos`` runs it):
16 kHz mono in [-1, 1]; a clip shorter than 9.01 s is tiled (repeated whole) until it is at
least that long; 9.01 s windows (144,160 samples) every 1 s; the P.835 network takes the raw
window, the P.808 network a 120-band mel spectrogram in dB of the window minus its last 160
samples; raw P.835 outputs go through the published cubic/quadratic polynomial fits; the clip
score is the mean over windows. All windows of a clip go through one batched ONNX call.
Other sample rates are resampled to 16 kHz first (``zoo.audio.resample``; ``speechmos`` itself
refuses them).
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = ["DNSMOS", "DNSMOS_SAMPLE_RATE", "speechmos_model_dir"]

DNSMOS_SAMPLE_RATE = 16000
_WINDOW_SECONDS = 9.01
# published polynomial fits of raw network outputs to P.835 MOS (highest degree first)
_FITS = {False: {"sig": (-0.08397278, 1.22083953, 0.0052439), "bak": (-0.13166888, 1.60915514, -0.39604546),
                 "ovrl": (-0.06766283, 1.11546468, 0.04602535)},
         True: {"sig": (-0.01019296, 0.02751166, 1.19576786, -0.24348726),
                "bak": (-0.04976499, 0.44276479, -0.1644611, 0.96883132),
                "ovrl": (-0.00533021, 0.005101, 1.18058466, -0.11236046)}}


def speechmos_model_dir() -> str:
    """Folder of the installed ``speechmos`` package (holds ``dnsmos_models/``, ``pdnsmos_models/``)."""
    try:
        import speechmos
    except ImportError as e:
        raise ImportError("DNSMOS needs the ONNX models of the PyPI package 'speechmos' "
                          "(pip install speechmos onnxruntime)") from e
    return os.path.dirname(os.path.abspath(speechmos.__file__))


@lru_cache(maxsize=4)
def _session(relpath: str, providers: tuple[str, ...]):
    import onnxruntime as ort

    path = os.path.join(speechmos_model_dir(), relpath)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DNSMOS model {path} is missing from the speechmos installation")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    return ort.InferenceSession(path, sess_options=opts, providers=list(providers))


class DNSMOS:
    """DNSMOS scorer: ``dnsmos(wave [T] or [B, T], sample_rate) -> {"sig","bak","ovrl","p808"}: [B]``.

    personalized: use the personalised P.835 model (``pdnsmos_models``) and its fits.
    p808: also run the P.808 network (needs ``librosa`` for the mel features).
    """

    def __init__(self, personalized: bool = False, p808: bool = True, providers: tuple[str, ...] | None = None):
        self.personalized = bool(personalized)
        self.p808 = bool(p808)
        if providers is None:
            import onnxruntime as ort

            avail = ort.get_available_providers()
            providers = tuple(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail)
        self.providers = tuple(providers)
        self._p835 = _session(("pdnsmos_models" if self.personalized else "dnsmos_models") + "/sig_bak_ovr.onnx",
                              self.providers)
        self._p808 = _session("dnsmos_models/model_v8.onnx", self.providers) if self.p808 else None

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def windows(audio: np.ndarray, sr: int = DNSMOS_SAMPLE_RATE) -> np.ndarray:
        """Tile to >= 9.01 s, then 9.01 s windows every 1 s: ``[T] -> [W, 144160]`` float32."""
        win = int(_WINDOW_SECONDS * sr)
        while len(audio) < win:
            audio = np.append(audio, audio)
        n = int(np.floor(len(audio) / sr) - _WINDOW_SECONDS) + 1
        starts = [int(i * sr) for i in range(n) if int(i * sr) + win <= len(audio)]
        idx = np.asarray(starts)[:, None] + np.arange(win)[None]
        return audio[idx].astype(np.float32)

    @staticmethod
    def p808_features(windows: np.ndarray, sr: int = DNSMOS_SAMPLE_RATE) -> np.ndarray:
        """``[W, 144160]`` -> ``[W, 900, 120]`` dB mel features of the P.808 network."""
        import librosa

        mel = librosa.feature.melspectrogram(y=windows[:, :-160], sr=sr, n_fft=321, hop_length=160, n_mels=120)
        ref = mel.max(axis=(1, 2), keepdims=True)
        db = np.stack([librosa.power_to_db(m, ref=r.item()) for m, r in zip(mel, ref)])
        return ((db + 40) / 40).transpose(0, 2, 1).astype(np.float32)

    def score_clip(self, audio: np.ndarray, sr: int = DNSMOS_SAMPLE_RATE) -> dict[str, float]:
        """One 16 kHz mono clip ``[T]`` -> mean P.835 (and P.808) scores over its windows."""
        wins = self.windows(np.asarray(audio, dtype=np.float32), sr)
        raw = self._p835.run(None, {"input_1": wins})[0].astype(np.float64)  # [W, 3]
        fits = _FITS[self.personalized]
        out = {name: float(np.polyval(fits[name], raw[:, i]).mean()) for i, name in enumerate(("sig", "bak", "ovrl"))}
        if self._p808 is not None:
            out["p808"] = float(self._p808.run(None, {"input_1": self.p808_features(wins, sr)})[0].mean())
        return out

    def __call__(self, wave: Tensor | np.ndarray, sample_rate: int = DNSMOS_SAMPLE_RATE,
                 lengths: Tensor | None = None) -> dict[str, Tensor]:
        """Score each clip of ``wave`` (``[T]``, ``[B, T]`` or ``[B, 1, T]``); ``lengths`` trims padding."""
        wave = torch.as_tensor(wave)
        if not wave.is_floating_point():
            raise TypeError(f"DNSMOS expects float audio in [-1, 1], got {wave.dtype}")
        if wave.dim() == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        if wave.dim() == 1:
            wave = wave[None]
        if wave.dim() != 2:
            raise ValueError(f"DNSMOS expects mono audio [B, T] or [B, 1, T], got shape {tuple(wave.shape)}")
        if wave.shape[-1] == 0:
            raise ValueError("DNSMOS got empty audio (0 samples)")
        if wave.abs().max() > 1:
            raise ValueError("DNSMOS expects audio in [-1, 1]")
        wave = wave.detach().float().cpu()
        ends = [wave.shape[-1]] * wave.shape[0] if lengths is None else [int(n) for n in lengths]
        if int(sample_rate) != DNSMOS_SAMPLE_RATE:
            from zoo.audio import resample

            wave = resample(wave, int(sample_rate), DNSMOS_SAMPLE_RATE)
            ends = [int(round(n * DNSMOS_SAMPLE_RATE / int(sample_rate))) for n in ends]
        rows = [self.score_clip(wave[i, :n].numpy()) for i, n in enumerate(ends)]
        return {k: torch.tensor([r[k] for r in rows], dtype=torch.float64) for k in rows[0]}
