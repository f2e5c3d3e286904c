"""Official FlexTok checkpoints (apple/ml-flextok, ``EPFL-VILAB/flextok_*``) -> :class:`zoo.models.flextok.FlexTok`.

The official ``config.json`` (also stored, stringified, in the ``model.safetensors`` header) is
a Hydra spec of six parts: ``vae`` (StableDiffusionVAE), ``encoder`` / ``decoder``
(SequentialModuleDictWrapper of named modules), ``regularizer`` (FSQ),
``flow_matching_noise_module`` and ``pipeline``. Every architectural choice is read from it;
modules are found by their class (``_target_``) and their state-dict prefixes by their names.
Choices the zoo model does not implement raise ``NotImplementedError`` naming the setting.
"""
from __future__ import annotations

import ast
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from ..hub import WeightsNotFoundError
from ..source import HubRepo, LocalDir
from . import register_converter

__all__ = ["convert_flextok", "flextok_kwargs_from_config", "read_safetensors_config"]

log = logging.getLogger(__name__)

_DEFAULT_DIFFUSERS_SCALING = 0.18215  # diffusers AutoencoderKL default scaling_factor


def read_safetensors_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config stored in a FlexTok ``model.safetensors`` header (``__metadata__``), parsed."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if not meta:
        raise ValueError(f"{path} carries no config in its safetensors metadata; pass the config.json")
    return _parse_config(meta)


def _parse_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    if "vae" not in cfg and isinstance(cfg.get("config"), Mapping):  # {"config": {...}} (hub mixin layout)
        cfg = cfg["config"]
    out = {}
    for k, v in cfg.items():
        if isinstance(v, str) and v[:1] in "{[":
            try:
                v = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                pass
        out[k] = v
    return out


def _cls(spec: Mapping[str, Any]) -> str:
    return str(spec.get("_target_", "")).rsplit(".", 1)[-1]


def _modules(part: Mapping[str, Any], where: str) -> list[tuple[str, dict]]:
    if _cls(part) != "SequentialModuleDictWrapper" or "module_dict" not in part:
        raise NotImplementedError(f"FlexTok {where}: expected a SequentialModuleDictWrapper, "
                                  f"got {part.get('_target_')}")
    return list(part["module_dict"].items())


def _one(mods: list[tuple[str, dict]], cls: str, where: str, pred=None) -> tuple[str, dict]:
    hits = [(n, s) for n, s in mods if _cls(s) == cls and (pred is None or pred(s))]
    if len(hits) != 1:
        raise NotImplementedError(f"FlexTok {where}: expected exactly one {cls}, found {[n for n, _ in hits]}")
    return hits[0]


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise NotImplementedError(f"unsupported FlexTok config: {what}")


