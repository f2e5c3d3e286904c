"""Learning-rate schedules as multiplicative factors of the base lr (``LambdaLR``).

``constant``, ``linear`` (decay to ``min_lr_ratio``) and ``cosine`` (half cosine to
``min_lr_ratio``), each after a linear warm-up of ``warmup_steps`` from ~0 to 1.
"""
from __future__ import annotations

import math
from functools import partial

import torch

__all__ = ["lr_factor", "build_scheduler", "SCHEDULES"]

SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(step: int, *, name: str, total_steps: int, warmup_steps: int = 0,
              min_lr_ratio: float = 0.0) -> float:
    """Factor in [min_lr_ratio, 1] applied to the base lr at optimizer step ``step`` (0-based)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if name == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if name == "linear":
        decay = 1.0 - progress
    else:
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict, total_steps: int,
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """``cfg``: ``{name, warmup_steps, min_lr_ratio}``; one scheduler step per optimizer step."""
    unknown = set(cfg) - {"name", "warmup_steps", "min_lr_ratio"}
    if unknown:
        raise ValueError(f"unknown schedule options {sorted(unknown)}")
    if not 0.0 <= float(cfg.get("min_lr_ratio", 0.0)) <= 1.0:
        raise ValueError(f"schedule.min_lr_ratio must lie in [0, 1], got {cfg.get('min_lr_ratio')}")
    fn = partial(lr_factor, name=cfg.get("name", "cosine"), total_steps=int(total_steps),
                 warmup_steps=int(cfg.get("warmup_steps", 0)),
                 min_lr_ratio=float(cfg.get("min_lr_ratio", 0.0)))
    fn(0)  # validates the name now rather than at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
