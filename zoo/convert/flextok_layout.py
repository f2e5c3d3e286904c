"""Zoo :class:`~zoo.models.flextok.FlexTok` -> the official FlexTok layout (the inverse of
:mod:`zoo.convert.flextok`): the state dict with apple/ml-flextok key names and the Hydra
``config.json`` that the official ``FlexTokFromHub`` (and :func:`zoo.convert.flextok.convert_flextok`)
reads. Module names are those of the released configs (``enc_patch_emb``, ``dec_transformer``, ...).
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["to_official_state_dict", "to_official_config", "RELEASED_VAE"]

#: ``vae.hf_hub_path`` of the released FlexTok configs (the stage-0 VAE's own hub repo)
RELEASED_VAE = "EPFL-VILAB/flextok_vae_c16"
_E, _D = "encoder.module_dict.", "decoder.module_dict."
_P = "flextok.model."


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """Official FlexTok key names (``vae.vae.*``, ``encoder.module_dict.*``, ``decoder.module_dict.*``);
    fused zoo weights are split back (``attn.qkv`` -> ``wq/wk/wv``, gated ``mlp.fc1`` -> ``fc1/fc3``)."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}

    def linear(zoo: str, official: str) -> None:
        for kind in ("weight", "bias"):
            if f"{zoo}.{kind}" in sd:
                out[f"{official}.{kind}"] = sd[f"{zoo}.{kind}"]

    def block(zoo: str, official: str) -> None:
        for kind in ("weight", "bias"):
            if f"{zoo}.attn.qkv.{kind}" in sd:
                for name, part in zip("qkv", sd[f"{zoo}.attn.qkv.{kind}"].chunk(3)):
                    out[f"{official}.attn.w{name}.{kind}"] = part
            if f"{zoo}.mlp.fc1.{kind}" in sd:
                out[f"{official}.mlp.fc1.{kind}"], out[f"{official}.mlp.fc3.{kind}"] = sd[f"{zoo}.mlp.fc1.{kind}"].chunk(2)
        linear(f"{zoo}.attn.proj", f"{official}.attn.proj")
        linear(f"{zoo}.mlp.fc2", f"{official}.mlp.fc2")

    for key, value in sd.items():
        if key.startswith("vae."):
            out["vae.vae." + key[len("vae."):]] = value
    linear("encoder.patch_embed", f"{_E}enc_patch_emb.patch_proj")
    out[f"{_E}enc_posemb_module.posembs"] = sd["encoder.pos_embed"].permute(2, 0, 1)[None]
    out[f"{_E}enc_register_module.registers"] = sd["encoder.registers"]
    for i in range(len(model.encoder.trunk.blocks)):
        block(f"encoder.trunk.blocks.{i}", f"{_E}enc_transformer.blocks.{i}")
    linear("encoder.head", f"{_E}enc_to_latents.proj")
    linear("decoder.token_proj", f"{_D}dec_from_latents.proj")
    if "decoder.register_pos" in sd:
        out[f"{_D}dec_registers_posemb_module.posembs"] = sd["decoder.register_pos"].t()[None, None]
    out[f"{_D}dec_nested_dropout.dropout_mask_token"] = sd["decoder.mask_token"]
    if "decoder.null_cond" in sd:
        out[f"{_D}dec_latent_dropout.nullcond"] = sd["decoder.null_cond"]
    linear("decoder.patch_embed", f"{_D}dec_noise_patch_emb.patch_proj")
    out[f"{_D}dec_patches_posemb_module.posembs"] = sd["decoder.pos_embed"].permute(2, 0, 1)[None]
    linear("decoder.time_embed.mlp.0", f"{_D}dec_time_embedder.mlp.0")
    linear("decoder.time_embed.mlp.2", f"{_D}dec_time_embedder.mlp.2")
    for i in range(len(model.decoder.blocks)):
        block(f"decoder.blocks.{i}", f"{_D}dec_transformer.blocks.{i}")
        linear(f"decoder.blocks.{i}.mod.adaLN_modulation.1", f"{_D}dec_transformer.blocks.{i}.adaLN_modulation.1")
    linear("decoder.final.mod.adaLN_modulation.1", f"{_D}dec_to_patches.adaLN_modulation.1")
    linear("decoder.final.proj", f"{_D}dec_to_patches.proj")
    return out


