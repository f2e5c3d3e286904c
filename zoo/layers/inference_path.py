"""When a block may take its inference-only fast path (same maths, other memory layout).

Several blocks (the time-major SEANet encoder, the time-major Vocos stack) compute their forward in
another layout when no gradient is needed. Such a path bypasses the ``forward`` of the sub-modules
it fuses, so it is taken only when nothing could observe the difference: gradients off, not while
exporting or tracing a graph (the fast path specialises on Python-int lengths), and no forward hook
on the block or any sub-module (hooks such as LSUV's must see their layer run).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as _module

__all__ = ["fast_inference_path"]


def _hooked(block: nn.Module) -> bool:
    if _module._global_forward_hooks or _module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in block.modules())


def fast_inference_path(block: nn.Module) -> bool:
    """True when ``block`` may run its inference-only fast path (see the module doc)."""
    if torch.is_grad_enabled() or torch.compiler.is_exporting() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    return not _hooked(block)
