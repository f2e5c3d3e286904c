"""Image fidelity: PSNR, SSIM, MS-SSIM (torchmetrics functional) and LPIPS, per image and averaged.

Protocol (recorded in reports via ``IMAGE_PROTOCOL`` / ``LPIPS.protocol``): images float
``[B, 3, H, W]`` in [0, 1], both sides rounded to 8-bit levels first (``quantize=True``, as
when reconstructions are saved); PSNR per image (MSE over C, H, W, data range 1) then
averaged; SSIM Gaussian window 11, sigma 1.5, K=(0.01, 0.03) over the valid region (own
separable implementation, equal to skimage's), averaged over channels; MS-SSIM 5 scales with
the standard weights (needs H, W > 160); LPIPS v0.1 linear heads
(shipped with torchmetrics) on an ImageNet backbone (torchvision weights, from the standard
URL, ``ZOO_LPIPS_WEIGHTS`` or a path).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from zoo.checkpoint import load_state_dict_file, load_state_dict_strict
from zoo.fidelity import check_image_pair as _check_pair
from zoo.fidelity import psnr

from .weights import resolve_weights

__all__ = ["ImageFidelity", "LPIPS", "psnr", "ssim", "ms_ssim", "build_lpips_net", "IMAGE_PROTOCOL",
           "MS_SSIM_MIN_SIZE", "LPIPS_BACKBONES"]

MS_SSIM_MIN_SIZE = 161  # 11-px window at the 5th scale (size / 16 > 10)

IMAGE_PROTOCOL = {
    "input": "float [0, 1], both sides rounded to 8-bit levels",
    "psnr": "per image, data_range=1, MSE over C,H,W, then mean over images",
    "ssim": "gaussian window 11, sigma 1.5, K=(0.01, 0.03), data_range=1, valid region (no padding, as "
            "Wang et al. and skimage), mean over pixels and channels",
    "ms_ssim": "5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), window 11, sigma 1.5, 2x2 "
               "average pooling between scales, per channel then mean",
}

#: torchvision ImageNet weights of the LPIPS backbones (file name, URL)
LPIPS_BACKBONES = {
    "alex": ("alexnet", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth",
                "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}


def _quantize(x: Tensor) -> Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gauss_window(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float64) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def _ssim_cs(x: Tensor, y: Tensor, k1: float = 0.01, k2: float = 0.03) -> tuple[Tensor, Tensor]:
    """Mean SSIM and contrast-structure terms per image and channel ``[B, C]`` over the valid region."""
    c = x.shape[1]
    g = _gauss_window(device=x.device, dtype=x.dtype)
    wh, ww = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t):  # separable Gaussian, 'valid' (no padding), as Wang et al.'s reference code
        return F.conv2d(F.conv2d(t, wh, groups=c), ww, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = k1 ** 2, k2 ** 2
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean((-2, -1)), cs.mean((-2, -1))


def ssim(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM ``[B]``: Gaussian window 11 / sigma 1.5 over the valid region, mean over channels."""
    preds, target = _check_pair(preds, target)
    if min(preds.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs H, W >= 11, got {tuple(preds.shape[-2:])}")
    return _ssim_cs(preds.double(), target.double())[0].mean(1).float()


def ms_ssim(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image MS-SSIM ``[B]`` (5 scales, 2x2 average-pool between scales; H, W >= 161)."""
    preds, target = _check_pair(preds, target)
    if min(preds.shape[-2:]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"MS-SSIM (5 scales, window 11) needs H, W >= {MS_SSIM_MIN_SIZE}, "
                         f"got {tuple(preds.shape[-2:])}")
    x, y = preds.double(), target.double()
    w = torch.tensor(_MS_WEIGHTS, dtype=x.dtype, device=x.device)
    terms = []
    for level in range(len(_MS_WEIGHTS)):
        s, cs = _ssim_cs(x, y)
        terms.append((s if level == len(_MS_WEIGHTS) - 1 else cs).clamp_min(0))
        if level < len(_MS_WEIGHTS) - 1:
            pad = [x.shape[-1] % 2, 0, x.shape[-2] % 2, 0]
            x, y = F.avg_pool2d(F.pad(x, pad, mode="replicate"), 2), F.avg_pool2d(F.pad(y, pad, mode="replicate"), 2)
    stacked = torch.stack(terms, 0)                                  # [5, B, C]
    return (stacked ** w.view(-1, 1, 1)).prod(0).mean(1).float()


def _cat(v: Tensor | list[Tensor]) -> Tensor:
    if isinstance(v, list) and not v:
        return torch.zeros(0, dtype=torch.float64)
    return dim_zero_cat(v)


_FUNCS = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim}


class ImageFidelity(Metric):
    """PSNR / SSIM / MS-SSIM per image (gathered across processes) and their means.

    ``update(preds, target)`` with float ``[B, 3, H, W]`` in [0, 1]; ``compute() -> {name: mean}``;
    ``per_image() -> {name: [N]}``.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, metrics: Sequence[str] = ("psnr", "ssim"), quantize: bool = True, **kwargs):
        super().__init__(**kwargs)
        unknown = set(metrics) - set(_FUNCS)
        if unknown or not metrics:
            raise ValueError(f"unknown image metrics {sorted(unknown)}; choose from {sorted(_FUNCS)}")
        self.names = tuple(metrics)
        self.quantize = quantize
        for name in self.names:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:
        preds, target = _check_pair(preds, target)
        if self.quantize:
            preds, target = _quantize(preds), _quantize(target)
        for name in self.names:
            getattr(self, name).append(_FUNCS[name](preds, target).detach().double())

    def per_image(self) -> dict[str, Tensor]:
        out = {}
        with self.sync_context(should_unsync=True):
            for name in self.names:
                out[name] = _cat(getattr(self, name)).float()
        return out

    def compute(self) -> dict[str, Tensor]:
        out = {}
        for name in self.names:
            v = _cat(getattr(self, name))
            if v.numel() == 0:
                raise RuntimeError("ImageFidelity.compute() called before any update")
            out[name] = v.mean().float()
        return out


def lpips_backbone_path(net: str = "alex", path: str | os.PathLike | None = None, download: bool = True):
    """Local path of the torchvision ImageNet weights of the LPIPS backbone ``net``."""
    _, filename, url = LPIPS_BACKBONES[net]
    return resolve_weights(f"LPIPS {net} backbone (torchvision ImageNet)", filename, path=path,
                           env="ZOO_LPIPS_WEIGHTS", urls=(url,), hash_prefix=filename.rsplit("-", 1)[1][:8],
                           cli_flag="--lpips-weights", download=download)


def build_lpips_net(net: str = "alex", backbone_weights: str | os.PathLike | bool | None = None) -> torch.nn.Module:
    """torchmetrics' LPIPS module (v0.1 linear heads) with the backbone loaded strictly.

    backbone_weights: torchvision state-dict file of the backbone (``features.*`` keys), None
    to search/download the standard file, ``False`` for a random backbone (tests only).
    """
    import torchvision
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    if net not in LPIPS_BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
    lp = _NoTrainLpips(pretrained=True, net=net, pnet_rand=True)
    if backbone_weights is not False:
        path = lpips_backbone_path(net, None if backbone_weights is True else backbone_weights)
        tv = getattr(torchvision.models, LPIPS_BACKBONES[net][0])(weights=None)
        load_state_dict_strict(tv, load_state_dict_file(path), source=str(path))
        tv_sd = tv.state_dict()
        mapped = {k: tv_sd["features." + k.split(".", 1)[1]] for k in lp.net.state_dict()}  # sliceN.i.* -> features.i.*
        load_state_dict_strict(lp.net, mapped, source=str(path))
        lp.backbone_file = str(path)
    lp.requires_grad_(False)
    return lp.eval()


class LPIPS(Metric):
    """LPIPS distance per image (gathered) and mean; lower is better.

    ``update(preds, target)`` float ``[B, 3, H, W]`` in [0, 1]. net: "alex" (default), "vgg"
    or "squeeze"; backbone_weights: see :func:`build_lpips_net`; model: a prebuilt module.
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, net: str = "alex", backbone_weights=None, model: torch.nn.Module | None = None,
                 quantize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.net_name = net
        self.model = model if model is not None else build_lpips_net(net, backbone_weights)
        self.quantize = quantize
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    @property
    def protocol(self) -> dict:
        return {"lpips": f"LPIPS v0.1, {self.net_name} backbone (torchvision ImageNet weights), inputs scaled "
                         "to [-1, 1], spatial mean, no resize" + (", 8-bit inputs" if self.quantize else "")}

    def update(self, preds: Tensor, target: Tensor) -> None:
        preds, target = _check_pair(preds, target)
        if self.quantize:
            preds, target = _quantize(preds), _quantize(target)
        with torch.no_grad():
            d = self.model(preds.clamp(0, 1), target.clamp(0, 1), normalize=True)
        self.scores.append(d.reshape(-1).double())

    def per_image(self) -> Tensor:
        with self.sync_context(should_unsync=True):
            return _cat(self.scores).float()

    def compute(self) -> Tensor:
        v = _cat(self.scores)
        if v.numel() == 0:
            raise RuntimeError("LPIPS.compute() called before any update")
        return v.mean().float()
