"""rFID: Fréchet distance between InceptionV3 pool features of real and reconstructed images.

Feature network: InceptionV3 with the TensorFlow 2015-12-05 weights as ported by
torch-fidelity / pytorch-fid (file ``*-inception-2015-12-05-6726825d.pth``); the forward pass
is torch-fidelity's own (uint8 input, TF1-compatible bilinear resize to 299 without
antialias, as ADM's evaluator and torch-fidelity do). Weights: ``inception_weights=`` path,
env ``ZOO_INCEPTION_WEIGHTS``, torch hub cache, or the standard download URLs.

``FID`` is a ``torchmetrics.Metric``: feature sums are summed over processes, reference
statistics can be saved to / loaded from ``.npz`` (``mu``, ``sigma``, ``num_samples``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from zoo.checkpoint import load_state_dict_file, load_state_dict_strict

from .weights import resolve_weights

__all__ = ["InceptionFeatures", "FID", "frechet_distance", "to_uint8", "inception_weights_path",
           "load_reference", "save_reference", "FID_PROTOCOL", "INCEPTION_ENV", "INCEPTION_URLS"]

INCEPTION_ENV = "ZOO_INCEPTION_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URLS = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
)

FID_PROTOCOL: dict[str, Any] = {
    "feature_network": "InceptionV3, TF 2015-12-05 weights (torch-fidelity port, *-inception-2015-12-05-6726825d.pth)",
    "features": "pool3, 2048-d",
    "quantisation": "real and reconstructed images rounded to uint8 (round(x*255)) before the network",
    "resize_to_299": "bilinear, TF1-compatible (torch-fidelity), antialias=False (as ADM / torch-fidelity)",
    "statistics": "float64 mean and unbiased covariance; sqrt via eigendecomposition",
}


def inception_weights_path(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Local path of the 2015-12-05 Inception weights (see module docstring for the search order)."""
    return resolve_weights("InceptionV3 (FID)", INCEPTION_FILE, path=path, env=INCEPTION_ENV, urls=INCEPTION_URLS,
                           cli_flag="--inception-weights", download=download,
                           aliases=("weights-inception-2015-12-05-6726825d.pth",))


def _torch_fidelity():
    try:
        from torch_fidelity import feature_extractor_inceptionv3 as tfi
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rFID needs torch-fidelity: pip install torch-fidelity (or tokenizer-zoo[eval])") from e
    return tfi


def _inception_class():
    tfi = _torch_fidelity()

    class InceptionFeatures(tfi.FeatureExtractorInceptionV3):
        """torch-fidelity's InceptionV3, built without its loader (which unpickles and downloads).

        weights: a state-dict file (``.pth`` via ``torch.load(weights_only=True)`` or
        ``.safetensors``), or None to search/download the standard file; ``False`` leaves the
        network randomly initialised (tests only). Input uint8 ``[B, 3, H, W]``; output
        ``[B, D]`` features of the layer ``feature`` ("64", "192", "768", "2048", "logits").
        """

        def __init__(self, weights: str | os.PathLike | bool | None = None, feature: str = "2048"):
            tfi.FeatureExtractorBase.__init__(self, "inception-v3-compat", [str(feature)])
            self.feature_extractor_internal_dtype = torch.float32
            conv, a, b, c, d, e1, e2 = (tfi.BasicConv2d, tfi.InceptionA, tfi.InceptionB, tfi.InceptionC,
                                        tfi.InceptionD, tfi.InceptionE_1, tfi.InceptionE_2)
            self.Conv2d_1a_3x3 = conv(3, 32, kernel_size=3, stride=2)
            self.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3)
            self.Conv2d_2b_3x3 = conv(32, 64, kernel_size=3, padding=1)
            self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
            self.Conv2d_3b_1x1 = conv(64, 80, kernel_size=1)
            self.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3)
            self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = a(192, pool_features=32), a(256, 64), a(288, 64)
            self.Mixed_6a = b(288)
            self.Mixed_6b, self.Mixed_6c = c(768, channels_7x7=128), c(768, channels_7x7=160)
            self.Mixed_6d, self.Mixed_6e = c(768, channels_7x7=160), c(768, channels_7x7=192)
            self.Mixed_7a, self.Mixed_7b, self.Mixed_7c = d(768), e1(1280), e2(2048)
            self.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
            self.fc = nn.Linear(2048, 1008)
            self.num_features = {"64": 64, "192": 192, "768": 768, "2048": 2048, "logits_unbiased": 1008,
                                 "logits": 1008}[str(feature)]
            self.weights_file = None
            if weights is not False:
                path = inception_weights_path(None if weights is True else weights)
                load_state_dict_strict(self, load_state_dict_file(path), source=str(path))
                self.weights_file = str(path)
            self.requires_grad_(False)
            self.eval()

        def train(self, mode: bool = True):
            return super().train(False)

        def forward(self, x: Tensor) -> Tensor:
            if x.dtype != torch.uint8:
                raise TypeError(f"Inception features take uint8 images [B, 3, H, W], got {x.dtype}")
            return super().forward(x)[0].reshape(x.shape[0], -1)

    return InceptionFeatures


def InceptionFeatures(weights: str | os.PathLike | bool | None = None, feature: str = "2048") -> nn.Module:
    """Build the Inception feature network (class created lazily: torch-fidelity is optional)."""
    return _inception_class()(weights=weights, feature=feature)


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [0, 1] -> uint8 by rounding (uint8 passes through). ``[B, 3, H, W]``."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TypeError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
    return images.detach().clamp(0, 1).mul(255).round().to(torch.uint8)


