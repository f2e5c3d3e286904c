"""Official TiTok / TA-TiTok / One-D-Piece checkpoints -> :class:`zoo.models.titok.TiTok`.

Input: the Hugging Face ``model.safetensors`` state dict (official key names) and ``config.json``
of ``yucornetto/tokenizer_titok_*``, ``turkeyju/tokenizer_tatitok_*`` or
``turing-motors/One-D-Piece-*``. The architecture is read from the tensor SHAPES (ViT widths,
depths, patch size, grid, token count, token size, codebook, MaskGIT-VQGAN channels; heads =
width / 64 as in every official model); the config supplies only what shapes cannot tell:
``is_legacy`` (encoder read-out), ``use_l2_norm``, ``quantize_mode`` (checked against the keys),
``finetune_decoder`` (checked), ``commitment_cost``.

A zoo-format folder (``save_pretrained`` output, config with ``tokenizer_class``) is accepted too,
so registry entries load converted copies from a local folder or HF cache as well.

Dropped on purpose: TA-TiTok's ``quantize.embed_prob`` (a training-only usage EMA of its
clustering VQ; inference never reads it).

The inverse, :func:`to_official_state_dict` and :func:`to_official_config`, writes a zoo TiTok in
the official layout (e.g. to run the official code on it, or to test loading).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ..checkpoint import CheckpointMismatchError, load_state_dict_strict, parameters_on_meta
from . import register_converter

__all__ = ["convert_titok", "convert_onedpiece", "titok_kwargs_from_official", "map_official_keys",
           "to_official_state_dict", "to_official_config"]

_BLOCK_RENAMES = (("ln_1.", "norm1."), ("ln_2.", "norm2."), ("attn.in_proj_weight", "attn.qkv.weight"),
                  ("attn.in_proj_bias", "attn.qkv.bias"), ("attn.out_proj.", "attn.proj."),
                  ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."))
_BLOCK_RE = re.compile(r"^(encoder|decoder)\.transformer\.(\d+)\.(.*)$")
_DROPPED = ("quantize.embed_prob",)


def map_official_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key names -> zoo key names (tensors unchanged)."""
    out = {}
    for key, value in sd.items():
        if key in _DROPPED:
            continue
        new = key
        m = _BLOCK_RE.match(key)
        if m:
            rest = m.group(3)
            for old, rep in _BLOCK_RENAMES:
                if rest.startswith(old):
                    rest = rep + rest[len(old):]
                    break
            new = f"{m.group(1)}.transformer.blocks.{m.group(2)}.{rest}"
        elif key == "latent_tokens":
            new = "encoder.latent_tokens"
        elif key.startswith("encoder.patch_embed."):
            new = "encoder.patch_embed.proj." + key[len("encoder.patch_embed."):]
        out[new] = value
    return out


def _vq_config(config: Mapping | None) -> dict[str, Any]:
    if config is None:
        raise ValueError("the official TiTok config (config.json) is required: it says is_legacy, use_l2_norm "
                         "and quantize_mode, which the weights cannot tell")
    if "model" in config:
        model = config["model"]
        if not isinstance(model, Mapping) or "vq_model" not in model:
            raise ValueError("official TiTok config has no 'model.vq_model' section "
                             f"(model keys: {sorted(model) if isinstance(model, Mapping) else type(model).__name__})")
        return dict(model["vq_model"])
    if "vq_model" in config:
        return dict(config["vq_model"])
    if "num_latent_tokens" in config:  # the vq_model section itself
        return dict(config)
    raise ValueError(f"not an official TiTok config: no 'model.vq_model' (top-level keys {sorted(config)})")


