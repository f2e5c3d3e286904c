"""The Hydra configuration of a published FlexTok model, written out for the official code.

The checkout carries no model configs (they live in the Hugging Face repos
``EPFL-VILAB/flextok_d*_d*``). :func:`official_flextok_config` writes the published architecture
in that config's layout: encoder / decoder widths 64 x depth with 64-dim heads, gated (SwiGLU)
MLPs, QK-norm, no biases, muP attention scale; 256 nested registers; FSQ levels 8-8-8-5-5-5;
2x2 patches of the 16-channel f8 VAE (the SDXL-like ``flextok_vae_c16`` architecture, built by the
official wrapper from its base config when ``hf_hub_path`` is None); packed sequences padded to
multiples of 128 with materialised masks (the official SDPA fallback, see :mod:`.flextok`).
The VAE scaling factor does not change the computation; it is set to 1.0.
"""
from __future__ import annotations

__all__ = ["official_flextok_config"]

_P = "flextok.model."


def _t(target: str, **kw) -> dict:
    return {"_target_": target, **kw}


def _to_last(read: str, write: str) -> dict:
    return _t(_P + "utils.dict_ops.PerSampleOp", read_key=read, write_key=write,
              per_sample_op=_t(_P + "utils.dict_ops.channels_first_to_last", _partial_=True))


def _patches(read: str, write: str, n_write: str, dim: int, channels: int) -> dict:
    return _t(_P + "preprocessors.patching.PatchEmbedder", input_tensor_list_read_key=read,
              patches_list_write_key=write, n_patches_write_key=n_write, channels_in=channels, dim=dim,
              patch_sizes=[2, 2], flatten_patches=False)


def _sincos(key: str, dim: int, grid: int) -> dict:
    return _t(_P + "utils.posembs.PositionalEmbeddingAdder", read_key=key, write_key=key, dim=dim,
              max_sizes=[grid, grid], posemb_type="sincos", posemb_scaling="absolute")


def _packer(reads: list[str], prefix: str, mask_mode: str, **kw) -> dict:
    return _t(_P + "preprocessors.flex_seq_packing.BlockWiseSequencePacker", input_list_read_keys=reads,
              packed_seq_write_key=f"{prefix}_packed_seq", block_mask_write_key=f"{prefix}_block_mask",
              inner_packed_shapes_write_key=f"{prefix}_ps_inner", outer_packed_shapes_write_key=f"{prefix}_ps_outer",
              mask_mode=mask_mode, pad_to_multiple=128, compile_block_mask=False, return_materialized_mask=True, **kw)


def _trunk(prefix: str, dim: int, depth: int, **kw) -> dict:
    return _t(_P + "trunks.transformers.FlexTransformer", input_seq_read_key=f"{prefix}_packed_seq",
              output_seq_write_key=f"{prefix}_packed_seq", dim=dim, depth=depth, head_dim=64, mlp_ratio=4.0,
              qkv_bias=False, proj_bias=False, mlp_bias=False, gated_mlp=True, qk_norm=True,
              weight_init_style="xavier", block_mask_read_key=f"{prefix}_block_mask", **kw)


def _unpacker(prefix: str, writes: list[str]) -> dict:
    return _t(_P + "postprocessors.seq_unpacking.SequenceUnpacker", packed_seq_read_key=f"{prefix}_packed_seq",
              inner_seq_write_keys=writes, inner_packed_shapes_read_key=f"{prefix}_ps_inner",
              outer_packed_shapes_read_key=f"{prefix}_ps_outer")


