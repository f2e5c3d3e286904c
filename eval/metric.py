"""The protocol every metric of ``scripts/evaluate.py`` follows, and what metrics of one run share.

:class:`EvalMetric`: ``update(x, recon, tokens, lengths=None, batch=0)`` with the input batch ``x``,
its reconstruction ``recon`` (same shape, clipped to the modality's range), the ``zoo.Tokens`` and,
for audio, the clip lengths ``[B]`` before zero-padding; ``batch`` is the global batch index (seeds
per-batch draws). ``compute()`` returns the value (a tensor or a dict of tensors); ``protocol`` says
what was measured and how; ``label`` (or None) is how the number must be printed. Metrics are
``torch.nn.Module`` s (``.to(device)``) and their states are synchronised across processes.

:class:`EvalConfig` is the plain configuration of the metrics (built once from the command line);
:class:`MetricContext` holds the tokenizer, input shape and device of a run and the resources its
metrics share: one Inception / I3D network and the features of the real batch (computed once per
batch for rFID, pFID and the token-count sweep), and the latent-perturbation source of every
perturbed metric (:mod:`eval.perturbed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

__all__ = ["EvalMetric", "EvalConfig", "MetricContext"]


class EvalMetric(nn.Module):
    """Base class of the evaluation metrics (see module docstring)."""

    #: "value per item" metrics give :meth:`per_item` (psnr, ssim, ms_ssim, lpips)
    has_per_item = False
    #: a Frechet distance: strongly biased for small sample counts (the report says so)
    frechet = False

    def __init__(self, protocol: dict[str, Any] | None = None, label: str | None = None):
        super().__init__()
        self.protocol: dict[str, Any] = dict(protocol or {})
        self.label = label

    def update(self, x: Tensor, recon: Tensor, tokens, lengths: Tensor | None = None, batch: int = 0) -> None:
        raise NotImplementedError

    def compute(self) -> Any:
        raise NotImplementedError

    def per_item(self) -> list[float]:
        """Values per item (per frame for video), gathered over processes (collective)."""
        raise NotImplementedError(f"{type(self).__name__} has no per-item values")


@dataclass(frozen=True)
class EvalConfig:
    """Metric options of one evaluation (``scripts/evaluate.py`` flags of the same names)."""

    inception_weights: str | None = None
    fid_reference: str | None = None
    lpips_net: str = "alex"
    lpips_weights: str | None = None
    i3d_weights: str | None = None
    utmos_weights: str | None = None
    perturb_alpha: float | None = None
    perturb_delta: int | None = None
    perturb_seed: int = 0
    perturb_mode: str = "encoder"
    seed: int = 0

    @classmethod
    def from_args(cls, args) -> "EvalConfig":
        return cls(inception_weights=args.inception_weights, fid_reference=args.fid_reference,
                   lpips_net=args.lpips_net, lpips_weights=args.lpips_weights, i3d_weights=args.i3d_weights,
                   utmos_weights=args.utmos_weights, perturb_alpha=args.pfid_alpha, perturb_delta=args.pfid_delta,
                   perturb_seed=args.pfid_seed, perturb_mode=args.pfid_mode, seed=args.seed)


class _RealFeatures:
    """Features of the latest real batch under one network (computed once, shared by the metrics)."""

    def __init__(self, compute: Callable[[Tensor], Tensor]):
        self.compute, self.batch, self.value = compute, None, None

    def __call__(self, x: Tensor) -> Tensor:
        if x is not self.batch:
            self.batch, self.value = x, self.compute(x)
        return self.value


class MetricContext:
    """The tokenizer (on ``device``), input ``shape`` (without batch; ``()`` for audio) and
    :class:`EvalConfig` of a run, plus the resources its metrics share."""

    def __init__(self, tok, shape: tuple[int, ...], device: torch.device, config: EvalConfig):
        self.tok, self.modality, self.shape, self.device, self.config = tok, tok.modality, tuple(shape), device, config
        self._inception = self._i3d = self._perturbation = None
        self._real: dict[str, _RealFeatures] = {}

    @property
    def has_inception(self) -> bool:
        """Whether a metric of this run loaded the Inception network."""
        return self._inception is not None

    def inception(self) -> nn.Module:
        """The Inception network of every FID of the run (loaded once)."""
        if self._inception is None:
            from .fid import InceptionFeatures

            self._inception = InceptionFeatures(self.config.inception_weights).to(self.device)
        return self._inception

    def i3d(self) -> nn.Module:
        """The I3D network of every FVD of the run (loaded once)."""
        if self._i3d is None:
            from .fvd import I3DFeatures

            self._i3d = I3DFeatures(self.config.i3d_weights)
        return self._i3d

    def real_features(self, kind: str, compute: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``compute(x)`` for the real batch ``x``, once per batch for each feature ``kind``."""
        if kind not in self._real:
            self._real[kind] = _RealFeatures(compute)
        return self._real[kind](x)

    def perturbation(self):
        """The latent-perturbation source shared by pfid and every ``p_<metric>`` (created on first use;
        validates alpha and delta)."""
        if self._perturbation is None:
            from .perturbed import PerturbationSource

            self._perturbation = PerturbationSource.from_config(self.tok, self.config, self.device)
        return self._perturbation
