"""Official WavTokenizer checkpoints (``novateur/WavTokenizer*``) -> :class:`zoo.models.wavtokenizer.WavTokenizer`.

Input: the Lightning ``.ckpt`` (a dict with ``state_dict``; read with
``torch.load(weights_only=True)`` by :func:`zoo.load_official`) or a bare state dict, and the
training yaml (``model.init_args.{feature_extractor,backbone,head}``; optional: the architecture
is read from the tensor shapes and the yaml, when given, is checked against them, so the
medium/large checkpoints that ship without a yaml load with or without the small model's one).

Kept: ``feature_extractor.encodec.encoder.*`` -> ``encoder.*``, the first codebook
``feature_extractor.encodec.quantizer.vq.layers.0._codebook.*`` -> ``quantizer.*``, ``backbone.*``,
``head.*``. Dropped: the unused EnCodec decoder (when present), discriminators, loss buffers,
further (unused) codebooks. Weight norm stays factored (``weight_g`` / ``weight_v``); new-style
``parametrizations.weight.original0/1`` keys are renamed to that layout.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from . import register_converter

__all__ = ["convert_wavtokenizer", "official_to_zoo_keys", "infer_config", "to_official_state_dict",
           "to_official_config"]

log = logging.getLogger(__name__)

_ENCODER = "feature_extractor.encodec.encoder."
_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
_QUANTIZER = "feature_extractor.encodec.quantizer."
_DECODER = "feature_extractor.encodec.decoder."


def _unwrap(state_dict: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        return state_dict["state_dict"]
    return state_dict


def official_to_zoo_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official keys to zoo keys; drop what inference never uses (see module docstring)."""
    out: dict[str, torch.Tensor] = {}
    dropped: dict[str, int] = {}
    for key, value in _unwrap(state_dict).items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        if key.startswith(_ENCODER):
            out["encoder." + key[len(_ENCODER):]] = value
        elif key.startswith(_CODEBOOK):
            out["quantizer." + key[len(_CODEBOOK):]] = value
        elif key.startswith(("backbone.", "head.")):
            out[key] = value
        elif key.startswith(_QUANTIZER) or key.startswith(_DECODER) or not key.startswith("feature_extractor."):
            group = key.split(".")[0] if not key.startswith("feature_extractor.") else ".".join(key.split(".")[:3])
            dropped[group] = dropped.get(group, 0) + 1
        else:
            out[key] = value  # unknown feature_extractor key: the strict load will name it
    if dropped:
        log.info("wavtokenizer: dropped keys unused by inference: %s", dropped)
    return out


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise KeyError(f"the WavTokenizer checkpoint has no {key!r} (is it a WavTokenizer checkpoint?)")
    return tuple(sd[key].shape)


