"""LPIPS-style perceptual loss on VGG16 features (Zhang et al. 2018).

Inputs ``[B, 3, H, W]`` in [-1, 1]. Features after relu1_2 .. relu5_3 are unit-normalised
along channels, squared differences are weighted per channel by the LPIPS linear heads, averaged
spatially and summed over layers. Returns ``[B]`` (``reduction="none"``) or a scalar mean.

Weights are never initialised randomly behind the user's back: the VGG16 backbone comes from
``vgg_weights`` (a torchvision ``vgg16`` state dict file), ``$ZOO_VGG16_WEIGHTS`` or torch hub's
cache; the linear heads from ``lpips_weights`` or the copy bundled with torchmetrics. A missing
file raises ``FileNotFoundError`` saying how to provide it (or to disable the loss).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PerceptualLoss", "find_vgg16_weights", "VGG16_URL"]

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
_CHANNELS = (64, 128, 256, 512, 512)
_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))  # torchvision vgg16.features up to relu{1_2..5_3}


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """Resolve the VGG16 backbone file: ``path``, ``$ZOO_VGG16_WEIGHTS``, torch hub's cache."""
    candidates = [path, os.environ.get("ZOO_VGG16_WEIGHTS"),
                  Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_URL).name]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if path:
        raise FileNotFoundError(f"VGG16 weights not found at {path}")
    raise FileNotFoundError(
        "the perceptual loss needs ImageNet VGG16 weights and will not run with random ones. Download "
        f"{VGG16_URL} and pass losses.perceptual.vgg_weights=/path/to/vgg16-397923af.pth (or set "
        "$ZOO_VGG16_WEIGHTS, or put it in torch hub's cache " + str(Path(torch.hub.get_dir()) / "checkpoints")
        + "); or disable the loss with losses.perceptual.weight=0")


def _bundled_lpips_heads() -> Path:
    try:
        import torchmetrics.functional.image as tmi
    except ImportError as e:  # pragma: no cover - torchmetrics is a core dependency
        raise FileNotFoundError("LPIPS linear heads: pass lpips_weights=/path/to/vgg.pth (LPIPS v0.1)") from e
    p = Path(tmi.__file__).parent / "lpips_models" / "vgg.pth"
    if not p.is_file():
        raise FileNotFoundError(f"LPIPS heads not bundled at {p}; pass lpips_weights=/path/to/vgg.pth (LPIPS v0.1)")
    return p


class PerceptualLoss(nn.Module):
    """Frozen VGG16 + LPIPS heads. vgg_weights / lpips_weights: file paths (see module doc)."""

    def __init__(self, vgg_weights: str | os.PathLike | None = None, lpips_weights: str | os.PathLike | None = None):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        from ..checkpoint import load_state_dict_file

        vgg_path = find_vgg16_weights(vgg_weights)
        sd = load_state_dict_file(vgg_path)
        features = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        if not features:
            raise ValueError(f"{vgg_path} holds no 'features.*' tensors: not a torchvision vgg16 state dict")
        net = make_layers(cfgs["D"])[:30]  # vgg16.features without the final max-pool
        from ..checkpoint import load_state_dict_strict

        load_state_dict_strict(net, features, source=str(vgg_path))
        self.slices = nn.ModuleList(net[a:b] for a, b in _SLICES)
        heads = load_state_dict_file(lpips_weights or _bundled_lpips_heads())
        self.heads = nn.ParameterList()
        for i, c in enumerate(_CHANNELS):
            key = f"lin{i}.model.1.weight"
            if key not in heads or tuple(heads[key].shape) != (1, c, 1, 1):
                raise ValueError(f"LPIPS heads file lacks {key} of shape (1, {c}, 1, 1)")
            self.heads.append(nn.Parameter(heads[key].float().clone(), requires_grad=False))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):  # always frozen, always in eval mode
        return super().train(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"PerceptualLoss expects two [B, 3, H, W] tensors, got {tuple(x.shape)}, {tuple(y.shape)}")
        h = torch.cat([x, y]).float()
        h = (h - self.shift) / self.scale
        total = 0.0
        for block, w in zip(self.slices, self.heads):
            h = block(h)
            fx, fy = h.chunk(2)
            fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + F.conv2d((fx - fy).pow(2), w).mean(dim=(1, 2, 3))
        if reduction == "none":
            return total
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        return total.mean()
