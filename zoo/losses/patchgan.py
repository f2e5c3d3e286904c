"""PatchGAN discriminator (pix2pix / VQGAN "NLayerDiscriminator").

Input ``[B, C, H, W]`` in [-1, 1]; output patch logits ``[B, 1, H', W']`` (H' ~ H / 2^n + 2),
or ``(logits, [feature maps after each activation])`` with ``return_features=True`` (feature matching).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchGAN"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"PatchGAN norm must be batch, instance, group or none, got {kind!r}")


class PatchGAN(nn.Module):
    """in_channels: image channels; ndf: width of the first layer; n_layers: stride-2 blocks;
    norm: ``batch`` (as in VQGAN), ``group``, ``instance`` or ``none`` (``group`` / ``none`` keep
    multi-process training identical to single-process); return_features: also return the
    intermediate activations."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 return_features: bool = False):
        super().__init__()
        self.return_features = bool(return_features)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = norm in ("none", "instance")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), _norm(norm, ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"PatchGAN expects [B, C, H, W], got shape {tuple(x.shape)}")
        if not self.return_features:
            return self.main(x)
        feats = []
        for layer in self.main:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return x, feats