def _trunk_kwargs(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("act_layer", "norm_layer", "rope_forward_read_key", "score_mod_read_key"):
        _require(spec.get(key) is None, f"{name}.{key}={spec.get(key)!r} (only the defaults are implemented)")
    biases = {spec.get("qkv_bias", False), spec.get("proj_bias", False), spec.get("mlp_bias", False)}
    _require(len(biases) == 1, f"{name}: qkv_bias/proj_bias/mlp_bias must agree")
    _require(spec.get("gated_mlp", True), f"{name}.gated_mlp=False")
    _require(spec.get("qk_norm", True), f"{name}.qk_norm=False")
    dim, head_dim = int(spec.get("dim", 768)), int(spec.get("head_dim", 64))
    hidden = int(2 * int(dim * float(spec.get("mlp_ratio", 4.0))) / 3)  # GatedMlp shrinks by 2/3
    return dict(dim=dim, depth=int(spec.get("depth", 12)), head_dim=head_dim, mlp_hidden=hidden, bias=biases.pop())


def _posemb(name: str, spec: Mapping[str, Any], kind: str) -> tuple[list[int], str]:
    ptype = spec.get("posemb_type", "sincos")
    _require(ptype == kind, f"{name}.posemb_type={ptype!r} (expected {kind!r} here)")
    scaling = spec.get("posemb_scaling", "absolute")
    _require(scaling in ("absolute", "interpolate"), f"{name}.posemb_scaling={scaling!r}")
    return [int(v) for v in spec["max_sizes"]], scaling


def _resolve_vae(vae: Mapping[str, Any], config_path: Path | None) -> tuple[dict, LocalDir | HubRepo | None]:
    """(diffusers config, where the VAE weights are or None).

    The official config's ``hf_hub_path`` names the VAE's hub repo; a folder at that path (first beside
    the config, then as given) is used instead when one exists, so a copy of the VAE works offline."""
    from ..models.flextok import VAE_SDXL_LIKE

    src = vae.get("hf_hub_path")
    if src is None:
        cfg = dict(VAE_SDXL_LIKE, latent_channels=int(vae.get("latent_channels", 16)))
        return cfg, None
    candidates = [Path(src).expanduser()]
    if config_path is not None and not Path(src).is_absolute():
        candidates.insert(0, Path(config_path).parent / src)
    folder = next((LocalDir(c) for c in candidates if c.is_dir()), None)
    if folder is None:
        try:
            folder = HubRepo(str(src))
        except ValueError:
            raise WeightsNotFoundError(f"the config's vae.hf_hub_path {src!r} is neither a folder "
                                       f"({', '.join(map(str, candidates))}) nor a hub repo id (ORG/NAME)") from None
    cfg_file = folder.file("config.json")  # a hub repo raises a WeightsNotFoundError with hints
    return json.loads(cfg_file.read_text(encoding="utf-8")), folder


def flextok_kwargs_from_config(config: Mapping[str, Any], config_path: str | os.PathLike | None = None,
                               vae_config: Mapping[str, Any] | None = None
                               ) -> tuple[dict[str, Any], dict[str, str], Any]:
    """Official config -> (FlexTok kwargs, official module names by role, VAE weights source).

    vae_config: the diffusers VAE config to use instead of resolving the config's ``hf_hub_path``
    (the VAE's own repo, which may be unreachable offline)."""
    cfg = _parse_config(config)
    for part in ("vae", "encoder", "decoder", "regularizer"):
        if part not in cfg:
            raise ValueError(f"not a FlexTok config: no '{part}' entry (keys: {sorted(cfg)})")
    names: dict[str, str] = {}
    vae = cfg["vae"]
    _require(_cls(vae) == "StableDiffusionVAE", f"vae._target_={vae.get('_target_')!r}")
    if vae_config is not None:
        vae_cfg, vae_src = dict(vae_config), None
    else:
        vae_cfg, vae_src = _resolve_vae(vae, Path(config_path) if config_path else None)
    latent_channels = int(vae.get("latent_channels", vae_cfg.get("latent_channels", 16)))
    scaling = vae.get("scaling_factor") or vae_cfg.get("scaling_factor") or _DEFAULT_DIFFUSERS_SCALING
    downsample = 2 ** (len(vae_cfg["block_out_channels"]) - 1)

    # ---------------- encoder
    enc = _modules(cfg["encoder"], "encoder")
    names["enc_patch"], pe = _one(enc, "PatchEmbedder", "encoder")
    patch = [int(v) for v in pe["patch_sizes"]]
    _require(len(patch) == 2 and patch[0] == patch[1], f"encoder patch_sizes={patch} (square 2D only)")
    _require(int(pe["channels_in"]) == latent_channels, "encoder channels_in != VAE latent channels")
    names["enc_pos"], ppos = _one(enc, "PositionalEmbeddingAdder", "encoder")
    pos_grid, pos_scaling = _posemb(names["enc_pos"], ppos, "sincos")
    names["enc_regs"], regs = _one(enc, "Registers1D", "encoder")
    n_reg = int(regs["n_max"])
    _require(regs.get("n_eval") in (None, n_reg), "Registers1D.n_eval != n_max")
    _require(regs.get("extra_registers_write_key") is None, "Registers1D extra registers")
    _, epack = _one(enc, "BlockWiseSequencePacker", "encoder")
    _require(epack.get("mask_mode", "full") == "causal_last", f"encoder mask_mode={epack.get('mask_mode')!r}")
    _require(list(epack["input_list_read_keys"]) == [pe["patches_list_write_key"], regs["registers_write_key"]],
             "encoder packs [patches, registers] in this order")
    names["enc_trunk"], etr = _one(enc, "FlexTransformer", "encoder")
    _require(etr.get("adaLN_emb_read_key") is None, "adaLN in the encoder")
    enc_kw = _trunk_kwargs(names["enc_trunk"], etr)
    names["enc_head"], ehead = _one(enc, "LinearHead", "encoder")
    _require(not ehead.get("use_mup_readout", False), "encoder LinearHead use_mup_readout=True")
    _require(ehead.get("adaLN_emb_read_key") is None, "adaLN in the encoder head")
    _require(ehead.get("proj_bias", True), "encoder head without bias")
    _require(ehead.get("read_key") == regs["registers_write_key"], "encoder head does not read the registers")
    token_dim = int(ehead["dim_out"])

    # ---------------- regularizer
    reg = cfg["regularizer"]
    _require(_cls(reg) == "FSQ", f"regularizer {reg.get('_target_')!r}")
    levels = [int(v) for v in reg["levels"]]
    _require(len(levels) == token_dim, "FSQ levels do not match the encoder output dim")

    # ---------------- decoder
    dec = _modules(cfg["decoder"], "decoder")
    order = [n for n, _ in dec]
    names["dec_in"], lin = _one(dec, "LinearLayer", "decoder")
    _require(int(lin["dim_in"]) == token_dim and lin.get("proj_bias", True), "decoder LinearLayer shape/bias")
    qkey = lin["write_key"]
    names["dec_pe"], dpe = _one(dec, "PatchEmbedder", "decoder")
    _require([int(v) for v in dpe["patch_sizes"]] == patch, "decoder and encoder patch sizes differ")
    pkey = dpe["patches_list_write_key"]
    reg_pos = [(n, s) for n, s in dec if _cls(s) == "PositionalEmbeddingAdder" and s.get("read_key") == qkey]
    register_pos = bool(reg_pos)
    if reg_pos:
        names["dec_regpos"], rps = reg_pos[0]
        sizes, rscale = _posemb(names["dec_regpos"], rps, "learnable_sum")
        _require(sizes == [n_reg] and rscale == "absolute", f"register posemb max_sizes={sizes}, scaling={rscale}")
    names["dec_pos"], dpp = _one(dec, "PositionalEmbeddingAdder", "decoder", lambda s: s.get("read_key") == pkey)
    dgrid, dscale = _posemb(names["dec_pos"], dpp, "sincos")
    _require(dgrid == pos_grid and dscale == pos_scaling, "decoder and encoder patch posembs differ")
    names["dec_nd"], nd = _one(dec, "MaskedNestedDropout", "decoder")
    nulls = [(n, s) for n, s in dec if _cls(s) in ("LearnedNullCond", "ZeroNullCond")]
    _require(len(nulls) == 1, "exactly one null-condition module (LearnedNullCond / ZeroNullCond)")
    names["dec_null"], nsp = nulls[0]
    null_kind = "learned" if _cls(nsp) == "LearnedNullCond" else "zero"
    seq = [order.index(names["dec_in"])] + ([order.index(names["dec_regpos"])] if register_pos else []) + \
          [order.index(names["dec_nd"]), order.index(names["dec_null"])]
    _require(seq == sorted(seq), "decoder order: from_latents -> register posemb -> nested dropout -> null cond")
    _, dpack = _one(dec, "BlockWiseSequencePacker", "decoder")
    _require(dpack.get("mask_mode", "full") == "full", f"decoder mask_mode={dpack.get('mask_mode')!r}")
    _require(list(dpack["input_list_read_keys"]) == [pkey, qkey], "decoder packs [patches, registers] in this order")
    names["dec_time"], tspec = _one(dec, "TimestepEmbedder", "decoder")
    _require(not tspec.get("temb_as_tokens", False), "TimestepEmbedder.temb_as_tokens=True")
    names["dec_trunk"], dtr = _one(dec, "FlexTransformer", "decoder")
    _require(dtr.get("adaLN_emb_read_key") == tspec["time_embedding_write_key"],
             "decoder adaLN must read the timestep embedding")
    dec_kw = _trunk_kwargs(names["dec_trunk"], dtr)
    segments = int(dtr.get("adaLN_expansion", 1))
    packed_segments = len(dpack["input_list_read_keys"]) if dpack.get("per_subseq_embs", False) else 1
    _require(segments == packed_segments,
             f"adaLN_expansion={segments} vs packer per_subseq_embs segments {packed_segments}")
    names["dec_head"], dhead = _one(dec, "ToPatchesLinearHead", "decoder")
    _require(not dhead.get("use_mup_readout", False), "decoder head use_mup_readout=True")
    _require(dhead.get("adaLN_emb_read_key") == tspec["time_embedding_write_key"]
             and dhead.get("adaLN_packing_fn_read_key") is None, "decoder head adaLN settings")
    _require(dhead.get("adaLN_bias", True) and dhead.get("proj_bias", True)
             and dhead.get("norm_layer", "default") is not None, "decoder head without bias / norm")
    _require(dhead.get("read_key") == pkey and int(dhead["channels_out"]) == latent_channels,
             "decoder head input/output")
    for n, s in enc + dec:
        _require(_cls(s) in _KNOWN, f"module {n} of class {_cls(s)}")

    # ---------------- training-only parts
    noise = cfg.get("flow_matching_noise_module") or {}
    if noise.get("ln", True):
        ts = "logit_normal_stratified" if noise.get("stratisfied", False) else "logit_normal"
    else:
        ts = "mode" if float(noise.get("mode_scale", 0.0)) != 0.0 else "uniform"
    pipe = cfg.get("pipeline") or {}
    _require(int(pipe.get("out_channels", latent_channels)) == latent_channels, "pipeline out_channels")

    kwargs = dict(
        image_size=pos_grid[0] * patch[0] * downsample, vae=vae_cfg, vae_scaling_factor=float(scaling),
        vae_sample_posterior=bool(vae.get("sample_posterior", True)), latent_channels=latent_channels,
        patch_size=patch[0], pos_grid=pos_grid, pos_scaling=pos_scaling,
        enc_width=enc_kw["dim"], enc_depth=enc_kw["depth"], enc_head_dim=enc_kw["head_dim"],
        enc_mlp_hidden=enc_kw["mlp_hidden"], enc_head_norm=ehead.get("norm_layer", "default") is not None,
        dec_width=dec_kw["dim"], dec_depth=dec_kw["depth"], dec_head_dim=dec_kw["head_dim"],
        dec_mlp_hidden=dec_kw["mlp_hidden"], num_registers=n_reg, fsq_levels=levels,
        fsq_drop_quant_p=float(reg.get("drop_quant_p", 0.0)), attn_scale="mup", norm_eps=1e-5,
        bias=enc_kw["bias"], adaln_segments=segments, null_cond=null_kind,
        null_single_token=bool(nsp.get("replace_with_single_token", False)), register_pos=register_pos,
        time_freq_dim=int(tspec.get("frequency_embedding_size", 256)), time_max_period=256.0,
        max_timestep=float(tspec.get("max_timestep", 1000.0)), nested_dropout=nd.get("size_sampling_mode", "uniform"),
        cfg_dropout=float(nsp.get("dropout_prob", 0.0)), timestep_sampling=ts,
        timestep_mode_scale=float(noise.get("mode_scale", 0.0)))
    _require(enc_kw["bias"] == dec_kw["bias"], "encoder and decoder linear biases differ")
    _require(enc_kw["dim"] == int(regs["dim"]) == int(pe["dim"]), "encoder widths differ")
    _require(dec_kw["dim"] == int(lin["dim"]) == int(dpe["dim"]) == int(tspec["dim"]), "decoder widths differ")
    return kwargs, names, vae_src


_KNOWN = {"PerSampleOp", "PatchEmbedder", "PositionalEmbeddingAdder", "Registers1D", "BlockWiseSequencePacker",
          "FlexTransformer", "SequenceUnpacker", "LinearHead", "LinearLayer", "MaskedNestedDropout",
          "LearnedNullCond", "ZeroNullCond", "TimestepEmbedder", "ToPatchesLinearHead"}


def _convert_state_dict(sd: Mapping[str, torch.Tensor], names: dict[str, str], enc_depth: int,
                        dec_depth: int) -> dict[str, torch.Tensor]:
    src = dict(sd)
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise KeyError(f"official FlexTok state dict lacks {key!r}")
        return src.pop(key)

    def linear(off: str, zoo: str, bias: bool = True) -> None:
        out[f"{zoo}.weight"] = take(f"{off}.weight")
        if bias or f"{off}.bias" in src:
            out[f"{zoo}.bias"] = take(f"{off}.bias")

    def trunk_block(off: str, zoo: str) -> None:
        for kind in ("weight", "bias"):
            qkv = [f"{off}.attn.w{c}.{kind}" for c in "qkv"]
            if all(k in src for k in qkv):
                out[f"{zoo}.attn.qkv.{kind}"] = torch.cat([take(k) for k in qkv])
            if f"{off}.attn.proj.{kind}" in src:
                out[f"{zoo}.attn.proj.{kind}"] = take(f"{off}.attn.proj.{kind}")
            if f"{off}.mlp.fc1.{kind}" in src:
                out[f"{zoo}.mlp.fc1.{kind}"] = torch.cat([take(f"{off}.mlp.fc1.{kind}"), take(f"{off}.mlp.fc3.{kind}")])
                out[f"{zoo}.mlp.fc2.{kind}"] = take(f"{off}.mlp.fc2.{kind}")

    for key in [k for k in src if k.startswith("vae.vae.")]:
        out["vae." + key[len("vae.vae."):]] = src.pop(key)
    e, d = "encoder.module_dict.", "decoder.module_dict."
    linear(f"{e}{names['enc_patch']}.patch_proj", "encoder.patch_embed")
    out["encoder.pos_embed"] = take(f"{e}{names['enc_pos']}.posembs")[0].permute(1, 2, 0).contiguous()
    out["encoder.registers"] = take(f"{e}{names['enc_regs']}.registers")
    for i in range(enc_depth):
        trunk_block(f"{e}{names['enc_trunk']}.blocks.{i}", f"encoder.trunk.blocks.{i}")
    linear(f"{e}{names['enc_head']}.proj", "encoder.head")

    linear(f"{d}{names['dec_in']}.proj", "decoder.token_proj")
    if "dec_regpos" in names:
        out["decoder.register_pos"] = take(f"{d}{names['dec_regpos']}.posembs")[0, 0].t().contiguous()
    out["decoder.mask_token"] = take(f"{d}{names['dec_nd']}.dropout_mask_token")
    if f"{d}{names['dec_null']}.nullcond" in src:
        out["decoder.null_cond"] = take(f"{d}{names['dec_null']}.nullcond")
    linear(f"{d}{names['dec_pe']}.patch_proj", "decoder.patch_embed")
    out["decoder.pos_embed"] = take(f"{d}{names['dec_pos']}.posembs")[0].permute(1, 2, 0).contiguous()
    linear(f"{d}{names['dec_time']}.mlp.0", "decoder.time_embed.mlp.0")
    linear(f"{d}{names['dec_time']}.mlp.2", "decoder.time_embed.mlp.2")
    for i in range(dec_depth):
        off = f"{d}{names['dec_trunk']}.blocks.{i}"
        trunk_block(off, f"decoder.blocks.{i}")
        linear(f"{off}.adaLN_modulation.1", f"decoder.blocks.{i}.mod.adaLN_modulation.1")
    linear(f"{d}{names['dec_head']}.adaLN_modulation.1", "decoder.final.mod.adaLN_modulation.1")
    linear(f"{d}{names['dec_head']}.proj", "decoder.final.proj")
    if src:
        raise KeyError(f"official FlexTok state dict has keys the converter does not map: {sorted(src)[:12]}")
    return out


@register_converter("flextok")
def convert_flextok(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None, *,
                    config_path: str | os.PathLike | None = None, files: Mapping[str, Any] | None = None,
                    arch: Mapping[str, Any] | None = None, **kwargs):
    """Official FlexTok state dict + Hydra config -> :class:`FlexTok` (eval mode).

    config: the official ``config.json`` dict; None reads it from the safetensors header of
    ``files["weights"]``. The VAE is built from the diffusers config found through the
    config's ``vae.hf_hub_path`` (a folder relative to ``config_path``, a local folder or a
    hub repo); its weights come from the checkpoint's ``vae.vae.*`` keys (or, when absent,
    from that folder / repo). When that repo cannot be reached (offline) but the checkpoint holds
    the VAE weights, the VAE config comes from ``arch`` (the expected FlexTok arguments; its shapes
    are then checked against the weights). Extra ``kwargs`` override decode defaults
    (``decode_steps``, ``decode_guidance``, ``decode_apg``). The inverse is
    :mod:`zoo.convert.flextok_layout`.
    """
    from ..models.flextok import FlexTok

    if state_dict is None:
        raise ValueError("FlexTok conversion needs the official state dict")
    if config is None:
        weights = (files or {}).get("weights")
        if weights is None:
            raise ValueError("FlexTok conversion needs the official config (config.json or the safetensors header)")
        config = read_safetensors_config(weights)
    sd = dict(state_dict)
    has_vae = any(k.startswith("vae.vae.") for k in sd)
    try:
        model_kwargs, names, vae_src = flextok_kwargs_from_config(config, config_path)
    except WeightsNotFoundError:
        if arch is None or not has_vae:
            raise
        # the VAE's own repo is unreachable but its weights are in the checkpoint: take its config from
        # the expected architecture (checked against the weights' shapes by load_official)
        from ..models.flextok import VAE_SDXL_LIKE

        vae_cfg = arch.get("vae") or dict(VAE_SDXL_LIKE, latent_channels=arch.get("latent_channels", 16))
        log.info("FlexTok: VAE config repo unreachable, using the expected VAE config (weights from the checkpoint)")
        model_kwargs, names, vae_src = flextok_kwargs_from_config(config, config_path, vae_config=vae_cfg)
    allowed = {"decode_steps", "decode_guidance", "decode_apg"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)} (allowed: {sorted(allowed)})")
    with parameters_on_meta():
        model = FlexTok(**model_kwargs, **kwargs)
    if not has_vae:
        sd.update({f"vae.vae.{k}": v for k, v in _vae_weights(vae_src).items()})
    converted = _convert_state_dict(sd, names, model_kwargs["enc_depth"], model_kwargs["dec_depth"])
    load_state_dict_strict(model, converted, source="official FlexTok checkpoint")
    return model.eval()


def _vae_weights(src: LocalDir | HubRepo | None) -> dict[str, torch.Tensor]:
    from ..checkpoint import load_state_dict_file

    if src is None:
        raise ValueError("the checkpoint has no VAE weights (vae.vae.*) and the config names no VAE source")
    return load_state_dict_file(src.file("diffusion_pytorch_model.safetensors"))
