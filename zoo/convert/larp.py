"""Official LARP tokenizer checkpoints -> :class:`zoo.models.video.Video1DTokenizer`.

Input: the ``model.safetensors`` state dict and ``config.json`` that LARP's
``PyTorchModelHubMixin`` writes (``hywang66/LARP-L-long-tokenizer``): the config holds the
constructor arguments of the official ``LARPTokenizer`` (nested ``bottleneck`` / ``prior_model``
specs, widths, depths, patch sizes, position-embedding flags).

Mapping (official -> zoo):
- ``x_embedder.proj`` -> ``patch_embed.proj``; ``encoder.blocks.*`` / ``decoder.blocks.*`` (timm
  blocks, same names; they have no qkv bias, so a zero ``attn.qkv.bias`` is added);
- encoder patch positions (the fixed 3D sin-cos buffer ``encoder_patch_pe`` or the learned
  ``encoder_{t,h}_embed`` / ``encode_w_embed``, plus an optional token-type vector) ->
  ``encoder_pos.{time,row,col}``: LARP's 3D table is a sum of a time term and a 2D term that is
  itself a concatenation of row and column parts, so it splits exactly into per-axis factors
  (checked; a non-separable table raises);
- ``encoder_latent_query_embed`` (+ token type) -> ``latent_queries``; ``bottleneck.in_linear`` ->
  ``quant_proj``; ``bottleneck.regularizer.embedding`` -> ``quantizer.embedding`` (8192 x 16,
  l2-normalised; LARP samples codes at temperature 0.03 in training, the zoo does so too and
  takes the nearest code at inference, as LARP's ``--det`` evaluation); ``bottleneck.out_linear``
  -> ``post_quant_proj``; ``decoder_latent_pe`` (+ token type) -> ``latent_pos``;
- decoder patch queries (``decoder_patch_query_embed`` or the learned factors, + token type)
  -> ``mask_token`` + ``decoder_pos``; ``final_layer.norm_final`` / ``.linear`` -> ``decoder_norm`` / ``head``.

The inverse (:func:`to_official_state_dict`, :func:`to_official_config`) writes the layout of the
released model: fixed patch position tables (``encoder_patch_pe``, ``decoder_patch_query_embed``,
the per-axis factors summed back), learned latent queries, a decoder patch token-type vector.

Dropped on purpose: ``prior_model.*`` (LARP's GPTC prior is a training-time loss; inference
never uses it). The model is built with ``prior=False``, ``enc_norm=False`` (LARP has no norm
before the bottleneck) and ``signed_pixels=False`` (LARP works on [0, 1] pixels).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..checkpoint import CheckpointMismatchError, load_state_dict_strict, parameters_on_meta
from . import register_converter

__all__ = ["convert_larp", "larp_kwargs_from_official", "split_factorized_pos", "to_official_state_dict",
           "to_official_config"]


def _need(sd: Mapping, key: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointMismatchError(f"LARP checkpoint lacks {key!r} (got {len(sd)} keys, e.g. {sorted(sd)[:5]})")
    return sd[key]


def split_factorized_pos(pos: torch.Tensor, grid: tuple[int, int, int], atol: float = 1e-4) -> tuple[torch.Tensor, ...]:
    """A ``[T*H*W, D]`` table that is a sum of per-axis terms -> ``(time [T, D], row [H, D], col [W, D])``.

    Raises ``ValueError`` when the table is not additively separable (within ``atol``).
    """
    t, h, w = grid
    p = pos.reshape(t, h, w, -1).double()
    if pos.is_meta:  # shapes only (zoo.checkpoint.load_on_meta): nothing to check
        return p[:, 0, 0].float(), p[0, :, 0].float(), p[0, 0, :].float()
    time = p[:, 0, 0]
    row = p[0, :, 0] - p[0, 0, 0]
    col = p[0, 0, :] - p[0, 0, 0]
    rebuilt = time[:, None, None] + row[None, :, None] + col[None, None, :]
    err = float((rebuilt - p).abs().max())
    if err > atol:
        raise ValueError(f"position table is not a sum of time, row and column terms (max error {err:.3g})")
    return time.float(), row.float(), col.float()


def larp_kwargs_from_official(config: Mapping[str, Any], sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Video1DTokenizer keyword arguments for an official LARP config (checked against the weights)."""
    c = dict(config)
    for key in ("encoder_name", "decoder_name"):
        name = str(c.get(key) or "none").lower()
        if name not in ("none", "no", "null", "", str(c.get("transformer_name", "transformer_encoder_parallel"))):
            raise ValueError(f"unsupported LARP {key} {c[key]!r}")
    if str(c.get("transformer_name", "transformer_encoder_parallel")) != "transformer_encoder_parallel":
        raise ValueError(f"unsupported LARP transformer {c['transformer_name']!r} (only transformer_encoder_parallel)")
    tp, p = int(c.get("temporal_patch_size", 4)), int(c.get("patch_size", 8))
    if (int(c.get("decoder_temporal_patch_size", tp)), int(c.get("decoder_patch_size", p))) != (tp, p):
        raise ValueError("LARP decoders with a patch size different from the encoder's are not supported")
    if tp < 2:
        raise ValueError("LARP checkpoints with temporal_patch_size 1 (per-frame patches) are not supported")
    bottleneck = c["bottleneck"]["args"]
    if str(bottleneck.get("norm") or "none").lower() not in ("none", "no"):
        raise ValueError(f"unsupported LARP bottleneck norm {bottleneck['norm']!r}")
    reg = bottleneck["regularizer"]
    if reg["name"] != "vq" or not reg["args"].get("l2_normalized", False):
        raise ValueError(f"unsupported LARP regularizer {reg['name']!r} (only the l2-normalised 'vq')")
    ra = reg["args"]
    stochastic = float(ra.get("stochastic_temperature", 1.0)) if ra.get("stochastic") else 0.0
    if stochastic < 0:
        raise ValueError("LARP checkpoints with a learned VQ temperature are not supported")
    heads_e, heads_d = int(c.get("encoder_num_heads", 12)), int(c.get("decoder_num_heads", 12))
    kwargs = dict(
        input_size=[int(c.get("frame_num", 16)), int(c.get("input_size", 128)), int(c.get("input_size", 128))],
        tubelet=tp, patch_size=p, num_tokens=int(c.get("bottleneck_token_num", 1024)),
        enc_width=int(c.get("encoder_hidden_size", 768)), enc_depth=int(c.get("encoder_depth", 6)),
        enc_heads=heads_e, dec_width=int(c.get("decoder_hidden_size", 768)),
        dec_depth=int(c.get("decoder_depth", 6)), dec_heads=heads_d,
        quantizer="vq", codebook_dim=int(bottleneck["bottleneck_dim"]), codebook_size=int(ra["codebook_size"]),
        quantizer_kwargs={"stochastic_temperature": stochastic, "beta": float(ra.get("commitment_loss_weight", 0.25))},
        recon_loss="l1", prior=False, signed_pixels=False, enc_norm=False)
    emb = _need(sd, "bottleneck.regularizer.embedding.weight")
    if tuple(emb.shape) != (kwargs["codebook_size"], kwargs["codebook_dim"]):
        raise CheckpointMismatchError(f"LARP codebook is {tuple(emb.shape)}, config says "
                                      f"{(kwargs['codebook_size'], kwargs['codebook_dim'])}")
    for part, key in (("encoder", "enc_depth"), ("decoder", "dec_depth")):
        depth = len({k.split(".")[2] for k in sd if k.startswith(f"{part}.blocks.")})
        if depth != kwargs[key]:
            raise CheckpointMismatchError(f"LARP {part} has {depth} blocks, config says {kwargs[key]}")
    return kwargs