def _sqrtm_psd(m: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """``|mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)`` in float64.

    tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), a symmetric PSD matrix, so only symmetric
    eigendecompositions are needed (stable for singular covariances).
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shape mismatch: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
                         f"sigma {tuple(sigma1.shape)}/{tuple(sigma2.shape)}")
    s1 = _sqrtm_psd(0.5 * (sigma1 + sigma1.T))
    inner = s1 @ sigma2 @ s1
    tr_covmean = torch.linalg.eigvalsh(0.5 * (inner + inner.T)).clamp_min(0).sqrt().sum()
    return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_covmean


def _moments(total: Tensor, outer: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    mu = total / n
    sigma = (outer - n * torch.outer(mu, mu)) / (n - 1)
    return mu, sigma


def save_reference(path: str | os.PathLike, mu: Tensor, sigma: Tensor, num_samples: int,
                   protocol: dict | None = None) -> Path:
    """Write reference statistics to ``.npz`` (``mu``, ``sigma``, ``num_samples``, ``protocol`` JSON)."""
    from zoo.checkpoint import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu.double().cpu().numpy(), sigma=sigma.double().cpu().numpy(),
                     num_samples=np.int64(num_samples), protocol=np.array(json.dumps(protocol or {})))
    return path


def load_reference(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``.npz`` reference statistics (also ADM's / pytorch-fid's files with ``mu`` and ``sigma``)."""
    with np.load(Path(path), allow_pickle=False) as z:
        if "mu" not in z or "sigma" not in z:
            raise ValueError(f"{path} holds no 'mu'/'sigma' arrays (keys: {list(z.keys())})")
        out = {"mu": torch.from_numpy(z["mu"]).double(), "sigma": torch.from_numpy(z["sigma"]).double(),
               "num_samples": int(z["num_samples"]) if "num_samples" in z else None,
               "protocol": json.loads(str(z["protocol"])) if "protocol" in z else {}}
    d = out["mu"].numel()
    if out["sigma"].shape != (d, d):
        raise ValueError(f"{path}: sigma {tuple(out['sigma'].shape)} does not match mu ({d},)")
    return out


class FID(Metric):
    """Streaming FID: ``update(images, real=bool)``, ``compute() -> scalar``.

    images: float ``[B, 3, H, W]`` in [0, 1] (rounded to uint8) or uint8.
    feature_extractor: a module uint8 images -> ``[B, D]`` (default: :func:`InceptionFeatures`
    with ``inception_weights``). reference: ``.npz`` path or ``{"mu", "sigma"}`` replacing the
    real-image statistics (then ``update(real=True)`` is not needed).
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, feature_extractor: nn.Module | None = None, inception_weights: str | os.PathLike | None = None,
                 reference: str | os.PathLike | dict | None = None, num_features: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.net = feature_extractor if feature_extractor is not None else InceptionFeatures(inception_weights)
        d = num_features or getattr(self.net, "num_features", None)
        if d is None:
            raise ValueError("give num_features for a feature extractor without a num_features attribute")
        self.num_features = int(d)
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.reference: dict | None = None
        if reference is not None:
            self.set_reference(reference)

    def set_reference(self, reference: str | os.PathLike | dict) -> None:
        ref = load_reference(reference) if not isinstance(reference, dict) else dict(reference)
        if ref["mu"].numel() != self.num_features:
            raise ValueError(f"reference has {ref['mu'].numel()} features, the network gives {self.num_features}")
        self.reference = ref

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """``[B, D]`` float64 features of a batch (float [0, 1] or uint8 images)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"FID takes images [B, 3, H, W], got {tuple(images.shape)}")
        return self.net(to_uint8(images)).double()

    def update(self, images: Tensor, real: bool) -> None:
        self.update_features(self.features(images), real)

    def update_features(self, feats: Tensor, real: bool) -> None:
        """Accumulate precomputed ``[B, D]`` features."""
        feats = feats.double().reshape(feats.shape[0], -1)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + feats.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + feats.T @ feats)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + feats.shape[0])

    def statistics(self, real: bool) -> tuple[Tensor, Tensor, int]:
        """``(mu [D], sigma [D, D], n)`` of the accumulated real or fake features (synced)."""
        side = "real" if real else "fake"
        n = getattr(self, f"{side}_n")
        if n < 2:
            raise RuntimeError(f"FID needs at least 2 {side} samples, got {int(n)}")
        mu, sigma = _moments(getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer"), n)
        return mu, sigma, int(n)

    def compute(self) -> Tensor:
        mu_f, sigma_f, _ = self.statistics(real=False)
        if self.reference is not None:
            mu_r, sigma_r = self.reference["mu"].to(mu_f), self.reference["sigma"].to(mu_f)
        else:
            mu_r, sigma_r, _ = self.statistics(real=True)
        return frechet_distance(mu_r, sigma_r, mu_f, sigma_f).float()

    def save_reference(self, path: str | os.PathLike, protocol: dict | None = None) -> Path:
        """Cache the accumulated real statistics to ``.npz`` (call after the real updates)."""
        with self.sync_context():
            mu, sigma, n = self.statistics(real=True)
        return save_reference(path, mu, sigma, n, protocol={**FID_PROTOCOL, **(protocol or {})})
