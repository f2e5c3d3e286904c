"""The clean metrics of ``scripts/evaluate.py`` behind the :class:`~eval.metric.EvalMetric` protocol.

Each class adapts one streaming metric (:mod:`eval.image`, :mod:`eval.fid`, :mod:`eval.fvd`,
:mod:`eval.usage`, :mod:`eval.audio`) and builds itself from ``(name, MetricContext)``
(``build``); :mod:`eval.metric_registry` says which names exist for which modality. Image metrics
take video clips frame by frame (``Modality.network_view``: every frame of every clip is one sample).
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor

from .metric import EvalMetric, MetricContext

__all__ = ["FrameFidelity", "FrameLPIPS", "FrechetInception", "FrechetVideo", "CodeUsage", "AudioScore"]

#: positions x groups x codes tracked for per-position entropy
_MAX_POSITION_TABLE = 2 ** 25


def _frames_protocol(ctx: MetricContext) -> dict[str, str]:
    return {"frames": "per frame, mean over all frames of all clips"} if ctx.modality.frames_in_item else {}


class FrameFidelity(EvalMetric):
    """PSNR, SSIM or MS-SSIM per image (per frame for video), 8-bit rounded (``eval.image``)."""

    has_per_item = True

    def __init__(self, name: str, ctx: MetricContext):
        from .image import IMAGE_PROTOCOL, MS_SSIM_MIN_SIZE, ImageFidelity

        if name == "ms_ssim" and min(ctx.shape[-2:]) < MS_SSIM_MIN_SIZE:
            raise ValueError(f"MS-SSIM needs inputs of at least {MS_SSIM_MIN_SIZE} px, got {ctx.shape[-2:]}")
        super().__init__({"definition": IMAGE_PROTOCOL[name], "input": IMAGE_PROTOCOL["input"],
                          **_frames_protocol(ctx)})
        self.name, self.view = name, ctx.modality.network_view
        self.metric = ImageFidelity((name,)).to(ctx.device)

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.metric.update(self.view(recon), self.view(x))

    def compute(self):
        return self.metric.compute()[self.name]

    def per_item(self):
        return self.metric.per_image()[self.name].tolist()


class FrameLPIPS(EvalMetric):
    """LPIPS per image (per frame for video) on a torchvision backbone (``eval.image.LPIPS``)."""

    has_per_item = True

    def __init__(self, name: str, ctx: MetricContext):
        from .image import LPIPS

        metric = LPIPS(ctx.config.lpips_net, backbone_weights=ctx.config.lpips_weights).to(ctx.device)
        super().__init__({**metric.protocol, **_frames_protocol(ctx)})
        self.view, self.metric = ctx.modality.network_view, metric

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.metric.update(self.view(recon), self.view(x))

    def compute(self):
        return self.metric.compute()

    def per_item(self):
        return self.metric.per_image().tolist()


class FrechetInception(EvalMetric):
    """rFID: Frechet distance of Inception features, the evaluated images (or ``--fid-reference``)
    against their reconstructions (``eval.fid``)."""

    frechet = True

    def __init__(self, name: str, ctx: MetricContext):
        from .fid import FID, FID_PROTOCOL

        ref = ctx.config.fid_reference
        net = ctx.inception()
        super().__init__({**FID_PROTOCOL, "weights_file": net.weights_file,
                          "reference": ref or "the evaluated (original) images"})
        self.ctx, self.fid = ctx, FID(net, reference=ref).to(ctx.device)

    def update(self, x, recon, tokens, lengths=None, batch=0):
        if self.fid.reference is None:
            self.fid.update_features(self.ctx.real_features("inception", self.fid.features, x), real=True)
        self.fid.update(recon, real=False)

    def compute(self):
        return self.fid.compute()

    def save_reference(self, path: str | None, protocol: dict[str, Any]) -> None:
        """Write the real statistics to ``path`` (.npz); every process calls it (collective), the
        ones that do not write with ``path=None``."""
        if path is not None:
            self.fid.save_reference(path, protocol=protocol)
        else:
            with self.fid.sync_context():
                pass


class FrechetVideo(EvalMetric):
    """FVD: Frechet distance of I3D features of the clips and of their reconstructions (``eval.fvd``)."""

    frechet = True

    def __init__(self, name: str, ctx: MetricContext):
        from .fvd import FVD

        fvd = FVD(ctx.i3d()).to(ctx.device)
        super().__init__(fvd.protocol)
        self.ctx, self.fvd = ctx, fvd

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.fvd.update_features(self.ctx.real_features("i3d", self.fvd.features, x), real=True)
        self.fvd.update(recon, real=False)

    def compute(self):
        return self.fvd.compute()


class CodeUsage(EvalMetric):
    """Codebook usage, perplexity and (fixed-shape inputs) per-position entropy (``eval.usage``)."""

    def __init__(self, name: str, ctx: MetricContext):
        from .usage import CodebookUsage

        k = ctx.tok.codebook_size
        sizes = (k,) if isinstance(k, int) else tuple(k)
        if max(sizes) <= 1:
            raise ValueError("continuous tokenizer (codebook size 1): codebook usage is undefined")
        n_pos = None
        if ctx.shape:  # a fixed input shape: a fixed number of token positions
            ts = ctx.tok.token_shape(tuple(ctx.shape))
            if ts[0] * len(sizes) * max(sizes) <= _MAX_POSITION_TABLE:
                n_pos = int(ts[0])
        super().__init__({"usage": "fraction of codes used at least once", "perplexity":
                          "exp(entropy) of the empirical code distribution",
                          "position_entropy": "entropy (bits) of the code distribution per sequence "
                          "position" if n_pos else "not tracked"})
        self.tok, self.metric = ctx.tok, CodebookUsage(k, num_positions=n_pos).to(ctx.device)

    def _token_lengths(self, tokens, lengths: Tensor | None) -> Tensor | None:
        """Valid tokens per item: the tokens' own lengths, else those of the zero-padded clips."""
        if tokens.lengths is not None or lengths is None:
            return tokens.lengths
        try:
            tl = torch.tensor([self.tok.token_shape((int(n),))[0] for n in lengths])
            return tl.clamp(max=tokens.ids.shape[1])
        except Exception:
            return None

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.metric.update(tokens.ids, lengths=self._token_lengths(tokens, lengths))

    def compute(self):
        return self.metric.compute()


class AudioScore(EvalMetric):
    """A per-clip audio score (``eval.audio.AUDIO_METRICS``), mean over clips; padding excluded."""

    def __init__(self, name: str, ctx: MetricContext):
        from .audio import AUDIO_METRICS

        cls, rate = AUDIO_METRICS[name], int(ctx.tok.sample_rate)
        kwargs = {"weights": ctx.config.utmos_weights} if name == "utmos" and ctx.config.utmos_weights else {}
        doc = sys.modules[cls.__module__].__doc__ or ""
        line = next((ln.strip("- ").strip() for ln in doc.splitlines() if f":class:`{cls.__name__}`" in ln),
                    cls.__doc__.split("\n")[0] if cls.__doc__ else name)
        super().__init__({"definition": line, "sample_rate": rate})
        self.metric = cls(sample_rate=rate, **kwargs).to(ctx.device)

    def update(self, x, recon, tokens, lengths=None, batch=0):
        self.metric.update(recon, x, lengths=lengths)

    def compute(self):
        return self.metric.compute()
