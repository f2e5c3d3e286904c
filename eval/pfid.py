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

dMel (a fixed scalar quantiser: every (frame, mel channel) id is the nearest of 16 bin centres
of the log-mel value) is supported with RobusTok's definition applied per id: each channel is a
code group whose codebook is the 16 one-dimensional bin centres (as the zoo treats the groups of
a factorized quantizer), the "encoder output" is the continuous log-mel value, and the candidates
are the ``delta`` centres nearest to it (the clean bin first; ``delta`` is capped at 16, where the
pick is uniform over all levels: use small deltas, e.g. 2-4, for dMel).
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
    """(True, "") when the tokenizer holds zoo quantizers the perturbation understands, else (False, why)."""
    from zoo.quant.perturb import _supported, leaf_quantizers

    if _is_scalar_bins(tokenizer):
        return True, ""
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

    tokens = perturbed_tokens(tokenizer, images, alpha, delta, seed, mode)
    return tokenizer.decode(tokens, **decode_kwargs).clamp(0, 1)


def _is_scalar_bins(tokenizer) -> bool:
    from zoo.models.dmel import DMel

    return isinstance(tokenizer, DMel)


def perturbed_tokens(tokenizer, x: Tensor, alpha: float, delta: int, seed: int, mode: str = "encoder"):
    """``tokenizer.encode(x)`` with RobusTok's perturbation (any modality; ``x`` as ``encode`` takes it).

    mode "encoder": candidates nearest to the encoder output (the definition); "tokens": nearest to
    the token's own code. alpha=0 or delta=1 returns exactly the clean tokens. Deterministic per seed.
    """
    from zoo.quant.perturb import encode_perturbed, perturb_tokens

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    if mode not in ("encoder", "tokens"):
        raise ValueError(f"mode must be 'encoder' or 'tokens', got {mode!r}")
    if _is_scalar_bins(tokenizer):
        return _perturb_scalar_bins(tokenizer, x, alpha, delta, seed, mode)
    if mode == "encoder":
        return encode_perturbed(tokenizer, x, alpha=alpha, delta=delta, seed=seed)
    return perturb_tokens(tokenizer, tokenizer.encode(x), alpha=alpha, delta=delta, seed=seed)


@torch.no_grad()
def _perturb_scalar_bins(tokenizer, x: Tensor, alpha: float, delta: int, seed: int, mode: str):
    """dMel: each (frame, channel) id is re-drawn among the ``delta`` bin centres nearest to the
    log-mel value (mode "encoder") or to its own centre ("tokens"); the clean bin is candidate 0."""
    from zoo.api import Tokens
    from zoo.quant.perturb import sample_candidates

    tokens = tokenizer.encode(x)
    centers = tokenizer.centers.double()
    k = centers.numel()
    if delta > k:
        raise ValueError(f"delta must be in [1, {k}] (dMel bins per channel), got {delta}")
    if alpha == 0 or delta == 1:
        return tokens
    ids = tokens.ids
    anchor = tokenizer.log_mel(x).double() if mode == "encoder" else centers[ids]
    if anchor.shape != ids.shape:
        raise RuntimeError(f"dMel log-mel {tuple(anchor.shape)} does not match its ids {tuple(ids.shape)}")
    dist = (anchor[..., None] - centers).abs().reshape(-1, k)
    dist.scatter_(1, ids.reshape(-1, 1), -1.0)  # the clean bin (nearest, lower on ties) always comes first
    cands = dist.topk(delta, dim=1, largest=False, sorted=True).indices
    gen = torch.Generator(device=ids.device).manual_seed(int(seed))
    new = sample_candidates(cands, alpha, gen).view_as(ids).to(ids.dtype)
    return Tokens(ids=new, lengths=tokens.lengths, num_samples=tokens.num_samples, input_shape=tokens.input_shape,
                  extras=dict(tokens.extras))


def token_definition(tokenizer) -> str:
    """What one perturbed token is for this tokenizer (goes into the protocol)."""
    if _is_scalar_bins(tokenizer):
        return ("dMel: each (frame, mel channel) id; its codebook is the channel's bin centres (1-D), its "
                "encoder output the log-mel value")
    from zoo.quant.perturb import leaf_quantizers

    kinds = sorted({type(q).__name__ for q in leaf_quantizers(tokenizer)})
    return f"each id of the tokenizer's quantizer(s) {kinds} (per code group)"


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
