"""The adversarial part of a recipe: discriminators, GAN objective, feature matching, LeCam.

Discriminator outputs are normalised to ``(logits, features)``: a tensor is one logit map; a
``(logits, features)`` pair, a list of such pairs (multi-period / multi-resolution audio
discriminators) or a dict with ``"logits"`` / ``"features"`` are unpacked.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.losses.gan import discriminator_loss, feature_matching_loss, generator_loss
from zoo.losses.lecam import LeCamEMA, lecam_regularizer
from zoo.modality import Modality, modality_named

from .builders import load_class

__all__ = ["DiscriminatorSet", "Adversary", "split_output", "DISCRIMINATORS"]

#: short names usable as ``gan.discriminators[i].name``
DISCRIMINATORS = {
    "patchgan": "zoo.losses.patchgan:PatchGAN",
    "mpd": "zoo.losses.audio_discriminators:MultiPeriodDiscriminator",
    "mrd": "zoo.losses.audio_discriminators:MultiResolutionDiscriminator",
    "msstft": "zoo.losses.audio_discriminators:MultiScaleSTFTDiscriminator",
    "audio": "zoo.losses.audio_discriminators:AudioDiscriminators",  # any combination of the three
}


def split_output(out: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Discriminator output -> ``(list of logit tensors, flat list of feature maps)``."""
    if isinstance(out, torch.Tensor):
        return [out], []
    if isinstance(out, dict):
        logits, feats = out.get("logits"), out.get("features", [])
        if logits is None:
            raise ValueError("a discriminator dict output needs a 'logits' entry")
        return split_output(logits)[0], _flat(feats)
    if isinstance(out, (list, tuple)):
        if len(out) == 2 and isinstance(out[1], (list, tuple)) and (
                isinstance(out[0], torch.Tensor) or all(isinstance(t, torch.Tensor) for t in out[0])):
            if isinstance(out[0], torch.Tensor) or not any(isinstance(t, (list, tuple)) for t in out[1]) \
                    or len(out[0]) == len(out[1]):
                return split_output(out[0])[0], _flat(out[1])
        if all(isinstance(t, torch.Tensor) for t in out):
            return list(out), []
        logits, feats = [], []
        for item in out:
            lg, ft = split_output(item)
            logits += lg
            feats += ft
        return logits, feats
    raise TypeError(f"cannot interpret a discriminator output of type {type(out).__name__}")


def _flat(items) -> list[torch.Tensor]:
    if isinstance(items, torch.Tensor):
        return [items]
    out = []
    for t in items:
        out += _flat(t)
    return out


class DiscriminatorSet(nn.Module):
    """Several discriminators behind one forward: ``x -> [output of each]`` (one DDP wrapper)."""

    def __init__(self, discriminators: list[nn.Module]):
        super().__init__()
        self.items = nn.ModuleList(discriminators)

    def forward(self, x: torch.Tensor) -> list[Any]:
        return [d(x) for d in self.items]


def build_discriminators(specs: list[dict], modality: str) -> DiscriminatorSet:
    if not specs:
        raise ValueError("gan.weight > 0 but gan.discriminators is empty")
    discs = []
    for spec in specs:
        unknown = set(spec) - {"name", "class", "kwargs"}
        if unknown:
            raise ValueError(f"unknown discriminator options {sorted(unknown)} (name, class, kwargs)")
        target = spec.get("class") or DISCRIMINATORS.get(spec.get("name", ""))
        if target is None:
            raise ValueError(f"unknown discriminator {spec.get('name')!r}; names: {sorted(DISCRIMINATORS)}, "
                             "or give class: 'package.module:Class'")
        try:
            cls = load_class(target)
        except (ImportError, AttributeError) as e:
            raise ImportError(f"discriminator {spec.get('name') or target} is not available: {e}") from e
        discs.append(cls(**(spec.get("kwargs") or {})))
    return DiscriminatorSet(discs)


