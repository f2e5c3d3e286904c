"""Layer-sequential unit-variance initialisation (LSUV, Mishkin & Matas, arXiv 1511.06422).

A data-dependent initialisation: layer by layer, in forward order, rescale the weights so that the
layer's output on a real batch has unit variance per channel (and, with a bias, zero mean). Useful
when a default-initialised network's output hardly depends on its input (e.g. a small SEANet
encoder whose output is almost constant over time, which makes a VQ codebook collapse at once).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["lsuv_init_"]


@torch.no_grad()
def lsuv_init_(layers: Sequence[nn.Module], forward: Callable[[], object], eps: float = 1e-8) -> list[float]:
    """Standardise the outputs of ``layers`` (in the order given: their forward order) in place.

    layers: modules with a ``weight`` (or a weight-norm gain ``weight_g``) whose first dim is the
        output channel, and an optional ``bias``; their output is ``[B, C, *positions]``.
    forward: runs the network on the calibration batch (called once per layer).
    Per layer: output mean ``m`` and std ``s`` per channel over batch and positions; the weight (or
    ``weight_g``) is divided by ``s``, the bias becomes ``(bias - m) / s``. Returns every layer's
    std before rescaling (averaged over channels).
    """
    if not layers:
        raise ValueError("lsuv_init_ needs at least one layer")
    found = []
    for layer in layers:
        scale = getattr(layer, "weight_g", None)
        scale = getattr(layer, "weight", None) if scale is None else scale
        if not isinstance(scale, torch.Tensor):
            raise TypeError(f"{type(layer).__name__} has no weight or weight_g to rescale")
        seen: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda mod, args, out: seen.append(out))
        try:
            forward()
        finally:
            handle.remove()
        if not seen:
            raise RuntimeError(f"forward() never ran the layer {type(layer).__name__}")
        y = seen[0]
        dims = (0, *range(2, y.dim()))
        mean, std = y.mean(dim=dims), y.std(dim=dims).clamp_min(eps)
        scale.div_(std.view(-1, *([1] * (scale.dim() - 1))))
        if getattr(layer, "bias", None) is not None:
            layer.bias.sub_(mean).div_(std)
        found.append(float(std.mean()))
    return found
