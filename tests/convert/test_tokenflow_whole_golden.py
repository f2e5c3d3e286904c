"""Whole-model TokenFlow (clipb_224) parity with the official code (../shared/golden/tokenflow/whole),
through the public path: ``zoo.load_official`` on the official state dict and config, then ``encode``
/ ``decode`` of the [0, 1] image (the fixture holds the official [-1, 1] input; ``(x + 1) / 2`` maps
it exactly, case.json checks.roundtrip_input_max_abs = 0).

Bounds: the inputs were chosen with an argmin gap >= 3.5e-4 at every scale (case.json tie_margins)
while float32 latents differ from float64 by < 2e-6 (checks.float64_vs_float32_*): the 561 ids are
exact by construction. Float outputs use the case's tolerances (recon 1e-4 against a
float32-vs-float64 gap of 1e-5; latents and z_q 1e-5 against < 2e-6), room for other CPUs' kernels.
"""
import argparse

import pytest
import torch

import zoo
from tests.conftest import load_golden
from zoo.checkpoint import load_state_dict_file
from zoo.convert import read_config
from zoo.convert.architecture import ArchitectureMismatchError

pytestmark = pytest.mark.golden

LATENT_TOL = "clip_patch_tokens, z_sem, z_pix"


@pytest.fixture(scope="module")
def golden():
    case = load_golden("tokenflow", "whole")
    return case, zoo.load_official("tokenflow", case.state_dict_path, case.config_path)


def _close(case, name, actual, group=None):
    tol = case.case["tolerances"][group or name]
    torch.testing.assert_close(actual, case.expected[name], atol=tol["atol"], rtol=tol["rtol"],
                               msg=lambda m: f"{name}: {m}")


def test_ids_latents_and_unclamped_reconstruction(golden):
    case, tok = golden
    x = (case.inputs["image"] + 1) / 2
    assert tok.quantizer.scales == (1, 2, 4, 6, 8, 10, 12, 14) and tok.token_shape(tuple(x.shape[1:])) == (561,)
    tokens = tok.encode(x)
    assert torch.equal(tokens.ids, case.expected["ids"])
    z = tok.latents(x)
    _close(case, "z_sem", z[:, :tok.semantic_dim], LATENT_TOL)
    _close(case, "z_pix", z[:, tok.semantic_dim:], LATENT_TOL)
    raw = tok.decode(tokens, clamp=False)
    _close(case, "recon", raw * 2 - 1)  # the official [-1, 1] scale, unclamped
    assert bool(((raw * 2 - 1).abs() > 1).any())
    assert torch.equal(tok.decode(tokens), raw.clamp(0, 1))  # identical kernels on identical data
    _close(case, "sem_recon", tok.decode_semantic(tokens))


def test_intermediates_exposed_by_the_zoo(golden):
    case, tok = golden
    x = (case.inputs["image"] + 1) / 2
    with torch.no_grad():
        _close(case, "clip_patch_tokens", tok.encoder_vqkd(x * 2 - 1), LATENT_TOL)
        q = tok.quantizer(tok.latents(x))
    _close(case, "z_q", q.z_q)
    _close(case, "eval_mean_vqkd_d_norm", q.stats["semantic_d_norm"], "eval_mean_*")
    _close(case, "eval_mean_vqgan_d_norm", q.stats["pixel_d_norm"], "eval_mean_*")


def test_released_checkpoint_format(golden, tmp_path):
    """A .pt file as released: {"model", "ema", "args": argparse.Namespace} with the training arguments."""
    case, tok = golden
    sd = load_state_dict_file(case.state_dict_path)
    settings = {k: v for k, v in read_config(case.config_path).items() if not k.startswith("_")}
    path = tmp_path / "tokenflow.pt"
    torch.save({"model": sd, "args": argparse.Namespace(**settings, image_size=224, lr=1e-4)}, path)
    released = zoo.load_official("tokenflow", path, None)
    assert released.config == tok.config
    assert torch.equal(released.encode((case.inputs["image"] + 1) / 2).ids, case.expected["ids"])


def test_inference_resolution_and_disagreements(golden):
    case, tok = golden
    sd = load_state_dict_file(case.state_dict_path)
    config = read_config(case.config_path)
    arch = {k: v for k, v in tok.config.items() if k != "tokenizer_class"}
    # the interpolated clipb schedule (TokenFlow's 256 px evaluation): one more scale, 4 px more per token row
    interp = zoo.load_official("tokenflow", sd, config, arch={**arch, "scales": [1, 2, 4, 6, 8, 10, 12, 14, 16],
                                                              "image_size": 64})
    assert interp.token_shape((3, 64, 64)) == (817,)
    assert interp.encode(torch.rand(1, 3, 64, 64)).ids.shape == (1, 817)
    assert zoo.load_official("tokenflow", sd, {**config, "infer_interpolate": True}).token_shape((3, 64, 64)) == (817,)
    with pytest.raises(ArchitectureMismatchError, match="not a schedule of the clipb_224 teacher"):
        zoo.load_official("tokenflow", sd, config, arch={**arch, "scales": [1, 2, 4, 8, 14]})
    with pytest.raises(ArchitectureMismatchError, match="enhanced_decoder"):
        zoo.load_official("tokenflow", sd, {**config, "enhanced_decoder": True})
    with pytest.raises(ArchitectureMismatchError, match="sem_dec_width"):
        zoo.load_official("tokenflow", sd, config, arch={**arch, "sem_dec_width": 64})
    with pytest.raises(ArchitectureMismatchError, match="codebook_size"):
        zoo.load_official("tokenflow", sd, {**config, "codebook_size": 32768})
    with pytest.raises(ArchitectureMismatchError, match="ch_mult"):  # 'TokenFlow' means [1, 1, 2, 2, 4]
        zoo.load_official("tokenflow", {"ema": sd, "args": {"vq_model": "TokenFlow"}}, None)
    with pytest.raises(ValueError, match="clipb_224"):
        zoo.load_official("tokenflow", sd, {**config, "teacher": "siglip_384"})
    broken = {k: v for k, v in sd.items() if k != "decoder_vqkd.blocks.0.attn.v_bias"}
    with pytest.raises(KeyError, match="q_bias and v_bias"):
        zoo.load_official("tokenflow", broken, config)