def infer_config(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Zoo ``WavTokenizer`` kwargs read from the shapes of a zoo-keyed state dict."""
    lstm_ids = sorted({int(m.group(1)) for k in sd if (m := re.match(r"encoder\.model\.(\d+)\.lstm\.", k))})
    if len(lstm_ids) != 1:
        raise ValueError("cannot find the encoder LSTM (encoder.model.<i>.lstm.*) in the checkpoint")
    lstm_idx = lstm_ids[0]
    if (lstm_idx - 1) % 3:
        raise ValueError(f"unexpected SEANet layout (LSTM at model.{lstm_idx}); only n_residual_layers=1 is supported")
    num_ratios = (lstm_idx - 1) // 3
    strides = [_shape(sd, f"encoder.model.{3 + 3 * i}.conv.conv.weight_v")[-1] // 2 for i in range(num_ratios)]
    lstm_layers = len([k for k in sd if k.startswith(f"encoder.model.{lstm_idx}.lstm.weight_ih_l")])
    codebook_size, codebook_dim = _shape(sd, "quantizer.embed")
    dim = _shape(sd, "backbone.embed.weight")[0]
    num_layers = len({k.split(".")[2] for k in sd if k.startswith("backbone.convnext.")})
    intermediate_dim = _shape(sd, "backbone.convnext.0.pwconv1.weight")[0]
    num_bandwidths = _shape(sd, "backbone.norm.scale.weight")[0] if "backbone.norm.scale.weight" in sd else None
    n_fft = _shape(sd, "head.out.weight")[0] - 2
    hop = 1
    for s in strides:
        hop *= s
    return dict(ratios=list(reversed(strides)), codebook_size=codebook_size, codebook_dim=codebook_dim,
                n_filters=_shape(sd, "encoder.model.0.conv.conv.weight_v")[0], lstm_layers=lstm_layers,
                vocos_width=dim, vocos_mlp_hidden=intermediate_dim, vocos_depth=num_layers,
                num_bandwidths=num_bandwidths,
                n_fft=n_fft, hop_length=hop)


def _check_against_yaml(kwargs: dict[str, Any], config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Compare the shape-derived kwargs with the official yaml; return the extra yaml-only kwargs."""
    root = config.get("model", {}).get("init_args", config) if isinstance(config.get("model"), Mapping) else config
    try:
        fe = root["feature_extractor"].get("init_args", {})
        bb = root["backbone"].get("init_args", {})
        hd = root["head"].get("init_args", {})
    except (KeyError, AttributeError) as e:
        raise ValueError(f"{source} is not a WavTokenizer training yaml (no model.init_args.feature_extractor/"
                         f"backbone/head)") from e
    # zoo keyword -> (yaml key, its value)
    expected = {
        "ratios": ("dowmsamples", fe.get("dowmsamples")), "codebook_size": ("vq_bins", fe.get("vq_bins")),
        "vocos_width": ("dim", bb.get("dim")), "vocos_mlp_hidden": ("intermediate_dim", bb.get("intermediate_dim")),
        "vocos_depth": ("num_layers", bb.get("num_layers")),
        "num_bandwidths": ("adanorm_num_embeddings", bb.get("adanorm_num_embeddings")),
        "n_fft": ("n_fft", hd.get("n_fft")), "hop_length": ("hop_length", hd.get("hop_length")),
        "codebook_dim": ("input_channels", bb.get("input_channels")),
    }
    bad = [f"{theirs} (zoo {k}): yaml {v} vs checkpoint {kwargs[k]}" for k, (theirs, v) in expected.items()
           if v is not None and (list(v) if isinstance(v, (list, tuple)) else v) != kwargs[k]]
    if bad:
        raise ValueError(f"{source} does not describe this checkpoint (wrong yaml for this frame rate / size?): "
                         + "; ".join(bad))
    if hd.get("padding", "same") != "same":
        raise ValueError(f"only padding='same' ISTFT heads are supported, {source} has {hd.get('padding')!r}")
    extra = {}
    if "vq_kmeans" in fe:
        extra["kmeans_iters"] = int(fe["vq_kmeans"])
    sr = root.get("sample_rate")
    if sr is not None:
        extra["sample_rate"] = int(sr)
    return extra


@register_converter("wavtokenizer")
def convert_wavtokenizer(state_dict: Mapping[str, Any] | None, config: Mapping[str, Any] | None, *,
                         config_path=None, files=None, arch=None, **kwargs):
    """Official checkpoint (+ optional yaml) -> eval-mode ``WavTokenizer`` with the weights loaded strictly.

    kwargs: ``WavTokenizer`` overrides that do not change parameter shapes (e.g. ``mel_weight``).
    """
    from ..models.wavtokenizer import WavTokenizer

    if state_dict is None:
        raise ValueError("wavtokenizer needs the official checkpoint (.ckpt with 'state_dict', or a state dict)")
    sd = official_to_zoo_keys(state_dict)
    if not sd:
        raise ValueError("the checkpoint holds no WavTokenizer weights (no feature_extractor./backbone./head. keys)")
    arch = infer_config(sd)
    if config is not None:
        arch.update(_check_against_yaml(arch, config, str(config_path or "the config")))
    arch.update(kwargs)
    with parameters_on_meta():
        model = WavTokenizer(**arch)
    if "quantizer.inited" in sd:
        inited = sd["quantizer.inited"]
        sd["quantizer.inited"] = inited.reshape(1).to(torch.float32)
        if not inited.is_meta and not bool(sd["quantizer.inited"].item()):
            log.warning("wavtokenizer checkpoint: the codebook was never initialised (inited=0)")
    load_state_dict_strict(model, sd, source="official WavTokenizer checkpoint")
    return model.eval()


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """Zoo ``WavTokenizer`` -> the inference part of the official Lightning ``state_dict`` (official key
    names; the official ``.ckpt`` is ``{"state_dict": this, ...}``). The parts the zoo drops (EnCodec
    decoder, discriminators, loss buffers) are not recreated."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder."):
            out[_ENCODER + key[len("encoder."):]] = value
        elif key.startswith("quantizer."):
            out[_CODEBOOK + key[len("quantizer."):]] = value
        else:
            out[key] = value
    return out


def to_official_config(model) -> dict[str, Any]:
    """The ``model.init_args`` part of the official training yaml that describes ``model`` (what
    :func:`convert_wavtokenizer` reads and checks; training-only settings are left out)."""
    c = model.config
    return {"model": {"class_path": "decoder.experiment.WavTokenizer", "init_args": {
        "sample_rate": int(model.sample_rate),
        "feature_extractor": {"class_path": "decoder.feature_extractors.EncodecFeatures", "init_args": {
            "encodec_model": "encodec_24khz", "bandwidths": [6.6] * 4, "train_codebooks": True, "num_quantizers": 1,
            "dowmsamples": list(c["ratios"]), "vq_bins": int(c["codebook_size"]),
            "vq_kmeans": int(c["kmeans_iters"])}},
        "backbone": {"class_path": "decoder.models.VocosBackbone", "init_args": {
            "input_channels": int(c["codebook_dim"]), "dim": int(c["vocos_width"]),
            "intermediate_dim": int(c["vocos_mlp_hidden"]), "num_layers": int(c["vocos_depth"]),
            "adanorm_num_embeddings": c["num_bandwidths"]}},
        "head": {"class_path": "decoder.heads.ISTFTHead", "init_args": {
            "dim": int(c["vocos_width"]), "n_fft": int(c["n_fft"]), "hop_length": int(c["hop_length"]),
            "padding": c.get("padding", "same")}}}}}