def _need(sd: Mapping, key: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointMismatchError(f"official TiTok state dict lacks '{key}', needed to infer the architecture "
                                      f"(it has {len(sd)} keys, e.g. {sorted(sd)[:6]})")
    return sd[key]


def _depth(sd: Mapping, part: str) -> int:
    idx = {int(m.group(2)) for k in sd if (m := _BLOCK_RE.match(k)) and m.group(1) == part}
    if not idx or idx != set(range(len(idx))):
        raise CheckpointMismatchError(f"'{part}.transformer.<i>.*' blocks missing or not numbered 0..n-1: {sorted(idx)}")
    return len(idx)


def _heads(width: int, part: str) -> int:
    if width % 64:
        raise CheckpointMismatchError(f"{part} width {width} (from {part}.ln_pre.weight) is not a multiple of the "
                                      "official head dim 64")
    return width // 64


def titok_kwargs_from_official(sd: Mapping[str, torch.Tensor], config: Mapping | None,
                               one_d_piece: bool = False) -> dict[str, Any]:
    """:class:`TiTok` constructor arguments for an official state dict (official key names) + config."""
    vq = _vq_config(config)
    patch = _need(sd, "encoder.patch_embed.weight")
    enc_w, enc_p = int(patch.shape[0]), int(patch.shape[-1])
    g2 = int(_need(sd, "encoder.positional_embedding").shape[0]) - 1
    grid = int(round(g2 ** 0.5))
    if grid * grid != g2:
        raise CheckpointMismatchError(f"encoder.positional_embedding has {g2 + 1} rows, not 1 + a square grid")
    image_size = grid * enc_p
    crop = (config or {}).get("dataset", {}).get("preprocessing", {}).get("crop_size") if config else None
    if crop is not None and int(crop) != image_size:
        raise ValueError(f"config dataset.preprocessing.crop_size={crop} disagrees with the weights: "
                         f"encoder.positional_embedding {tuple(sd['encoder.positional_embedding'].shape)} and patch "
                         f"size {enc_p} give {image_size} px")
    num_tokens = int(_need(sd, "latent_tokens").shape[0])
    dec_embed = _need(sd, "decoder.decoder_embed.weight")
    dec_w, token_size = int(dec_embed.shape[0]), int(dec_embed.shape[1])
    out_dim = int(_need(sd, "encoder.conv_out.weight").shape[0])
    dec_g2 = int(_need(sd, "decoder.positional_embedding").shape[0]) - 1
    if dec_g2 != g2:
        raise CheckpointMismatchError(f"decoder.positional_embedding ({dec_g2 + 1} rows) and "
                                      f"encoder.positional_embedding ({g2 + 1} rows) disagree on the grid")

    mode = vq.get("quantize_mode", "vq")
    if mode not in ("vq", "vae"):
        raise ValueError(f"config model.vq_model.quantize_mode={mode!r} is not supported (vq, vae)")
    has_codebook = "quantize.embedding.weight" in sd
    if mode == "vq" and not has_codebook:
        raise CheckpointMismatchError("config quantize_mode='vq' but the state dict has no 'quantize.embedding.weight'")
    if mode == "vae" and has_codebook:
        raise CheckpointMismatchError("config quantize_mode='vae' but the state dict has 'quantize.embedding.weight'")
    expected_out = 2 * token_size if mode == "vae" else token_size
    if out_dim != expected_out:
        raise CheckpointMismatchError(f"encoder.conv_out.weight has {out_dim} output channels, expected {expected_out} "
                                      f"for quantize_mode={mode!r} and token size {token_size} "
                                      "(from decoder.decoder_embed.weight)")

    legacy_head = "decoder.ffn.2.weight" in sd
    pixel_keys = sorted(k for k in sd if k.startswith(("pixel_decoder.", "pixel_quantize.")))
    finetune = bool(vq.get("finetune_decoder", True))
    pixel_decoder = None
    if legacy_head:
        dec_p = int(vq.get("vit_dec_patch_size", enc_p))
        if finetune and not pixel_keys:
            raise CheckpointMismatchError("legacy TiTok with finetune_decoder=True (the default) needs the "
                                          "MaskGIT-VQGAN 'pixel_decoder.*' and 'pixel_quantize.embedding.weight' keys")
        if pixel_keys:
            from ..models.maskgit_vqgan import vqgan_channels_from_state_dict

            channels, nres, zc = vqgan_channels_from_state_dict(sd, "pixel_decoder.")
            pixel_decoder = {"channels": channels, "num_res_blocks": nres, "z_channels": zc}
    else:
        ffn = _need(sd, "decoder.ffn.0.weight")
        p2 = int(ffn.shape[0]) // 3
        dec_p = int(round(p2 ** 0.5))
        if dec_p * dec_p * 3 != int(ffn.shape[0]):
            raise CheckpointMismatchError(f"decoder.ffn.0.weight {tuple(ffn.shape)}: output channels are not p*p*3")
        if pixel_keys:
            raise CheckpointMismatchError(f"pixel-head TiTok with unexpected MaskGIT-VQGAN keys: {pixel_keys[:6]}")
    if dec_p * grid != image_size:
        raise CheckpointMismatchError(f"decoder patch size {dec_p} x grid {grid} != image size {image_size}")

    legacy = True if one_d_piece else bool(vq.get("is_legacy", True))
    kwargs: dict[str, Any] = dict(
        image_size=image_size, enc_patch_size=enc_p, dec_patch_size=dec_p, enc_size=None, dec_size=None,
        enc_width=enc_w, enc_depth=_depth(sd, "encoder"), enc_heads=_heads(enc_w, "encoder"),
        dec_width=dec_w, dec_depth=_depth(sd, "decoder"), dec_heads=_heads(dec_w, "decoder"),
        num_tokens=num_tokens, codebook_dim=token_size, quantizer=mode, legacy_readout=legacy,
        decoder_head="proxy" if legacy_head else "pixel", pixel_decoder=pixel_decoder,
        commitment_weight=float(vq.get("commitment_cost", 0.25)), tail_drop=one_d_piece)
    if mode == "vq":
        kwargs["codebook_size"] = int(sd["quantize.embedding.weight"].shape[0])
        kwargs["l2_norm"] = bool(vq.get("use_l2_norm", False))
    if "decoder.text_guidance_proj.weight" in sd:
        kwargs["text_dim"] = int(sd["decoder.text_guidance_proj.weight"].shape[1])
        kwargs["text_len"] = int(_need(sd, "decoder.text_guidance_positional_embedding").shape[0])
    return kwargs


def _merge_vqgan(sd: dict, vqgan_weights) -> dict:
    """Add a MaskGIT-VQGAN checkpoint's codebook and decoder as ``pixel_*`` keys (what the official
    scripts do to decode a stage-1 checkpoint); its encoder is not needed."""
    from ..checkpoint import load_state_dict_file

    extra = load_state_dict_file(vqgan_weights)
    clash = sorted(k for k in sd if k.startswith(("pixel_decoder.", "pixel_quantize.")))
    if clash:
        raise CheckpointMismatchError(f"vqgan_weights given but the checkpoint already has {clash[:4]}")
    added = {"pixel_" + k: v for k, v in extra.items() if k.startswith(("decoder.", "quantize."))}
    if "pixel_quantize.embedding.weight" not in added:
        raise CheckpointMismatchError(f"{vqgan_weights} is not a MaskGIT-VQGAN checkpoint: no 'quantize.embedding.weight'")
    return {**sd, **added}


def _no_extra(kw: dict) -> None:
    if kw:
        raise TypeError(f"the TiTok converters take no options {sorted(kw)} (only vqgan_weights=); "
                        "architecture and settings come from the checkpoint and its config.json")


def _zoo_format(sd, config: Mapping, source: str):
    """A folder already converted by the zoo (``save_pretrained``: config has ``tokenizer_class``)."""
    from ..config_names import constructor_kwargs
    from ..models.titok import TiTok

    if config["tokenizer_class"] != TiTok.__name__:
        raise ValueError(f"{source} holds a zoo {config['tokenizer_class']}, not a TiTok")
    kwargs = constructor_kwargs(config, source)
    with parameters_on_meta():
        model = TiTok(**kwargs)
    load_state_dict_strict(model, sd, source=source)
    return model.eval()


def _convert(sd, config, one_d_piece: bool, source: str, vqgan_weights=None):
    from ..models.titok import TiTok

    if sd is None:
        raise ValueError("the official TiTok converter needs a state dict (model.safetensors)")
    if isinstance(config, Mapping) and "tokenizer_class" in config:
        return _zoo_format(sd, config, source)
    if isinstance(sd.get("state_dict"), Mapping):
        sd = sd["state_dict"]
    sd = dict(sd)
    if vqgan_weights is not None:
        sd = _merge_vqgan(sd, vqgan_weights)
        config = {**config, "model": {**config["model"], "vq_model": {**_vq_config(config), "finetune_decoder": True}}} \
            if config and "model" in config else config
    with parameters_on_meta():
        model = TiTok(**titok_kwargs_from_official(sd, config, one_d_piece=one_d_piece))
    mapped = map_official_keys(sd)
    try:
        load_state_dict_strict(model, mapped, source=source)
    except CheckpointMismatchError as e:
        missing = sorted(_official_name(k) for k in set(model.state_dict()) - set(mapped))
        hint = f"\n  missing under their official names: {', '.join(missing[:12])}" if missing else ""
        raise CheckpointMismatchError(f"{e}{hint}") from None
    return model.eval()


def _official_name(key: str) -> str:
    """Zoo key -> the official key it is loaded from (inverse of :func:`map_official_keys`)."""
    m = re.match(r"^(encoder|decoder)\.transformer\.blocks\.(\d+)\.(.*)$", key)
    if m:
        rest = m.group(3)
        for old, rep in _BLOCK_RENAMES:
            if rest.startswith(rep):
                rest = old + rest[len(rep):]
                break
        return f"{m.group(1)}.transformer.{m.group(2)}.{rest}"
    if key == "encoder.latent_tokens":
        return "latent_tokens"
    return key.replace("encoder.patch_embed.proj.", "encoder.patch_embed.")


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """:class:`~zoo.models.titok.TiTok` -> state dict with the official key names (tensors shared)."""
    return {_official_name(k): v for k, v in model.state_dict().items()}


def to_official_config(model) -> dict[str, Any]:
    """The official ``config.json`` (``model.vq_model`` section, ``model.type`` for One-D-Piece and the
    crop size) that :func:`convert_titok` reads back to ``model``'s architecture. ViT sizes are named
    by width (small 512, base 768, large 1024; the depth is in the weights). Raises ``ValueError``
    for what the official code cannot express (FSQ, widths without an official size)."""
    from ..models.titok_blocks import VIT_SIZES

    if model.quantizer_mode == "fsq":
        raise ValueError("FSQ TiTok has no official layout")
    names = {w: n for n, (w, _, _) in VIT_SIZES.items()}

    def size(width: int, part: str) -> str:
        if width not in names:
            raise ValueError(f"{part} width {width} has no official ViT size ({sorted(names)})")
        return names[width]

    vq: dict[str, Any] = dict(
        quantize_mode="vae" if model.quantize is None else "vq", token_size=model.codebook_dim,
        vit_enc_model_size=size(model.encoder.width, "encoder"), vit_dec_model_size=size(model.decoder.width, "decoder"),
        vit_enc_patch_size=int(model.encoder.patch_embed.proj.kernel_size[0]),
        vit_dec_patch_size=int(model.decoder.patch_size), num_latent_tokens=model.num_tokens,
        finetune_decoder=model.pixel_decoder is not None, is_legacy=bool(model.encoder.legacy_readout))
    if model.quantize is not None:
        vq.update(codebook_size=int(model.quantize.codebook_size), use_l2_norm=bool(model.quantize.l2_norm),
                  commitment_cost=float(model.quantize.beta))
    section: dict[str, Any] = {"vq_model": vq}
    if model.tail_drop:
        section["type"] = "one_d_piece"
    return {"model": section, "dataset": {"preprocessing": {"crop_size": int(model.image_size)}}}


@register_converter("titok")
def convert_titok(state_dict, config, *, config_path=None, files=None, arch=None, vqgan_weights=None, **kw):
    """bytedance TiTok / TA-TiTok (and One-D-Piece, detected from ``model.type``) -> TiTok.

    vqgan_weights: optional MaskGIT-VQGAN checkpoint (``maskgit-vqgan-imagenet-f16-256.bin``) merged
    into a stage-1 legacy checkpoint so that it decodes to pixels.
    """
    _no_extra(kw)
    model_type = ((config or {}).get("model") or {}).get("type") if isinstance(config, Mapping) else None
    return _convert(state_dict, config, model_type == "one_d_piece", source=str(config_path or "official TiTok"),
                    vqgan_weights=vqgan_weights)


@register_converter("onedpiece")
def convert_onedpiece(state_dict, config, *, config_path=None, files=None, arch=None, vqgan_weights=None, **kw):
    """turing-motors One-D-Piece (legacy TiTok weights, tail-token drop, always legacy read-out)."""
    _no_extra(kw)
    return _convert(state_dict, config, True, source=str(config_path or "official One-D-Piece"),
                    vqgan_weights=vqgan_weights)
