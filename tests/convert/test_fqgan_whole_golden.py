"""Whole-model FQGAN parity with the official VQModel (../shared/golden/fqgan/whole_dual{,_ds8}), through
the public path: ``zoo.load_official`` on the official state dict and config, then ``encode`` /
``decode`` of the [0, 1] image (the fixtures hold the official [-1, 1] input; ``(x + 1) / 2`` maps it
exactly, case.json checks.roundtrip_input_max_abs = 0).

Bounds: the fixture inputs were chosen with an argmin gap of >= 2e-4 for every token in both
branches (case.json tie_margins, 7.8e-4 and more), while float32 latents differ from float64 by
< 2e-6 (checks.float64_vs_float32_*): the ids are exact by construction. Float outputs use the
case's tolerances (recon 1e-4 against a float32-vs-float64 gap of 1e-5; latents 1e-5 against 5e-6),
which leave room for other CPUs' kernels and thread counts.
"""
import argparse

import pytest
import torch

import zoo
from tests.conftest import load_golden
from zoo.convert.architecture import ArchitectureMismatchError

pytestmark = pytest.mark.golden

CASES = ["whole_dual", "whole_dual_ds8"]


def _close(case, name, actual, group=None):
    tol = case.case["tolerances"][group or name]
    torch.testing.assert_close(actual, case.expected[name], atol=tol["atol"], rtol=tol["rtol"],
                               msg=lambda m: f"{name}: {m}")


@pytest.fixture(scope="module", params=CASES)
def golden(request):
    case = load_golden("fqgan", request.param)
    return case, zoo.load_official("fqgan", case.state_dict_path, case.config_path)


def test_ids_latents_and_unclamped_reconstruction(golden):
    case, tok = golden
    x = (case.inputs["image"] + 1) / 2
    tokens = tok.encode(x)
    assert torch.equal(tokens.ids, case.expected["ids"])  # (B, g*g, 2), branch order (vis, sem)
    assert torch.equal(tokens.ids[..., 0].reshape(-1), case.expected["indices_vis"])
    assert torch.equal(tokens.ids[..., 1].reshape(-1), case.expected["indices_sem"])
    z_vis, z_sem = tok.branch_latents(x)
    _close(case, "z_vis", z_vis, "trunk, encoder_h_*, z_*")
    _close(case, "z_sem", z_sem, "trunk, encoder_h_*, z_*")
    raw = tok.decode(tokens, clamp=False)
    recon = raw * 2 - 1  # back to the official [-1, 1] scale
    _close(case, "recon", recon)
    assert bool((recon.abs() > 1).any())  # the official reconstruction leaves [-1, 1]; so does the unclamped decode
    # the default clamps the same decoder output to [0, 1] (identical kernels on identical data: exact)
    assert torch.equal(tok.decode(tokens), raw.clamp(0, 1))


def test_intermediates_exposed_by_the_zoo(golden):
    case, tok = golden
    x = (case.inputs["image"] + 1) / 2
    g = int(round(case.expected["ids"].shape[1] ** 0.5))
    with torch.no_grad():
        trunk = tok.encoder(x * 2 - 1)
        _close(case, "trunk", trunk, "trunk, encoder_h_*, z_*")
        _close(case, "encoder_h_vis", tok.heads[0](trunk), "trunk, encoder_h_*, z_*")
        _close(case, "encoder_h_sem", tok.heads[1](trunk), "trunk, encoder_h_*, z_*")
        quant = tok.quantizer.ids_to_latents(case.expected["ids"].view(-1, g, g, 2))
        _close(case, "quant", quant, "quant*")
        quant_vis, quant_sem = tok.quantizer.split(quant)
        _close(case, "quant_vis", quant_vis, "quant*")
        _close(case, "quant_sem", quant_sem, "quant*")
        _close(case, "semantic_feat", tok.feat_heads["sem"](quant_sem))
    with torch.enable_grad():  # the quantizer computes its losses when grad is on (the official eval forward too)
        out = tok(x)
    _close(case, "disentangle_loss", out.losses["disentangle"].detach())
    _close(case, "semantic_feat", out.extras["semantic_features"]["sem"].detach())


def test_released_checkpoint_format(golden, tmp_path):
    """A .pt file as released: {"model", "ema", "args": argparse.Namespace}; the settings come from args."""
    case, tok = golden
    sd = zoo.checkpoint.load_state_dict_file(case.state_dict_path)
    settings = {k: v for k, v in zoo.convert.read_config(case.config_path).items() if not k.startswith("_")}
    path = tmp_path / "fqgan_dual.pt"
    torch.save({"model": {k: torch.zeros_like(v) for k, v in sd.items()}, "ema": sd, "steps": 10,
                "args": argparse.Namespace(**settings, lr=1e-4, data_path="/data")}, path)
    released = zoo.load_official("fqgan", path, None)  # the EMA weights, as the official evaluation loads them
    assert released.config == tok.config
    x = (case.inputs["image"] + 1) / 2
    assert torch.equal(released.encode(x).ids, case.expected["ids"])


def test_stated_settings_must_agree_with_the_weights(golden):
    case, tok = golden
    sd = zoo.checkpoint.load_state_dict_file(case.state_dict_path)
    config = zoo.convert.read_config(case.config_path)
    levels = len(config["encoder_ch_mult"])
    other = {5: "VQ-8", 4: "VQ-16"}[levels]
    with pytest.raises(ArchitectureMismatchError, match="downsamples"):
        zoo.load_official("fqgan", {"ema": sd, "args": {"vq_model": other}}, None)
    with pytest.raises(ArchitectureMismatchError, match="codebook_size"):
        zoo.load_official("fqgan", sd, {**config, "codebook_size": 256})
    with pytest.raises(ArchitectureMismatchError, match="config disagrees with the training arguments"):
        zoo.load_official("fqgan", {"ema": sd, "args": {"z_channels": 8}}, config)
    # vq_model without an explicit ch_mult means the released one, which these shrunk weights are not
    with pytest.raises(ArchitectureMismatchError, match="ch_mult"):
        zoo.load_official("fqgan", {"ema": sd, "args": {"vq_model": {5: "VQ-16", 4: "VQ-8"}[levels]}}, None)
    # an expected architecture (a registry entry's) that differs is refused, naming the setting
    arch = dict(tok.config)
    arch.pop("tokenizer_class", None)
    with pytest.raises(ArchitectureMismatchError, match="ch_mult"):
        zoo.load_official("fqgan", sd, config, arch={**arch, "ch_mult": [1, 2, 2, 4, 4][:levels]})
    assert zoo.load_official("fqgan", sd, config, arch=arch).config == tok.config
