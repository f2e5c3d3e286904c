"""pFID (RobusTok): FID of images decoded from latent-perturbed tokens.

Each token is, with probability ``alpha``, replaced by a uniform pick among the ``delta``
codebook entries nearest to its encoder output (``zoo.quant.perturb.encode_perturbed``; mode
``"encoder"``, RobusTok's definition) or nearest to its own code (``perturb_tokens``; mode
``"tokens"``, for when only ids are at hand). Draws come from ``seed`` (plus the global batch
index), so a run is reproducible and independent of the number of processes. The number is
meaningless without (alpha, delta, seed): :func:`pfid_label` always prints them together.
Defaults (alpha=0.5, delta=100) are the zoo's choice; RobusTok trains with delta=100.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["decode_kwargs", "perturbed_reconstruction", "supports_pfid", "pfid_protocol", "pfid_label", "effective_delta",
           "DEFAULT_ALPHA", "DEFAULT_DELTA"]

DEFAULT_ALPHA = 0.5
DEFAULT_DELTA = 100


def _codebook_sizes(tokenizer) -> tuple[int, ...]:
    k = tokenizer.codebook_size
    return (int(k),) if isinstance(k, int) else tuple(int(v) for v in k)


def supports_pfid(tokenizer) -> tuple[bool, str]:
    """(True, "") when the tokenizer holds zoo quantizers the perturbation understands, else (False, why)."""
    from zoo.quant.perturb import _supported, leaf_quantizers

    leaves = leaf_quantizers(tokenizer)
    if not leaves:
        return False, f"{type(tokenizer).__name__} has no zoo quantizer (not a VQ tokenizer)"
    bad = [type(q).__name__ for q in leaves if not (_supported(q) or hasattr(q, "perturbation_space"))]
    if bad:
        return False, f"quantizer(s) {bad} have no nearest-code search to perturb (pFID needs VQ codebooks)"
    return True, ""


def decode_kwargs(tokenizer, seed: int) -> dict[str, Any]:
    """``{"generator": seeded Generator}`` for tokenizers whose decoder samples noise (FlexTok), else {}:
    clean and perturbed decodes then draw the same noise, so alpha=0 reproduces the clean reconstruction."""
    import inspect

    if "generator" not in inspect.signature(tokenizer._decode).parameters:
        return {}
    dev = tokenizer.device
    return {"generator": torch.Generator(device=dev).manual_seed(int(seed))}


def effective_delta(tokenizer, delta: int) -> int:
    """``delta`` capped at the smallest codebook (top-delta needs delta <= K)."""
    return max(1, min(int(delta), min(_codebook_sizes(tokenizer))))


def perturbed_reconstruction(tokenizer, images: Tensor, alpha: float, delta: int, seed: int,
                             mode: str = "encoder", **decode_kwargs) -> Tensor:
    """Decode ``images`` ``[B, 3, H, W]`` in [0, 1] from perturbed tokens (same shape, [0, 1])."""
    from zoo.quant.perturb import encode_perturbed, perturb_tokens

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    if mode == "encoder":
        tokens = encode_perturbed(tokenizer, images, alpha=alpha, delta=delta, seed=seed)
    elif mode == "tokens":
        tokens = perturb_tokens(tokenizer, tokenizer.encode(images), alpha=alpha, delta=delta, seed=seed)
    else:
        raise ValueError(f"mode must be 'encoder' or 'tokens', got {mode!r}")
    return tokenizer.decode(tokens, **decode_kwargs).clamp(0, 1)


def pfid_protocol(alpha: float, delta: int, seed: int, mode: str = "encoder") -> dict[str, Any]:
    return {"alpha": float(alpha), "delta": int(delta), "seed": int(seed), "beta": 1.0,
            "perturbation": ("RobusTok latent perturbation: per token, with prob. alpha, a uniform pick among the "
                             "delta codes nearest to the " + ("encoder output" if mode == "encoder" else
                                                               "token's own code") + "; every image perturbed"),
            "seeding": "seed + global batch index (independent of the number of processes)"}


def pfid_label(alpha: float, delta: int, seed: int) -> str:
    """``pFID(alpha=0.5, delta=100, seed=0)``: the number is always shown with its parameters."""
    return f"pFID(alpha={alpha:g}, delta={int(delta)}, seed={int(seed)})"
