"""Quantizer choice for the video tokenizers: ``"vq"`` (l2-normalised VQ), ``"fsq"``, ``"lfq"``.

``build_quantizer(kind, codebook_dim, **kwargs) -> (quantizer, codebook_dim)``: the quantizer works
on channels-last latents ``[B, N, C]`` and the returned ``codebook_dim`` is the width the model
must project its latents to (FSQ: ``len(levels)``, LFQ: ``log2(codebook_size)``).
FSQ / LFQ come from ``zoo.quant.fsq`` / ``zoo.quant.lfq``; a clear error names them when absent.
"""
from __future__ import annotations

import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..quant import QuantizerOutput, VectorQuantizer, codebook_stats

__all__ = ["QUANTIZERS", "StochasticCosineVQ", "build_quantizer", "quantizer_available", "codebook_vectors"]

QUANTIZERS = ("vq", "fsq", "lfq")
_MODULES = {"fsq": ("zoo.quant.fsq", "FSQ"), "lfq": ("zoo.quant.lfq", "LookupFreeQuantizer")}


class StochasticCosineVQ(VectorQuantizer):
    """LARP's l2-normalised VQ: in training, ids are *sampled* from
    ``softmax(cos(z, codes) / temperature)`` instead of taking the nearest code, which keeps
    the whole codebook in use; in eval mode or without grad (``Tokenizer.encode`` runs under
    inference mode) it is the deterministic nearest (cosine) code.
    Same parameters (``embedding.weight``), losses and straight-through as
    :class:`~zoo.quant.VectorQuantizer` with ``l2_norm=True``; channels-last ``[B, N, C]``.
    """

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25, temperature: float = 0.03):
        super().__init__(codebook_size, dim, beta=beta, l2_norm=True, channel_dim=-1)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        nn.init.kaiming_uniform_(self.embedding.weight)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if not (self.training and torch.is_grad_enabled()):  # inference (e.g. Tokenizer.encode): nearest code
            return super().forward(z)
        zc = F.normalize(z.float(), dim=-1)
        if zc.shape[-1] != self.dim:
            raise ValueError(f"expected {self.dim} channels last, got shape {tuple(z.shape)}")
        codebook = self._codebook()
        probs = F.softmax(zc.reshape(-1, self.dim) @ codebook.t() / self.temperature, dim=-1)
        ids = torch.multinomial(probs, 1).view(zc.shape[:-1])
        zq = F.embedding(ids, codebook)
        losses = {"commitment": self.beta * F.mse_loss(zc, zq.detach()), "codebook": F.mse_loss(zq, zc.detach())}
        zq = zc + (zq - zc).detach()
        return QuantizerOutput(zq, ids, losses, codebook_stats(ids, self.codebook_size))


def _quant_class(kind: str):
    module, name = _MODULES[kind]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"quantizer {kind!r} needs {module}.{name}, which is not available ({e}); "
                         f"use quantizer='vq'") from e


def quantizer_available(kind: str) -> bool:
    """Whether ``build_quantizer(kind, ...)`` can work in this installation."""
    if kind == "vq":
        return True
    try:
        _quant_class(kind)
        return True
    except ValueError:
        return False


def build_quantizer(kind: str, codebook_dim: int | None = None, codebook_size: int | None = None,
                    levels: list[int] | None = None, beta: float = 0.25, l2_norm: bool = True,
                    stochastic_temperature: float = 0.0, **kwargs) -> tuple[nn.Module, int]:
    """A channels-last quantizer and the latent width it takes.

    vq: ``codebook_size`` codes of width ``codebook_dim`` (cosine when ``l2_norm``), commitment ``beta``;
        ``stochastic_temperature > 0``: LARP's sampled cosine VQ (:class:`StochasticCosineVQ`).
    fsq: ``levels`` per channel (codebook ``prod(levels)``). lfq: ``codebook_size = 2**bits``.
    Extra ``kwargs`` go to the FSQ / LFQ constructor.
    """
    if kind == "vq":
        if codebook_dim is None or codebook_size is None:
            raise ValueError("quantizer 'vq' needs codebook_dim and codebook_size")
        if kwargs:
            raise ValueError(f"unexpected arguments for quantizer 'vq': {sorted(kwargs)}")
        if stochastic_temperature > 0:
            if not l2_norm:
                raise ValueError("stochastic VQ needs l2_norm=True")
            vq = StochasticCosineVQ(codebook_size, codebook_dim, beta=beta, temperature=stochastic_temperature)
            return vq, codebook_dim
        return VectorQuantizer(codebook_size, codebook_dim, beta=beta, l2_norm=l2_norm, channel_dim=-1), codebook_dim
    if kind == "fsq":
        if not levels:
            raise ValueError("quantizer 'fsq' needs levels, e.g. [8, 8, 8, 5, 5, 5]")
        cls = _quant_class("fsq")
        return cls(levels=list(levels), channel_dim=-1, **kwargs), len(levels)
    if kind == "lfq":
        if codebook_size is None or codebook_size & (codebook_size - 1):
            raise ValueError(f"quantizer 'lfq' needs a power-of-two codebook_size, got {codebook_size}")
        cls = _quant_class("lfq")
        bits = int(math.log2(codebook_size))
        return cls(bits=bits, channel_dim=-1, **kwargs), bits
    raise ValueError(f"unknown quantizer {kind!r}; choose one of {QUANTIZERS}")


def codebook_vectors(quantizer: nn.Module, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every code's latent vector ``[K, C]`` (K = ``quantizer.codebook_size``) on ``device``, no grad."""
    k = quantizer.codebook_size
    if not isinstance(k, int):
        raise ValueError(f"expected a single codebook, got sizes {k}")
    ids = torch.arange(k, device=device)
    with torch.no_grad():
        return quantizer.ids_to_latents(ids)
