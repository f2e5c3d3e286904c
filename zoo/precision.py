"""Per-stage compute precision: which floating-point type ``encode`` / ``decode`` run in.

A precision is ``torch.float32`` / ``torch.bfloat16`` / ``torch.float16`` or one of the strings
``"fp32"``, ``"bf16"``, ``"fp16"`` (also ``"float32"``, ``"bfloat16"``, ``"float16"``).
Reduced precision is applied with ``torch.autocast`` on the tokenizer's device type, so the
weights stay float32 and each op runs in the dtype autocast chooses for it (matmuls and
convolutions in bf16 / fp16, reductions and normalisations in float32). ``"fp32"`` disables
autocast, so an enclosing autocast region does not leak in. Whatever the stage ran in, outputs
come back as float32 and ids as int64.

Nearest-code searches stay float32 under autocast (``zoo.quant.vq.squared_distances``): in bf16
the expanded distance ``|z|^2 + |e|^2 - 2 z.e`` loses most of its significant bits and would pick
wrong codes even for latents that bf16 leaves unchanged.

fp16 on CPU is allowed: PyTorch's CPU autocast supports it and CPUs with AVX-512-FP16 / AMX-FP16
run it natively; elsewhere it is emulated and slower than fp32 (``scripts/benchmark.py
--precision`` measures it), and its narrow range (max 65504) can overflow in large activations,
which the benchmark's agreement columns would show.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["PRECISIONS", "resolve_precision", "precision_name", "precision_context", "to_float32"]

#: accepted names -> dtype
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}
_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def resolve_precision(dtype: Any) -> torch.dtype | None:
    """``None`` (keep the default) or a precision (dtype or name) -> ``torch.dtype`` or None.

    Raises ``TypeError`` / ``ValueError`` naming the accepted values for anything else.
    """
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if dtype in _NAMES:
            return dtype
        raise ValueError(f"precision must be torch.float32, torch.bfloat16 or torch.float16, got {dtype}")
    if isinstance(dtype, str):
        key = dtype.strip().lower()
        if key in PRECISIONS:
            return PRECISIONS[key]
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)} or a torch dtype, got {dtype!r}")
    raise TypeError(f"precision must be a torch.dtype or a string like 'bf16', got {type(dtype).__name__}")


def precision_name(dtype: torch.dtype | None) -> str:
    """``torch.bfloat16`` -> ``"bf16"`` (None -> ``"default"``)."""
    return "default" if dtype is None else _NAMES[dtype]


def precision_context(device: torch.device | str, dtype: torch.dtype | None):
    """Context manager running a stage in ``dtype`` on ``device``'s type: autocast for bf16 / fp16,
    autocast disabled for fp32, nothing at all for None (an enclosing autocast then applies)."""
    if dtype is None:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    if dtype == torch.float32:
        return torch.autocast(device_type=device_type, enabled=False)
    return torch.autocast(device_type=device_type, dtype=dtype)


def to_float32(value: Any) -> Any:
    """Floating tensors (also inside dicts, lists, tuples) -> float32; everything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, dict):
        return {k: to_float32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(v) for v in value)
    return value
