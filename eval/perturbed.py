"""``p_<metric>`` and pFID: a plain metric fed the reconstruction from latent-perturbed tokens.

:class:`PerturbationSource` makes, once per batch, the reconstruction of the input from tokens
perturbed with RobusTok's latent perturbation (``eval.pfid.perturbed_tokens``; seed + global batch
index, decode noise seeded as the clean decode's) and measures the fraction of ids it changed.
:class:`Perturbed` wraps any :class:`~eval.metric.EvalMetric`: ``update(x, recon, tokens)`` passes
the perturbed reconstruction in place of ``recon`` (compared with the original input ``x``, as the
clean metric is), and its protocol adds the perturbation's parameters and measured changed fraction.
"""
from __future__ import annotations

import math
import warnings

from torch import Tensor

from .metric import EvalConfig, EvalMetric

__all__ = ["PerturbationSource", "Perturbed"]


class PerturbationSource:
    """Per-batch perturbed reconstructions of one tokenizer (alpha, effective delta, seed, mode)."""

    def __init__(self, tok, alpha: float, delta: int, seed: int, mode: str, decode_seed: int, device):
        from torchmetrics.aggregation import MeanMetric

        self.tok, self.alpha, self.delta, self.seed, self.mode = tok, alpha, delta, seed, mode
        self.decode_seed = decode_seed
        self.changed = MeanMetric().to(device)  # fraction of tokens the perturbation changed
        self._batch, self._recon, self._changed_value = None, None, None

    @classmethod
    def from_config(cls, tok, config: EvalConfig, device) -> "PerturbationSource":
        """Validated parameters of ``--perturb-*`` (delta capped at the smallest codebook)."""
        from .pfid import DEFAULT_ALPHA, DEFAULT_DELTA, effective_delta

        alpha = DEFAULT_ALPHA if config.perturb_alpha is None else config.perturb_alpha
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--perturb-alpha must lie in [0, 1], got {alpha}")
        if config.perturb_delta is not None and config.perturb_delta < 1:
            raise ValueError(f"--perturb-delta must be >= 1, got {config.perturb_delta}")
        delta = effective_delta(tok, DEFAULT_DELTA if config.perturb_delta is None else config.perturb_delta)
        return cls(tok, alpha, delta, config.perturb_seed, config.perturb_mode, config.seed, device)

    def reconstruction(self, x: Tensor, tokens, batch: int) -> Tensor:
        """The reconstruction of ``x`` from its perturbed tokens (computed once per batch)."""
        if self._batch is not x:
            from .pfid import changed_fraction, perturbed_tokens

            pt = perturbed_tokens(self.tok, x, self.alpha, self.delta, self.seed + batch, self.mode)
            if pt.ids.shape == tokens.ids.shape:
                self.changed.update(changed_fraction(tokens.ids, pt.ids), weight=tokens.ids.numel())
            noise = self.tok.decode_noise_kwargs(self.decode_seed + batch)
            self._batch, self._recon = x, self.tok.modality.fit(self.tok.decode(pt, **noise).float(), x)
        return self._recon

    def changed_fraction(self) -> float | None:
        """Measured fraction of changed ids over all processes (collective on first call; None without data)."""
        if self._changed_value is None:
            with warnings.catch_warnings():  # every process computes (collective), even one without batches
                warnings.simplefilter("ignore")
                value = float(self.changed.compute())
            self._changed_value = (None if math.isnan(value) else value,)
        return self._changed_value[0]


class Perturbed(EvalMetric):
    """``metric`` of the perturbed reconstruction against the original input.

    protocol: the metric's, updated with ``extra`` (the perturbation's parameters) and, once
    computed, ``measured_changed_fraction``; label: how the number is printed (with alpha/delta/seed).
    """

    frechet = property(lambda self: self.metric.frechet)

    def __init__(self, metric: EvalMetric, source: PerturbationSource, extra: dict, label: str):
        super().__init__({**metric.protocol, **extra}, label)
        self.metric, self.source = metric, source

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.metric.update(x, self.source.reconstruction(x, tokens, batch), tokens, lengths=lengths, batch=batch)

    def compute(self):
        changed = self.source.changed_fraction()
        if changed is not None:
            self.protocol["measured_changed_fraction"] = changed
        return self.metric.compute()