def _mlp_ratio(dim: int, hidden: int | None) -> float:
    """FlexTok's ``mlp_ratio`` whose gated MLP width ``int(2 * int(dim * ratio) / 3)`` is ``hidden``."""
    for ratio in (4.0, hidden * 1.5 / dim if hidden else 4.0):
        if hidden is None or int(2 * int(dim * ratio) / 3) == hidden:
            return ratio
    raise ValueError(f"MLP width {hidden} at dim {dim} has no FlexTok mlp_ratio")


def _trunk(prefix: str, dim: int, depth: int, head_dim: int, hidden: int | None, bias: bool) -> dict[str, Any]:
    return {"_target_": _P + "trunks.transformers.FlexTransformer", "input_seq_read_key": f"{prefix}_packed_seq",
            "output_seq_write_key": f"{prefix}_packed_seq", "dim": dim, "depth": depth, "head_dim": head_dim,
            "mlp_ratio": _mlp_ratio(dim, hidden), "qkv_bias": bias, "proj_bias": bias, "mlp_bias": bias,
            "gated_mlp": True, "qk_norm": True, "weight_init_style": "xavier", "block_mask_read_key": f"{prefix}_block_mask"}


def _per_sample(read: str, write: str, op: str) -> dict[str, Any]:
    return {"_target_": _P + "utils.dict_ops.PerSampleOp", "read_key": read, "write_key": write,
            "per_sample_op": {"_target_": _P + "utils.dict_ops." + op, "_partial_": True}}


def _noise_module(sampling: str, mode_scale: float) -> dict[str, Any]:
    ln, strat = {"logit_normal": (True, False), "logit_normal_stratified": (True, True), "mode": (False, False),
                 "uniform": (False, False)}[sampling]
    return {"_target_": "flextok.flow_matching.noise_modules.MinRFNoiseModule", "clean_images_read_key": "vae_latents",
            "noised_images_write_key": "noised_latents", "timesteps_write_key": "timesteps", "sigmas_write_key": "sigmas",
            "ln": ln, "stratisfied": strat, "mode_scale": float(mode_scale), "noise_write_key": "flow_noise"}


