"""pFID (RobusTok): FID of images decoded from latent-perturbed tokens.

Each token is, with probability ``alpha``, replaced by a uniform pick among the ``delta``
codebook entries nearest to its encoder output (``zoo.quant.perturb.encode_perturbed``; mode
``"encoder"``, RobusTok's definition) or nearest to its own code (``perturb_tokens``; mode
``"tokens"``, for when only ids are at hand). Draws come from ``seed`` (plus the global batch
index), so a run is reproducible and independent of the number of processes. The number is
meaningless without (alpha, delta, seed): :func:`pfid_label` always prints them together.
Defaults (alpha=0.5, delta=100) are the zoo's choice; RobusTok trains with delta=100.

The same perturbed reconstructions feed the perturbed counterpart ``p_<metric>`` of every
reconstruction metric (``p_stoi``, ``p_pesq``, ``p_mel_distance`` for audio, ``p_psnr``,
``p_ssim``, ``p_fvd`` for video, ...): the perturbed reconstruction is compared with the
ORIGINAL input, exactly as the clean metric compares the clean reconstruction.
:func:`perturbed_tokens` gives the perturbed ``Tokens``; a token changes with probability
``alpha * (1 - 1/delta)`` (:func:`expected_changed_fraction`).

What a perturbed token is comes from the tokenizer (``Tokenizer.token_perturbation()``): the ids
of its zoo quantizers, or for dMel (a fixed scalar quantiser) each (frame, mel channel) id among
the 16 one-dimensional bin centres (``zoo.models.dmel_perturbation``; ``delta`` is capped at 16,
where the pick is uniform over all levels: use small deltas, e.g. 2-4, for dMel).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["decode_kwargs", "perturbed_reconstruction", "supports_pfid", "pfid_protocol", "pfid_label", "effective_delta",
           "DEFAULT_ALPHA", "DEFAULT_DELTA", "PERTURBED_PREFIX", "perturbed_tokens", "perturbed_name", "base_metric",
           "perturbation_protocol", "perturbed_label", "expected_changed_fraction", "changed_fraction",
           "token_definition"]

DEFAULT_ALPHA = 0.5
DEFAULT_DELTA = 100
#: ``p_<metric>``: the metric of the perturbed reconstruction against the original input
PERTURBED_PREFIX = "p_"


def _codebook_sizes(tokenizer) -> tuple[int, ...]:
    k = tokenizer.codebook_size
    return (int(k),) if isinstance(k, int) else tuple(int(v) for v in k)


def supports_pfid(tokenizer) -> tuple[bool, str]:
    """(True, "") when the tokenizer's tokens can be perturbed (``token_perturbation()``), else (False, why)."""
    why = tokenizer.token_perturbation().unsupported_reason()
    return (True, "") if why is None else (False, why)


def decode_kwargs(tokenizer, seed: int) -> dict[str, Any]:
    """``{"generator": seeded Generator}`` for tokenizers whose decoder samples noise (FlexTok), else {}:
    clean and perturbed decodes then draw the same noise, so alpha=0 reproduces the clean reconstruction."""
    return tokenizer.decode_noise_kwargs(seed)


def effective_delta(tokenizer, delta: int) -> int:
    """``delta`` capped at the smallest codebook (top-delta needs delta <= K)."""
    return max(1, min(int(delta), min(_codebook_sizes(tokenizer))))


def perturbed_reconstruction(tokenizer, images: Tensor, alpha: float, delta: int, seed: int,
                             mode: str = "encoder", **decode_kwargs) -> Tensor:
    """Decode ``images`` ``[B, 3, H, W]`` in [0, 1] from perturbed tokens (same shape, [0, 1])."""
    tokens = perturbed_tokens(tokenizer, images, alpha, delta, seed, mode)
    return tokenizer.decode(tokens, **decode_kwargs).clamp(0, 1)


def perturbed_tokens(tokenizer, x: Tensor, alpha: float, delta: int, seed: int, mode: str = "encoder"):
    """``tokenizer.encode(x)`` with RobusTok's perturbation (any modality; ``x`` as ``encode`` takes it).

    mode "encoder": candidates nearest to the encoder output (the definition); "tokens": nearest to
    the token's own code. alpha=0 or delta=1 returns exactly the clean tokens. Deterministic per seed.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    if mode not in ("encoder", "tokens"):
        raise ValueError(f"mode must be 'encoder' or 'tokens', got {mode!r}")
    return tokenizer.token_perturbation().tokens(x, alpha, delta, seed, mode)


def token_definition(tokenizer) -> str:
    """What one perturbed token is for this tokenizer (goes into the protocol)."""
    return tokenizer.token_perturbation().definition()


def expected_changed_fraction(alpha: float, delta: int) -> float:
    """Probability that a token changes: ``alpha * (1 - 1/delta)`` (candidate 0 is the clean code)."""
    return float(alpha) * (1.0 - 1.0 / int(delta))


def changed_fraction(clean_ids: Tensor, perturbed_ids: Tensor) -> Tensor:
    """Fraction of ids that differ (0-dim float tensor)."""
    if clean_ids.shape != perturbed_ids.shape:
        raise ValueError(f"id shapes differ: {tuple(clean_ids.shape)} vs {tuple(perturbed_ids.shape)}")
    return (clean_ids != perturbed_ids).float().mean()


def perturbed_name(metric: str) -> str:
    """``"stoi"`` -> ``"p_stoi"``."""
    return PERTURBED_PREFIX + metric


def base_metric(name: str) -> str | None:
    """``"p_stoi"`` -> ``"stoi"``; None for a clean metric name."""
    return name[len(PERTURBED_PREFIX):] if name.startswith(PERTURBED_PREFIX) else None


def pfid_protocol(alpha: float, delta: int, seed: int, mode: str = "encoder") -> dict[str, Any]:
    return perturbation_protocol(alpha, delta, seed, mode, unit="image")


def perturbation_protocol(alpha: float, delta: int, seed: int, mode: str = "encoder", unit: str = "item"
                          ) -> dict[str, Any]:
    """The parameters and definition that must accompany every perturbed number."""
    return {"alpha": float(alpha), "delta": int(delta), "seed": int(seed), "beta": 1.0, "mode": mode,
            "perturbation": ("RobusTok latent perturbation: per token, with prob. alpha, a uniform pick among the "
                             "delta codes nearest to the " + ("encoder output" if mode == "encoder" else
                                                               "token's own code") + f"; every {unit} perturbed"),
            "expected_changed_fraction": expected_changed_fraction(alpha, delta),
            "seeding": "seed + global batch index (independent of the number of processes)"}


def perturbed_label(metric: str, alpha: float, delta: int, seed: int) -> str:
    """``p_stoi(alpha=0.5, delta=100, seed=0)``."""
    return f"{perturbed_name(metric)}(alpha={alpha:g}, delta={int(delta)}, seed={int(seed)})"


def pfid_label(alpha: float, delta: int, seed: int) -> str:
    """``pFID(alpha=0.5, delta=100, seed=0)``: the number is always shown with its parameters."""
    return f"pFID(alpha={alpha:g}, delta={int(delta)}, seed={int(seed)})"
