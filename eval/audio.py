"""Audio reconstruction metrics as streaming ``torchmetrics.Metric`` s (mean over clips, DDP-synced).

Every metric takes ``update(preds, target=None, lengths=None)`` with ``preds`` / ``target``
float ``[B, T]`` or ``[B, 1, T]`` in [-1, 1] at the metric's ``sample_rate`` (``lengths`` [B]
trims zero-padding per clip) and ``compute()`` returns the mean over all clips seen (on all
processes). Protocols:

- :class:`SISDR`: scale-invariant SDR in dB (zero-mean signals, float64), per clip.
- :class:`PESQ`: ITU-T P.862.2 wide-band PESQ (MOS-LQO) of the ``pesq`` package at 16 kHz
  (``mode="nb"``: P.862 narrow-band at 8 or 16 kHz); other rates are resampled first.
- :class:`STOI`: STOI (or extended STOI) of the ``pystoi`` package (it resamples to 10 kHz).
- :class:`MelDistance`: mean absolute difference of natural-log mel magnitude spectrograms
  (``torchaudio`` MelSpectrogram, power 1, HTK mel scale, no filter normalisation, reflect-padded
  centred frames, log floor 1e-5); defaults ``n_fft=1024, hop=256, n_mels=80``.
- :class:`UTMOS`: UTMOS22 strong learner (``eval.utmos``), each clip scored alone; no reference.
- :class:`DNSMOS`: DNSMOS P.835 SIG/BAK/OVRL and P.808 (``eval.dnsmos``); no reference.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from zoo.fidelity import mel_distance, si_sdr

__all__ = ["si_sdr", "mel_distance", "SISDR", "PESQ", "STOI", "MelDistance", "UTMOS", "DNSMOS",
           "AUDIO_METRICS"]


def _as_batch(x: Tensor, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor [B, T], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be float audio in [-1, 1], got {x.dtype}")
    if x.dim() == 3:
        if x.shape[1] != 1:
            raise ValueError(f"{what} must be mono [B, 1, T], got {x.shape[1]} channels")
        x = x[:, 0]
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f"{what} must have shape [B, T] or [B, 1, T], got {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    return x


def _pair(preds: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor | None]:
    preds = _as_batch(preds, "preds")
    if target is None:
        return preds, None
    target = _as_batch(target, "target")
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must have the same shape "
                         "(trim the reconstruction to the input length, e.g. decode with Tokens.num_samples)")
    return preds, target


def _ends(x: Tensor, lengths: Tensor | None) -> list[int]:
    if lengths is None:
        return [x.shape[-1]] * x.shape[0]
    ends = [int(n) for n in torch.as_tensor(lengths).tolist()]
    if len(ends) != x.shape[0] or min(ends) < 1 or max(ends) > x.shape[-1]:
        raise ValueError(f"lengths must be [B]={x.shape[0]} values in [1, {x.shape[-1]}], got {ends}")
    return ends


# ----------------------------------------------------------------------------- metrics
class _ClipMean(Metric):
    """Mean of a per-clip score over every clip seen (sum + count states, summed across processes)."""

    is_differentiable = False
    full_state_update = False
    needs_target = True

    def __init__(self, sample_rate: int, **kwargs):
        super().__init__(**kwargs)
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def _scores(self, preds: Tensor, target: Tensor | None, ends: list[int]) -> Tensor:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor | None = None, lengths: Tensor | None = None) -> None:
        if self.needs_target and target is None:
            raise ValueError(f"{type(self).__name__} compares a reconstruction with its reference: pass target")
        preds, target = _pair(preds, target)
        scores = self._scores(preds, target, _ends(preds, lengths)).to(self.total.device, torch.float64)
        self.total += scores.sum()
        self.count += scores.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update")
        return (self.total / self.count).float()


class SISDR(_ClipMean):
    """Scale-invariant SDR (dB), higher is better."""

    higher_is_better = True

    def __init__(self, sample_rate: int = 16000, **kwargs):
        super().__init__(sample_rate, **kwargs)

    def _scores(self, preds, target, ends):
        if all(n == preds.shape[-1] for n in ends):
            return si_sdr(preds, target)
        return torch.stack([si_sdr(preds[i, :n], target[i, :n]) for i, n in enumerate(ends)])


class MelDistance(_ClipMean):
    """L1 distance of log-mel spectrograms (see :func:`mel_distance`), lower is better."""

    higher_is_better = False

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 80,
                 f_min: float = 0.0, f_max: float | None = None, **kwargs):
        super().__init__(sample_rate, **kwargs)
        self.mel_kwargs = dict(n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, f_min=f_min, f_max=f_max)

    def _scores(self, preds, target, ends):
        if all(n == preds.shape[-1] for n in ends):
            return mel_distance(preds, target, self.sample_rate, **self.mel_kwargs)
        return torch.cat([mel_distance(preds[i:i + 1, :n], target[i:i + 1, :n], self.sample_rate, **self.mel_kwargs)
                          for i, n in enumerate(ends)])


def _resampled_numpy(x: Tensor, rate: int, new_rate: int):
    from zoo.audio import resample

    return resample(x.detach().float().cpu(), rate, new_rate).double().numpy()


class PESQ(_ClipMean):
    """PESQ MOS-LQO (``pesq`` package): ``mode="wb"`` at 16 kHz (default) or ``"nb"`` at 8/16 kHz."""

    higher_is_better = True

    def __init__(self, sample_rate: int, mode: str = "wb", **kwargs):
        super().__init__(sample_rate, **kwargs)
        if mode not in ("wb", "nb"):
            raise ValueError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
        self.mode = mode
        self.pesq_rate = 8000 if mode == "nb" and self.sample_rate == 8000 else 16000

    def _scores(self, preds, target, ends):
        from pesq import pesq

        out = []
        for i, n in enumerate(ends):
            ref = _resampled_numpy(target[i, :n], self.sample_rate, self.pesq_rate)
            deg = _resampled_numpy(preds[i, :n], self.sample_rate, self.pesq_rate)
            out.append(pesq(self.pesq_rate, ref, deg, self.mode))
        return torch.tensor(out, dtype=torch.float64)


class STOI(_ClipMean):
    """Short-time objective intelligibility (``pystoi``; ``extended=True`` for ESTOI), in [0, 1]."""

    higher_is_better = True

    def __init__(self, sample_rate: int, extended: bool = False, **kwargs):
        super().__init__(sample_rate, **kwargs)
        self.extended = bool(extended)

    def _scores(self, preds, target, ends):
        from pystoi import stoi

        return torch.tensor([stoi(target[i, :n].detach().double().cpu().numpy(),
                                  preds[i, :n].detach().double().cpu().numpy(), self.sample_rate,
                                  extended=self.extended) for i, n in enumerate(ends)], dtype=torch.float64)


class UTMOS(_ClipMean):
    """Predicted naturalness MOS (UTMOS22 strong), each clip scored alone; ``target`` is ignored.

    weights: see :func:`eval.utmos.load_utmos` (path, state dict, hub repo or ``"speechmos"``).
    """

    higher_is_better = True
    needs_target = False

    def __init__(self, sample_rate: int, weights=None, model=None, **kwargs):
        super().__init__(sample_rate, **kwargs)
        from .utmos import load_utmos

        self.model = model if model is not None else load_utmos(weights)
        self.model.eval().requires_grad_(False)

    def _scores(self, preds, target, ends):
        with torch.no_grad():
            return self.model.score(preds.to(self.model.domain_emb.device), self.sample_rate,
                                    lengths=torch.tensor(ends))


class DNSMOS(Metric):
    """DNSMOS P.835 means over clips: ``compute() -> {"sig", "bak", "ovrl", "p808"}``; no reference."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    KEYS = ("sig", "bak", "ovrl", "p808")

    def __init__(self, sample_rate: int, personalized: bool = False, p808: bool = True, **kwargs):
        super().__init__(**kwargs)
        from .dnsmos import DNSMOS as _Scorer

        self.sample_rate = int(sample_rate)
        self.scorer = _Scorer(personalized=personalized, p808=p808)
        self.keys = self.KEYS if p808 else self.KEYS[:3]
        for k in self.keys:
            self.add_state(k, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor | None = None, lengths: Tensor | None = None) -> None:
        preds = _as_batch(preds, "preds")
        scores = self.scorer(preds, self.sample_rate, lengths=None if lengths is None
                             else torch.tensor(_ends(preds, lengths)))
        for k in self.keys:
            setattr(self, k, getattr(self, k) + scores[k].sum().to(self.count.device))
        self.count += preds.shape[0]

    def compute(self) -> dict[str, Tensor]:
        if int(self.count) == 0:
            raise RuntimeError("DNSMOS.compute() called before any update")
        return {k: (getattr(self, k) / self.count).float() for k in self.keys}


#: metric name (as used by scripts/evaluate.py) -> class
AUDIO_METRICS = {"si_sdr": SISDR, "pesq": PESQ, "stoi": STOI, "mel_distance": MelDistance, "utmos": UTMOS,
                 "dnsmos": DNSMOS}
