"""``nn.Linear`` with a oneDNN fast path for fp32 CPU inference. x ``[..., in]`` -> ``[..., out]``.

On CPUs PyTorch runs fp32 ``F.linear`` through MKL ``sgemm``; oneDNN's matmul
(``torch.ops.mkldnn._linear_pointwise``) computes the same product (same inputs, fp32
accumulation, results equal up to summation order, ~1e-6 relative) and is about 2x faster on
AVX-512 CPUs, markedly so on AMD, where MKL does not pick its fastest kernels. The fast path is
taken only where it is exact to use and has no autograd or autocast interplay: CPU, fp32 input
and weight, no gradient needed, autocast off, not being traced by ``torch.compile`` or exported to ONNX, and a
product large enough for the call overhead to pay (see :data:`MIN_FLOPS`). Everything else
(training, CUDA, bf16/fp16, autocast) goes through ``F.linear`` unchanged. ``ZOO_FAST_LINEAR=0``
in the environment disables the fast path (for A/B timing).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Linear", "linear", "conv1x1", "fast_linear_enabled", "MIN_FLOPS"]

#: smallest rows * in * out product that goes to oneDNN (below it the call overhead dominates)
MIN_FLOPS = 1 << 18

_AVAILABLE = (torch.backends.mkldnn.is_available() and hasattr(torch.ops, "mkldnn")
              and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def fast_linear_enabled() -> bool:
    """Whether the oneDNN path is available and not disabled by ``ZOO_FAST_LINEAR=0``."""
    return _AVAILABLE and os.environ.get("ZOO_FAST_LINEAR", "1") != "0"


def _use_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    if torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling():
        return False
    if x.dim() < 2 or x.numel() == 0 or x.numel() * weight.shape[0] < MIN_FLOPS:
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():  # oneDNN's op has no ONNX form
        return False
    return fast_linear_enabled()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN when that is safe and worth it (see module doc)."""
    if _use_onednn(x, weight):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Kernel-1, stride-1 ``F.conv1d``: x ``[B, C_in, T]``, weight ``[C_out, C_in, 1]`` -> ``[B, C_out, T]``
    (contiguous). On the fast path it is one oneDNN matmul over ``x`` viewed as ``[B, T, C_in]``
    (PyTorch sends single-image 1x1 convolutions to its slow im2col + sgemm kernel)."""
    w = weight[..., 0]
    # narrow maps over long signals gain nothing (the layout copy costs what the matmul saves)
    if min(w.shape) >= 64 and _use_onednn(x.transpose(1, 2), w):
        return torch.ops.mkldnn._linear_pointwise(x.transpose(1, 2), w, bias, "none", [], "").transpose(1, 2).contiguous()
    return F.conv1d(x, weight, bias)


class Linear(nn.Linear):
    """Drop-in ``nn.Linear`` (same parameters and state-dict keys) using :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