class Adversary(nn.Module):
    """Discriminators + LeCam averages; computes the generator and discriminator terms.

    cfg: the recipe's ``gan`` section; modality (object or name): how signals are shaped for the
    discriminators (scaled to [-1, 1]; audio ``[B, 1, T]``; video frames folded into the batch)."""

    def __init__(self, cfg: dict, modality: "Modality | str"):
        super().__init__()
        self.loss, self.modality = cfg.get("loss", "hinge"), modality_named(modality)
        generator_loss(self.loss, torch.zeros(1))  # validates the name early
        self.weight = float(cfg.get("weight", 0.0))
        self.fm_weight = float(cfg.get("feature_matching_weight", 0.0))
        self.lecam_weight = float(cfg.get("lecam_weight", 0.0))
        self.start_step = int(cfg.get("start_step", 0))
        self.discriminators = build_discriminators(cfg.get("discriminators") or [], modality)
        self.lecam = nn.ModuleList(LeCamEMA(float(cfg.get("lecam_decay", 0.999)))
                                   for _ in self.discriminators.items)

    def active(self, step: int) -> bool:
        """Whether the GAN terms are on at (0-based) optimizer step ``step``."""
        return self.weight > 0 and step >= self.start_step

    def prepare(self, x: torch.Tensor, input_range: tuple[float, float]) -> torch.Tensor:
        """``x`` in [-1, 1] in the discriminators' layout (``Modality.network_input``)."""
        return self.modality.network_input(x, input_range)

    def generator_terms(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted generator losses. Uses the raw (non-DDP) discriminators with their
        parameters temporarily frozen, so no gradient reaches them."""
        discs = self.discriminators
        flags = [p.requires_grad for p in discs.parameters()]
        discs.requires_grad_(False)
        try:
            fake_out = discs(fake)
            losses = {"gan_g": self.weight * sum(generator_loss(self.loss, split_output(o)[0]) for o in fake_out)}
            if self.fm_weight > 0:
                with torch.no_grad():
                    real_out = discs(real)
                fm = sum(feature_matching_loss(split_output(r)[1], split_output(f)[1])
                         for r, f in zip(real_out, fake_out))
                losses["feature_matching"] = self.fm_weight * fm
        finally:
            for p, f in zip(discs.parameters(), flags):
                p.requires_grad_(f)
        return losses

    def discriminator_terms(self, discs: nn.Module, real: torch.Tensor, fake: torch.Tensor, reduce=None,
                            ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Discriminator losses on real and detached fake signals through ``discs`` (the
        DDP-wrapped :class:`DiscriminatorSet`); ``reduce(t)`` averages a scalar over processes
        (for the LeCam averages). Returns ``(losses, stats)``."""
        outs = discs(torch.cat([real, fake.detach()]))
        n = real.shape[0]
        total, reg = 0.0, 0.0
        stats = {}
        for i, (out, ema) in enumerate(zip(outs, self.lecam)):
            logits = split_output(out)[0]
            real_l, fake_l = [t[:n] for t in logits], [t[n:] for t in logits]
            total = total + discriminator_loss(self.loss, real_l, fake_l)
            r_all = torch.cat([t.float().flatten() for t in real_l])
            f_all = torch.cat([t.float().flatten() for t in fake_l])
            if self.lecam_weight > 0:
                reg = reg + lecam_regularizer(r_all, f_all, ema)
            r_mean, f_mean = r_all.detach().mean(), f_all.detach().mean()
            if reduce is not None:
                r_mean, f_mean = reduce(r_mean), reduce(f_mean)
            ema.update(r_mean, f_mean)
            stats[f"d{i}_logits_real"], stats[f"d{i}_logits_fake"] = r_mean, f_mean
        losses = {"gan_d": total}
        if self.lecam_weight > 0:
            losses["lecam"] = self.lecam_weight * reg
        return losses, stats
