"""Parity with the official FlexTok (apple/ml-flextok) on the golden fixtures in ../shared/golden/flextok."""
import re
import sys
from pathlib import Path

import pytest
import torch

import zoo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for conftest's helpers)
from conftest import golden_cases, load_golden  # noqa: E402

pytestmark = pytest.mark.golden

CASES = golden_cases("flextok") or ["tiny"]
_DECODED = re.compile(r"^decoded_k(\d+)_cfg([0-9.]+)(_apg)?$")
_VELOCITY = re.compile(r"^velocity_t([0-9.]+)(?:_k(\d+)|_(uncond))?$")


def _tol(case: dict, key: str) -> tuple[float, float]:
    tols = case["tolerances"]
    for pattern, spec in tols.items():
        if isinstance(spec, dict) and (pattern == key or (pattern.endswith("*") and key.startswith(pattern[:-1]))):
            return spec["atol"], spec["rtol"]
    return 1e-4, 1e-4


def _close(case: dict, key: str, actual: torch.Tensor, expected: torch.Tensor) -> None:
    atol, rtol = _tol(case, key)
    assert actual.shape == expected.shape, key
    err = (actual.float() - expected.float()).abs()
    bound = atol + rtol * expected.float().abs()
    assert bool((err <= bound).all()), f"{key}: max abs diff {err.max().item():.3g} exceeds atol={atol}, rtol={rtol}"


@pytest.fixture(scope="module", params=CASES)
def golden(request):
    g = load_golden("flextok", request.param)
    tok = zoo.load_official("flextok", g.state_dict_path or g.file("official_state_dict.safetensors"),
                            g.config_path or g.file("official_config.json"))
    return g, tok


def test_tokens_exact(golden):
    g, tok = golden
    image = g.inputs["image"]
    tokens = tok.encode((image + 1) / 2)  # fixture images are in [-1, 1], the zoo API takes [0, 1]
    assert torch.equal(tokens.ids, g.expected["tokens"])
    if "fsq_codes" in g.expected:
        assert torch.equal(tok.quantizer.ids_to_codes(tokens.ids), g.expected["fsq_codes"])


def test_intermediates(golden):
    g, tok = golden
    exp = g.expected
    with torch.inference_mode():
        if "vae_latents" in exp:
            _close(g.case, "vae_latents", tok.vae_encode((g.inputs["image"] + 1) / 2), exp["vae_latents"])
            z, hidden = tok.encoder(exp["vae_latents"], return_hidden=True)
            if "encoder_registers_hidden" in exp:
                _close(g.case, "encoder_registers_hidden", hidden, exp["encoder_registers_hidden"])
            if "registers_pre_fsq" in exp:
                _close(g.case, "registers_pre_fsq", z, exp["registers_pre_fsq"])
        if "vae_decode_of_vae_latents" in exp:
            _close(g.case, "vae_decode_of_vae_latents", tok.vae_decode(exp["vae_latents"]),
                   exp["vae_decode_of_vae_latents"])
    if "enc_attn_mask_packed" in exp:
        # the official packer materialises one block-diagonal mask for the whole padded batch;
        # its per-image block must equal the zoo's causal-last mask
        from zoo.models.flextok_encoder import causal_last_mask

        n_patch = (tok.image_size // (tok.downsample * tok.patch_size)) ** 2
        n = n_patch + tok.num_registers
        mask = exp["enc_attn_mask_packed"]
        ours = causal_last_mask(n_patch, tok.num_registers)
        for i in range(g.inputs["image"].shape[0]):
            assert torch.equal(mask[i * n:(i + 1) * n, i * n:(i + 1) * n], ours)


def test_velocity(golden):
    g, tok = golden
    keys = [k for k in g.expected if _VELOCITY.match(k)]
    assert keys, "the fixture lists no velocity outputs"
    codes = tok.quantizer.ids_to_codes(g.inputs["velocity_tokens"])
    x_t = g.inputs["velocity_noisy_latents"]
    b = x_t.shape[0]
    for key in keys:
        t_val, k, uncond = _VELOCITY.match(key).groups()
        keep_k = None if k is None else torch.full((b,), int(k))
        un = None if uncond is None else torch.ones(b, dtype=torch.bool)
        with torch.inference_mode():
            v = tok.decoder(x_t, torch.full((b,), float(t_val)), codes, keep_k=keep_k, uncond=un)
        _close(g.case, key, v, g.expected[key])


def test_decoded_images(golden):
    g, tok = golden
    keys = [k for k in g.expected if _DECODED.match(k)]
    assert keys, "the fixture lists no decoded outputs"
    steps = int(g.case["sampler"]["steps"])
    ids = g.expected["tokens"]
    for key in keys:
        k, scale, apg = _DECODED.match(key).groups()
        kw = dict(k=int(k), steps=steps, guidance=float(scale), apg=apg is not None, noise=g.inputs["sampler_noise"])
        img = tok.decode(ids[:, :int(k)], clamp=False, **kw) * 2 - 1
        _close(g.case, key, img, g.expected[key])
        lat_key = f"decoded_latents_k{k}_cfg{scale}{apg or ''}"
        if lat_key in g.expected:
            with torch.inference_mode():
                lat = tok.decode_latents(ids[:, :int(k)], **kw)
            _close(g.case, lat_key, lat, g.expected[lat_key])


def test_config_from_safetensors_header(golden):
    g, tok = golden
    from zoo.checkpoint import load_state_dict_file

    from zoo.convert.flextok import convert_flextok, read_safetensors_config

    # config=None: the Hydra config is read from the safetensors header; config_path still
    # locates the relative VAE folder
    path = g.state_dict_path or g.file("official_state_dict.safetensors")

    cfg = read_safetensors_config(path)
    assert cfg["regularizer"]["levels"] == tok.quantizer.levels
    tok2 = convert_flextok(load_state_dict_file(path), None, files={"weights": path},
                           config_path=g.config_path or g.file("official_config.json"))
    sd1, sd2 = tok.state_dict(), tok2.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
