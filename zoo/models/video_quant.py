"""Quantizer choice for the video tokenizers: ``"vq"`` (l2-normalised VQ), ``"fsq"``, ``"lfq"``.

``build_quantizer(kind, code_dim, **kwargs) -> (quantizer, code_dim)``: the quantizer works
on channels-last latents ``[B, N, C]`` and the returned ``code_dim`` is the width the model
must project its latents to (FSQ: ``len(levels)``, LFQ: ``log2(codebook_size)``).
FSQ / LFQ come from ``zoo.quant.fsq`` / ``zoo.quant.lfq``; a clear error names them when absent.
"""
from __future__ import annotations

import importlib
import math

import torch
from torch import nn

from ..quant import VectorQuantizer

__all__ = ["QUANTIZERS", "build_quantizer", "quantizer_available", "codebook_vectors"]

QUANTIZERS = ("vq", "fsq", "lfq")
_MODULES = {"fsq": ("zoo.quant.fsq", "FSQ"), "lfq": ("zoo.quant.lfq", "LFQ")}


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


def build_quantizer(kind: str, code_dim: int | None = None, codebook_size: int | None = None,
                    levels: list[int] | None = None, beta: float = 0.25, l2_norm: bool = True,
                    **kwargs) -> tuple[nn.Module, int]:
    """A channels-last quantizer and the latent width it takes.

    vq: ``codebook_size`` codes of width ``code_dim`` (cosine when ``l2_norm``), commitment ``beta``.
    fsq: ``levels`` per channel (codebook ``prod(levels)``). lfq: ``codebook_size = 2**bits``.
    Extra ``kwargs`` go to the FSQ / LFQ constructor.
    """
    if kind == "vq":
        if code_dim is None or codebook_size is None:
            raise ValueError("quantizer 'vq' needs code_dim and codebook_size")
        return VectorQuantizer(codebook_size, code_dim, beta=beta, l2_norm=l2_norm, channel_dim=-1), code_dim
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
        return cls(dim=bits, channel_dim=-1, **kwargs), bits
    raise ValueError(f"unknown quantizer {kind!r}; choose one of {QUANTIZERS}")


def codebook_vectors(quantizer: nn.Module, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every code's latent vector ``[K, C]`` (K = ``quantizer.codebook_size``) on ``device``, no grad."""
    k = quantizer.codebook_size
    if not isinstance(k, int):
        raise ValueError(f"expected a single codebook, got sizes {k}")
    ids = torch.arange(k, device=device)
    with torch.no_grad():
        return quantizer.ids_to_latents(ids)