def official_flextok_config(enc_depth: int, dec_depth: int, image_size: int = 256, registers: int = 256,
                            latent_channels: int = 16) -> dict:
    """The official Hydra config dict of FlexTok d{enc_depth}-d{dec_depth} (see the module doc)."""
    enc, dec = 64 * enc_depth, 64 * dec_depth
    grid = image_size // 16  # f8 VAE, then 2x2 patches
    levels = [8, 8, 8, 5, 5, 5]
    encoder = {
        "enc_channels_to_last": _to_last("vae_latents", "vae_latents_bhwc"),
        "enc_patch_emb": _patches("vae_latents_bhwc", "enc_vae_latents_patched", "enc_n_patches", enc, latent_channels),
        "enc_posemb_module": _sincos("enc_vae_latents_patched", enc, grid),
        "enc_register_module": _t(_P + "preprocessors.registers.Registers1D",
                                  input_tensor_list_read_key="enc_vae_latents_patched",
                                  register_sizes_read_write_key="register_sizes", registers_write_key="enc_registers",
                                  dim=enc, n_min=registers, n_max=registers, size_sampling_mode="uniform",
                                  ordering_mode="nested"),
        "enc_seq_packer": _packer(["enc_vae_latents_patched", "enc_registers"], "enc", "causal_last"),
        "enc_transformer": _trunk("enc", enc, enc_depth),
        "enc_unpacker": _unpacker("enc", ["enc_vae_latents_patched", "enc_registers"]),
        "enc_to_latents": _t(_P + "postprocessors.heads.LinearHead", read_key="enc_registers",
                             write_key="enc_registers", dim=enc, dim_out=len(levels), use_mup_readout=False,
                             weight_init_style="zero", dtype_override=None),
    }
    decoder = {
        "dec_from_latents": _t(_P + "preprocessors.linear.LinearLayer", read_key="quants", write_key="dec_quants",
                               dim_in=len(levels), dim=dec),
        "dec_registers_posemb_module": _t(_P + "utils.posembs.PositionalEmbeddingAdder", read_key="dec_quants",
                                          write_key="dec_quants", dim=dec, max_sizes=[registers],
                                          posemb_type="learnable_sum", posemb_scaling="absolute"),
        "dec_nested_dropout": _t(_P + "preprocessors.token_dropout.MaskedNestedDropout", read_write_key="dec_quants",
                                 dim=dec, eval_keep_k_read_key="eval_keep_k", train_keep_k_write_key="train_keep_k",
                                 size_sampling_mode="uniform"),
        "dec_latent_dropout": _t(_P + "preprocessors.nullcond.LearnedNullCond", read_write_key="dec_quants", dim=dec,
                                 eval_drop_flag_read_key="eval_dropout_mask", dropout_prob=0.1,
                                 replace_with_single_token=False),
        "dec_noise_channels_to_last": _to_last("noised_latents", "noised_latents_bhwc"),
        "dec_noise_patch_emb": _patches("noised_latents_bhwc", "dec_patches", "dec_n_patches", dec, latent_channels),
        "dec_patches_posemb_module": _sincos("dec_patches", dec, grid),
        "dec_seq_packer": _packer(["dec_patches", "dec_quants"], "dec", "full",
                                  emb_packing_fn_write_key="adaLN_packing_fn", per_subseq_embs=True),
        "dec_time_embedder": _t(_P + "preprocessors.time_embedding.TimestepEmbedder", timesteps_read_key="timesteps",
                                time_embedding_write_key="temb", dim=dec, frequency_embedding_size=256,
                                max_timestep=1.0),
        "dec_transformer": _trunk("dec", dec, dec_depth, adaLN_emb_read_key="temb",
                                  adaLN_packing_fn_read_key="adaLN_packing_fn", adaLN_expansion=2),
        "dec_unpacker": _unpacker("dec", ["dec_patches", "dec_quants"]),
        "dec_to_patches": _t(_P + "postprocessors.heads.ToPatchesLinearHead", read_key="dec_patches",
                             write_key="vae_latents_reconst_bhwc", dim=dec, channels_out=latent_channels,
                             patch_sizes=[2, 2], use_mup_readout=False, weight_init_style="zero",
                             adaLN_emb_read_key="temb"),
        "dec_channels_to_first": _t(_P + "utils.dict_ops.PerSampleOp", read_key="vae_latents_reconst_bhwc",
                                    write_key="vae_latents_reconst",
                                    per_sample_op=_t(_P + "utils.dict_ops.channels_last_to_first", _partial_=True)),
    }
    wrapper = "flextok.model.utils.wrappers.SequentialModuleDictWrapper"
    return {
        "_target_": "flextok.flextok_wrapper.FlexTok",
        "vae": _t("flextok.vae_wrapper.StableDiffusionVAE", images_read_key="rgb",
                  vae_latents_read_key="vae_latents_reconst", vae_latents_write_key="vae_latents",
                  images_reconst_write_key="rgb_reconst", vae_kl_loss_write_key="kl_loss",
                  latent_channels=latent_channels, scaling_factor=1.0, dtype_override="fp32", hf_hub_path=None,
                  sample_posterior=False, learnable_logvar=False, compile_encode_fn=False, force_vae_encode=True,
                  frozen=True),
        "encoder": _t(wrapper, module_dict=encoder),
        "decoder": _t(wrapper, module_dict=decoder),
        "regularizer": _t("flextok.regularizers.quantize_fsq.FSQ", latents_read_key="enc_registers",
                          quants_write_key="quants", tokens_write_key="tokens", levels=levels, drop_quant_p=0.0,
                          corrupt_tokens_p=0.0, packed_call=True),
        "flow_matching_noise_module": _t("flextok.flow_matching.noise_modules.MinRFNoiseModule",
                                         clean_images_read_key="vae_latents", noised_images_write_key="noised_latents",
                                         timesteps_write_key="timesteps", sigmas_write_key="sigmas", ln=True,
                                         stratisfied=False, mode_scale=0.0, noise_write_key="flow_noise"),
        "pipeline": _t("flextok.flow_matching.pipelines.MinRFPipeline", _partial_=True, latents_read_key="quants",
                       timesteps_read_key="timesteps", noised_images_read_key="noised_latents",
                       reconst_write_key="vae_latents_reconst", out_channels=latent_channels),
    }
