"""Which metrics ``scripts/evaluate.py`` offers, for which modality, and how each is built.

One table (:data:`REGISTRY`): metric name -> :class:`MetricSpec` (its class, the modalities it
applies to, those it is a default for, and the name of its perturbed counterpart). Every clean
metric that compares a reconstruction with its input has a perturbed one, ``p_<name>`` (rFID's is
called ``pfid``): :func:`build_metric` wraps the clean metric in :class:`~eval.perturbed.Perturbed`.
:data:`METRICS` / :data:`DEFAULTS` list the names by modality (clean ones first, then ``p_*``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .metric import EvalMetric, MetricContext
from .pfid import base_metric
from .pfid import perturbed_name as _p
from .suite_metrics import AudioScore, CodeUsage, FrameFidelity, FrameLPIPS, FrechetInception, FrechetVideo

__all__ = ["MetricSpec", "REGISTRY", "METRICS", "DEFAULTS", "build_metric", "registry_order"]

_VISUAL, _AUDIO, _ALL = ("image", "video"), ("audio",), ("image", "video", "audio")


@dataclass(frozen=True)
class MetricSpec:
    """cls: an :class:`~eval.metric.EvalMetric` built as ``cls(name, ctx)``; modalities: where it
    applies; defaults: where it runs without ``--metrics``; perturbed: the name of its perturbed
    counterpart (None: none)."""

    cls: type
    modalities: tuple[str, ...]
    defaults: tuple[str, ...] = ()
    perturbed: str | None = None


#: clean metrics in report order
REGISTRY: dict[str, MetricSpec] = {
    "psnr": MetricSpec(FrameFidelity, _VISUAL, _VISUAL, _p("psnr")),
    "ssim": MetricSpec(FrameFidelity, _VISUAL, _VISUAL, _p("ssim")),
    "ms_ssim": MetricSpec(FrameFidelity, ("image",), ("image",), _p("ms_ssim")),
    "lpips": MetricSpec(FrameLPIPS, _VISUAL, _VISUAL, _p("lpips")),
    "rfid": MetricSpec(FrechetInception, ("image",), ("image",), "pfid"),
    "fvd": MetricSpec(FrechetVideo, ("video",), ("video",), _p("fvd")),
    "si_sdr": MetricSpec(AudioScore, _AUDIO, _AUDIO, _p("si_sdr")),
    "mel_distance": MetricSpec(AudioScore, _AUDIO, _AUDIO, _p("mel_distance")),
    "pesq": MetricSpec(AudioScore, _AUDIO, _AUDIO, _p("pesq")),
    "stoi": MetricSpec(AudioScore, _AUDIO, _AUDIO, _p("stoi")),
    "utmos": MetricSpec(AudioScore, _AUDIO, (), _p("utmos")),
    "dnsmos": MetricSpec(AudioScore, _AUDIO, (), _p("dnsmos")),
    "usage": MetricSpec(CodeUsage, _ALL, _ALL),
}
#: perturbed name -> clean name
_PERTURBED = {spec.perturbed: name for name, spec in REGISTRY.items() if spec.perturbed}


def _names(modality: str) -> tuple[str, ...]:
    """Clean names in registry order, a counterpart with a name of its own (pfid) next to its metric,
    then the ``p_<metric>`` names."""
    names, perturbed = [], []
    for name, spec in REGISTRY.items():
        if modality in spec.modalities:
            names.append(name)
            if spec.perturbed:
                (names if base_metric(spec.perturbed) is None else perturbed).append(spec.perturbed)
    return tuple(names + perturbed)


#: metric names by modality (``p_<metric>``: the metric of the latent-perturbed reconstruction)
METRICS: dict[str, tuple[str, ...]] = {m: _names(m) for m in _ALL}
DEFAULTS: dict[str, tuple[str, ...]] = {m: tuple(n for n, s in REGISTRY.items() if m in s.defaults) for m in _ALL}


def registry_order(name: str) -> int:
    """Position of a clean metric in :data:`REGISTRY` (per-item tables follow it)."""
    return list(REGISTRY).index(name)


def build_metric(name: str, ctx: MetricContext) -> EvalMetric:
    """The metric ``name`` for the run described by ``ctx``; ``ValueError`` for one the modality lacks."""
    from .perturbed import Perturbed
    from .pfid import perturbation_protocol, perturbed_label, pfid_label, pfid_protocol

    m = ctx.modality.name
    if name not in METRICS[m]:
        raise ValueError(f"metric {name!r} is not available for {m} tokenizers; choose from {METRICS[m]}")
    if name in REGISTRY:
        return REGISTRY[name].cls(name, ctx)
    base = _PERTURBED[name]
    why = ctx.tok.token_perturbation().unsupported_reason()
    if name == "pfid":  # RobusTok's pFID: the FID of perturbed reconstructions, labelled as in the paper
        metric = REGISTRY[base].cls(base, ctx)
        if why is not None:
            raise ValueError(f"pFID: {why}")
        src = ctx.perturbation()
        return Perturbed(metric, src, pfid_protocol(src.alpha, src.delta, src.seed, src.mode),
                         pfid_label(src.alpha, src.delta, src.seed))
    if why is not None:
        raise ValueError(f"{name}: latent perturbation unavailable: {why}")
    src = ctx.perturbation()
    extra = {**perturbation_protocol(src.alpha, src.delta, src.seed, src.mode, unit=ctx.modality.item_noun),
             "token": ctx.tok.token_perturbation().definition(), "compared_with": f"the original input, as {base}"}
    return Perturbed(REGISTRY[base].cls(base, ctx), src, extra, perturbed_label(base, src.alpha, src.delta, src.seed))