def _axis_tables(sd: Mapping, table_key: str, factor_keys: tuple[str, str, str],
                 grid: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
    if all(k in sd for k in factor_keys):
        t, h, w = (sd[k].reshape(n, -1) for k, n in zip(factor_keys, grid))
        return t, h, w
    return split_factorized_pos(_need(sd, table_key).reshape(-1, _need(sd, table_key).shape[-1]), grid)


def map_larp_state_dict(sd: Mapping[str, torch.Tensor], kwargs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official LARP keys -> Video1DTokenizer keys (see the module docstring)."""
    t, h, w = kwargs["input_size"]
    grid = (t // kwargs["tubelet"], h // kwargs["patch_size"], w // kwargs["patch_size"])
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith(("encoder.blocks.", "decoder.blocks.")):
            out[k] = v
            if k.endswith("attn.qkv.weight") and k.replace("weight", "bias") not in sd:
                out[k.replace("weight", "bias")] = v.new_zeros(v.shape[0])
    out["patch_embed.proj.weight"] = _need(sd, "x_embedder.proj.weight")
    out["patch_embed.proj.bias"] = _need(sd, "x_embedder.proj.bias")

    time, row, col = _axis_tables(sd, "encoder_patch_pe",
                                  ("encoder_t_embed", "encoder_h_embed", "encode_w_embed"), grid)
    if "encoder_patch_token_type_embed" in sd:
        time = time + sd["encoder_patch_token_type_embed"].reshape(1, -1)
    out.update({"encoder_pos.time": time, "encoder_pos.row": row, "encoder_pos.col": col})

    queries = _need(sd, "encoder_latent_query_embed").reshape(kwargs["num_tokens"], -1)
    if "encoder_latent_query_token_type_embed" in sd:
        queries = queries + sd["encoder_latent_query_token_type_embed"].reshape(1, -1)
    out["latent_queries"] = queries

    out["quant_proj.weight"] = _need(sd, "bottleneck.in_linear.weight")
    out["quant_proj.bias"] = _need(sd, "bottleneck.in_linear.bias")
    out["quantizer.embedding.weight"] = _need(sd, "bottleneck.regularizer.embedding.weight")
    out["post_quant_proj.weight"] = _need(sd, "bottleneck.out_linear.weight")
    out["post_quant_proj.bias"] = _need(sd, "bottleneck.out_linear.bias")

    latent_pos = _need(sd, "decoder_latent_pe").reshape(kwargs["num_tokens"], -1)
    if "decoder_latent_token_type_embed" in sd:
        latent_pos = latent_pos + sd["decoder_latent_token_type_embed"].reshape(1, -1)
    out["latent_pos"] = latent_pos

    dtime, drow, dcol = _axis_tables(sd, "decoder_patch_query_embed",
                                     ("decoder_t_embed", "decoder_h_embed", "decoder_w_embed"), grid)
    token_type = sd.get("decoder_patch_query_token_type_embed")
    out["mask_token"] = (token_type.reshape(-1) if token_type is not None else dtime.new_zeros(dtime.shape[-1]))
    out.update({"decoder_pos.time": dtime, "decoder_pos.row": drow, "decoder_pos.col": dcol})
    out["decoder_norm.weight"] = _need(sd, "final_layer.norm_final.weight")
    out["decoder_norm.bias"] = _need(sd, "final_layer.norm_final.bias")
    out["head.weight"] = _need(sd, "final_layer.linear.weight")
    out["head.bias"] = _need(sd, "final_layer.linear.bias")

    known = {"x_embedder.", "encoder_", "encode_w_embed", "decoder_", "bottleneck.", "final_layer.", "prior_model.",
             "encoder.blocks.", "decoder.blocks."}
    unknown = [k for k in sd if not k.startswith(tuple(known))]
    if unknown:
        raise CheckpointMismatchError(f"LARP checkpoint has keys this converter does not know: {unknown[:10]}")
    return {k: v.contiguous() for k, v in out.items()}


@register_converter("larp")
def convert_larp(state_dict, config, *, config_path=None, files=None, arch=None, **kw):
    """Official LARP tokenizer (state dict + config.json) -> Video1DTokenizer in eval mode."""
    from ..models.video import Video1DTokenizer

    if state_dict is None or config is None:
        raise ValueError("the LARP converter needs both the state dict (model.safetensors) and config.json")
    if "tokenizer_class" in config:  # an already converted zoo-format copy
        from ..api import tokenizer_class
        from ..config_names import constructor_kwargs

        model = tokenizer_class(config["tokenizer_class"])(**constructor_kwargs(config, "zoo-format LARP config"))
        return load_state_dict_strict(model, state_dict, source="zoo-format LARP checkpoint").eval()
    # checkpoints saved from torch.compile / DDP wrappers carry "_orig_mod." / "module." prefixes
    state_dict = {k.replace("_orig_mod.", "").removeprefix("module."): v for k, v in state_dict.items()}
    kwargs = larp_kwargs_from_official(config, state_dict)
    with parameters_on_meta():
        model = Video1DTokenizer(**{**kwargs, **kw})
    load_state_dict_strict(model, map_larp_state_dict(state_dict, kwargs), source="official LARP checkpoint")
    return model.eval()


def _axes_sum(prefix: str, sd: Mapping[str, torch.Tensor]) -> torch.Tensor:
    t, h, w = (sd[f"{prefix}.{axis}"] for axis in ("time", "row", "col"))
    return (t[:, None, None] + h[None, :, None] + w[None, None, :]).reshape(1, -1, t.shape[-1])


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """Zoo Video1DTokenizer (LARP settings) -> the official LARP state dict (layout in the module
    docstring). Raises ``ValueError`` for a non-zero attention qkv bias (LARP's blocks have none)."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith(("encoder.blocks.", "decoder.blocks.")):
            if k.endswith("attn.qkv.bias"):
                if not v.is_meta and bool(v.any()):
                    raise ValueError(f"{k}: non-zero qkv bias, which LARP's attention cannot hold")
                continue
            out[k] = v
    d_dec = sd["mask_token"].shape[-1]
    out.update({
        "x_embedder.proj.weight": sd["patch_embed.proj.weight"], "x_embedder.proj.bias": sd["patch_embed.proj.bias"],
        "encoder_patch_pe": _axes_sum("encoder_pos", sd), "encoder_latent_query_embed": sd["latent_queries"],
        "bottleneck.in_linear.weight": sd["quant_proj.weight"], "bottleneck.in_linear.bias": sd["quant_proj.bias"],
        "bottleneck.regularizer.embedding.weight": sd["quantizer.embedding.weight"],
        "bottleneck.out_linear.weight": sd["post_quant_proj.weight"],
        "bottleneck.out_linear.bias": sd["post_quant_proj.bias"],
        "decoder_latent_pe": sd["latent_pos"][None],
        "decoder_patch_query_embed": _axes_sum("decoder_pos", sd),
        "decoder_patch_query_token_type_embed": sd["mask_token"].reshape(1, 1, d_dec),
        "final_layer.norm_final.weight": sd["decoder_norm.weight"], "final_layer.norm_final.bias": sd["decoder_norm.bias"],
        "final_layer.linear.weight": sd["head.weight"], "final_layer.linear.bias": sd["head.bias"]})
    return out


def to_official_config(model) -> dict[str, Any]:
    """The official LARP ``config.json`` (``LARPTokenizer`` constructor arguments) of ``model``; raises
    ``ValueError`` for settings LARP cannot express (a prior is training-only and left out)."""
    c = model.config
    t, h, w = model.input_size
    want = {"quantizer": "vq", "signed_pixels": False, "enc_norm": False}
    bad = [f"{k}={c.get(k)!r}" for k, v in want.items() if c.get(k) != v] + ([f"input {h}x{w}"] if h != w else [])
    if bad:
        raise ValueError(f"no LARP layout for a Video1DTokenizer with {', '.join(bad)} (LARP: {want}, square frames)")
    qk = dict(c.get("quantizer_kwargs") or {})
    temperature = float(qk.get("stochastic_temperature", 0.0))
    return {
        "bottleneck": {"name": "bottleneck", "args": {"bottleneck_dim": int(c["codebook_dim"]), "norm": "none", "regularizer": {
            "name": "vq", "args": {"codebook_size": int(c["codebook_size"]), "l2_normalized": True,
                                   "stochastic": temperature > 0, "stochastic_temperature": temperature,
                                   "commitment_loss_weight": float(qk.get("beta", 0.25))}}}},
        "bottleneck_token_num": int(c["num_tokens"]), "frame_num": t, "input_size": h, "in_channels": 3,
        "temporal_patch_size": model.tubelet, "patch_size": model.patch_size,
        "decoder_temporal_patch_size": model.tubelet, "decoder_patch_size": model.patch_size,
        "encoder_hidden_size": int(c["enc_width"]), "encoder_depth": int(c["enc_depth"]),
        "encoder_num_heads": int(c["enc_heads"]), "decoder_hidden_size": int(c["dec_width"]),
        "decoder_depth": int(c["dec_depth"]), "decoder_num_heads": int(c["dec_heads"]),
        "encoder_name": "none", "decoder_name": "none", "transformer_name": "transformer_encoder_parallel",
        "learned_encoder_patch_pe": False, "learned_encoder_latent_query_embed": True,
        "learned_decoder_latent_pe": False, "learned_decoder_patch_query_embed": False,
        "use_encoder_patch_token_type_embed": False, "use_encoder_latent_query_token_type_embed": False,
        "use_decoder_latent_token_type_embed": False, "use_decoder_patch_query_token_type_embed": True,
        "prior_model": {"name": "none"}}