def to_official_config(model, vae_hub_path: str | None = RELEASED_VAE) -> dict[str, Any]:
    """The official Hydra ``config.json`` of ``model`` (every architectural setting explicit).

    vae_hub_path: ``vae.hf_hub_path`` (the VAE's own repo or folder; None leaves it out, which the
    zoo converter reads as the SDXL-like FlexTok VAE). Raises ``ValueError`` for settings the
    official code cannot express (attention scale other than muP, norm eps other than 1e-5, time
    embedding period other than 256, REPA heads are training-only and left out).
    """
    c = model.config
    for key, want in (("attn_scale", "mup"), ("norm_eps", 1e-5), ("time_max_period", 256.0)):
        if c.get(key, want) != want:
            raise ValueError(f"FlexTok {key}={c[key]!r} has no official setting (the official code uses {want!r})")
    lc, dim_e, dim_d, patch = model.latent_channels, c["enc_width"], c["dec_width"], [model.patch_size] * 2
    grid, levels, bias = [int(v) for v in model.pos_grid], list(c["fsq_levels"]), bool(c["bias"])
    vae = {"_target_": "flextok.vae_wrapper.StableDiffusionVAE", "images_read_key": "rgb",
           "vae_latents_read_key": "vae_latents_reconst", "vae_latents_write_key": "vae_latents",
           "images_reconst_write_key": "rgb_reconst", "vae_kl_loss_write_key": "kl_loss", "latent_channels": lc,
           "scaling_factor": float(model.vae_scale), "sample_posterior": bool(model.vae_sample_posterior), "frozen": True}
    if vae_hub_path is not None:
        vae["hf_hub_path"] = vae_hub_path

    def patch_emb(read: str, write: str, n: str, dim: int) -> dict[str, Any]:
        return {"_target_": _P + "preprocessors.patching.PatchEmbedder", "input_tensor_list_read_key": read,
                "patches_list_write_key": write, "n_patches_write_key": n, "channels_in": lc, "dim": dim,
                "patch_sizes": patch, "flatten_patches": False}

    def posemb(key: str, dim: int, sizes: list[int], kind: str, scaling: str) -> dict[str, Any]:
        return {"_target_": _P + "utils.posembs.PositionalEmbeddingAdder", "read_key": key, "write_key": key,
                "dim": dim, "max_sizes": sizes, "posemb_type": kind, "posemb_scaling": scaling}

    def packer(prefix: str, keys: list[str], mode: str, **extra) -> dict[str, Any]:
        return {"_target_": _P + "preprocessors.flex_seq_packing.BlockWiseSequencePacker", "input_list_read_keys": keys,
                "packed_seq_write_key": f"{prefix}_packed_seq", "block_mask_write_key": f"{prefix}_block_mask",
                "inner_packed_shapes_write_key": f"{prefix}_ps_inner",
                "outer_packed_shapes_write_key": f"{prefix}_ps_outer", "mask_mode": mode, "pad_to_multiple": 128,
                **extra}

    def unpacker(prefix: str, keys: list[str]) -> dict[str, Any]:
        return {"_target_": _P + "postprocessors.seq_unpacking.SequenceUnpacker",
                "packed_seq_read_key": f"{prefix}_packed_seq", "inner_seq_write_keys": keys,
                "inner_packed_shapes_read_key": f"{prefix}_ps_inner", "outer_packed_shapes_read_key": f"{prefix}_ps_outer"}

    enc = {
        "enc_channels_to_last": _per_sample("vae_latents", "vae_latents_bhwc", "channels_first_to_last"),
        "enc_patch_emb": patch_emb("vae_latents_bhwc", "enc_vae_latents_patched", "enc_n_patches", dim_e),
        "enc_posemb_module": posemb("enc_vae_latents_patched", dim_e, grid, "sincos", model.pos_scaling),
        "enc_register_module": {"_target_": _P + "preprocessors.registers.Registers1D",
                                "input_tensor_list_read_key": "enc_vae_latents_patched",
                                "register_sizes_read_write_key": "register_sizes", "registers_write_key": "enc_registers",
                                "dim": dim_e, "n_min": 1, "n_max": model.num_registers, "size_sampling_mode": "uniform",
                                "ordering_mode": "nested"},
        "enc_seq_packer": packer("enc", ["enc_vae_latents_patched", "enc_registers"], "causal_last"),
        "enc_transformer": _trunk("enc", dim_e, c["enc_depth"], c["enc_head_dim"], c["enc_mlp_hidden"], bias),
        "enc_unpacker": unpacker("enc", ["enc_vae_latents_patched", "enc_registers"]),
        "enc_to_latents": {"_target_": _P + "postprocessors.heads.LinearHead", "read_key": "enc_registers",
                           "write_key": "enc_registers", "dim": dim_e, "dim_out": len(levels), "use_mup_readout": False,
                           "weight_init_style": "zero", **({} if c["enc_head_norm"] else {"norm_layer": None})},
    }
    null = "LearnedNullCond" if c["null_cond"] == "learned" else "ZeroNullCond"
    dec = {"dec_from_latents": {"_target_": _P + "preprocessors.linear.LinearLayer", "read_key": "quants",
                                "write_key": "dec_quants", "dim_in": len(levels), "dim": dim_d}}
    if c["register_pos"]:
        dec["dec_registers_posemb_module"] = posemb("dec_quants", dim_d, [model.num_registers], "learnable_sum",
                                                    "absolute")
    dec.update({
        "dec_nested_dropout": {"_target_": _P + "preprocessors.token_dropout.MaskedNestedDropout",
                               "read_write_key": "dec_quants", "dim": dim_d, "eval_keep_k_read_key": "eval_keep_k",
                               "train_keep_k_write_key": "train_keep_k", "size_sampling_mode": c["nested_dropout"]},
        "dec_latent_dropout": {"_target_": _P + "preprocessors.nullcond." + null, "read_write_key": "dec_quants",
                               "dim": dim_d, "eval_drop_flag_read_key": "eval_dropout_mask",
                               "dropout_prob": float(c["cfg_dropout"]),
                               "replace_with_single_token": bool(c["null_single_token"])},
        "dec_noise_channels_to_last": _per_sample("noised_latents", "noised_latents_bhwc", "channels_first_to_last"),
        "dec_noise_patch_emb": patch_emb("noised_latents_bhwc", "dec_patches", "dec_n_patches", dim_d),
        "dec_patches_posemb_module": posemb("dec_patches", dim_d, grid, "sincos", model.pos_scaling),
        "dec_seq_packer": packer("dec", ["dec_patches", "dec_quants"], "full", emb_packing_fn_write_key="adaLN_packing_fn",
                                 per_subseq_embs=c["adaln_segments"] == 2),
        "dec_time_embedder": {"_target_": _P + "preprocessors.time_embedding.TimestepEmbedder",
                              "timesteps_read_key": "timesteps", "time_embedding_write_key": "temb", "dim": dim_d,
                              "frequency_embedding_size": c["time_freq_dim"], "max_timestep": float(c["max_timestep"])},
        "dec_transformer": {**_trunk("dec", dim_d, c["dec_depth"], c["dec_head_dim"], c["dec_mlp_hidden"], bias),
                            "adaLN_emb_read_key": "temb", "adaLN_packing_fn_read_key": "adaLN_packing_fn",
                            "adaLN_expansion": c["adaln_segments"]},
        "dec_unpacker": unpacker("dec", ["dec_patches", "dec_quants"]),
        "dec_to_patches": {"_target_": _P + "postprocessors.heads.ToPatchesLinearHead", "read_key": "dec_patches",
                           "write_key": "vae_latents_reconst_bhwc", "dim": dim_d, "channels_out": lc,
                           "patch_sizes": patch, "use_mup_readout": False, "weight_init_style": "zero",
                           "adaLN_emb_read_key": "temb"},
        "dec_channels_to_first": _per_sample("vae_latents_reconst_bhwc", "vae_latents_reconst", "channels_last_to_first"),
    })
    wrapper = _P + "utils.wrappers.SequentialModuleDictWrapper"
    return {"_target_": "flextok.flextok_wrapper.FlexTok", "vae": vae,
            "encoder": {"_target_": wrapper, "module_dict": enc}, "decoder": {"_target_": wrapper, "module_dict": dec},
            "regularizer": {"_target_": "flextok.regularizers.quantize_fsq.FSQ", "latents_read_key": "enc_registers",
                            "quants_write_key": "quants", "tokens_write_key": "tokens", "levels": levels,
                            "drop_quant_p": float(c["fsq_drop_quant_p"])},
            "flow_matching_noise_module": _noise_module(c["timestep_sampling"], c["timestep_mode_scale"]),
            "pipeline": {"_target_": "flextok.flow_matching.pipelines.MinRFPipeline", "_partial_": True,
                         "latents_read_key": "quants", "timesteps_read_key": "timesteps",
                         "noised_images_read_key": "noised_latents", "reconst_write_key": "vae_latents_reconst",
                         "out_channels": lc}}
