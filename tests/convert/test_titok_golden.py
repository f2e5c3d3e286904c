"""Parity of the zoo TiTok / One-D-Piece with the official code (golden fixtures in ../shared/golden)."""
from __future__ import annotations

import pytest
import torch
from einops import rearrange

import zoo
from tests.conftest import load_golden

pytestmark = pytest.mark.golden


def _close(case, name, actual):
    expected = case.expected[name]
    atol = case.case["outputs"][name]["atol"]
    torch.testing.assert_close(actual.float(), expected.float(), rtol=0, atol=atol, msg=lambda m: f"{name}: {m}")


def _as_official(z):  # zoo [B, N, C] -> official [B, C, 1, N]
    return z.transpose(1, 2)[:, :, None]


def _load(family, case, weights_case=None):
    sd = load_golden("titok", weights_case).state_dict_path if weights_case else case.state_dict_path
    return zoo.load_official(family, sd, case.config_path)


class _Capture:
    """Forward hook recording a module's output (or a pre-hook recording its input)."""

    def __init__(self, module, pre=False):
        self.value = None
        if pre:
            self.handle = module.register_forward_pre_hook(lambda m, a: setattr(self, "value", a[0].clone()))
        else:
            self.handle = module.register_forward_hook(lambda m, a, o: setattr(self, "value", o.clone()))


@pytest.mark.parametrize("name", ["legacy_vq", "vq_direct"])
def test_titok_vq_cases(name):
    case = load_golden("titok", name)
    tok = _load("titok", case)
    x = case.inputs["image"]
    ln_post = _Capture(tok.encoder.ln_post)
    with torch.no_grad():
        z = tok.encode_latents(x)
    _close(case, "z_pre_quant", _as_official(z))
    _close(case, "encoder_ln_post_out", ln_post.value)
    tokens = tok.encode(x)
    assert torch.equal(tokens.ids, case.expected["tokens"][:, 0]), "token ids differ from the official ones"
    with torch.no_grad():
        _close(case, "z_quant", _as_official(tok.quantize(z).z_q))

    ffn = _Capture(tok.decoder.ffn)
    pix_in = _Capture(tok.pixel_decoder, pre=True) if tok.pixel_decoder is not None else None
    decoded = tok.decode(tokens, clamp=False)
    _close(case, "decoded", decoded)
    if name == "legacy_vq":
        _close(case, "decoder_logits", ffn.value)
        _close(case, "pixel_decoder_input", pix_in.value)
    else:
        p = tok.decoder.patch_size
        _close(case, "decoder_ffn_out", rearrange(ffn.value, "b (p1 p2 c) h w -> b c (h p1) (w p2)", p1=p, p2=p))
    clamped = tok.decode(tokens)
    assert float(clamped.min()) >= 0.0 and float(clamped.max()) <= 1.0
    torch.testing.assert_close(clamped, decoded.clamp(0, 1))


def test_titok_vae_case():
    case = load_golden("titok", "vae")
    tok = _load("titok", case)
    x = case.inputs["image"]
    ln_post = _Capture(tok.encoder.ln_post)
    with torch.no_grad():
        z = tok.encode_latents(x)
    _close(case, "z_pre_quant", _as_official(z))
    _close(case, "encoder_ln_post_out", ln_post.value)
    mean, logvar = z.chunk(2, dim=-1)
    logvar = logvar.clamp(-30, 20)
    _close(case, "posterior_mean", _as_official(mean))
    _close(case, "posterior_logvar", _as_official(logvar))
    _close(case, "posterior_std", _as_official(torch.exp(0.5 * logvar)))
    tokens = tok.encode(x)
    _close(case, "z_quant", _as_official(tokens.extras["latents"]))
    ffn = _Capture(tok.decoder.ffn)
    _close(case, "decoded", tok.decode(tokens, clamp=False))
    p = tok.decoder.patch_size
    _close(case, "decoder_ffn_out", rearrange(ffn.value, "b (p1 p2 c) h w -> b c (h p1) (w p2)", p1=p, p2=p))
    # the latents alone decode the same way
    torch.testing.assert_close(tok.decode(tokens.extras["latents"], clamp=False), tok.decode(tokens, clamp=False))


@pytest.mark.parametrize("family", ["onedpiece", "titok"])  # "titok" detects model.type == one_d_piece
def test_onedpiece_legacy_tail(family):
    case = load_golden("onedpiece", "legacy_tail")
    tok = _load(family, case, weights_case=case.case["weights_case"].split("/")[1])
    assert tok.tail_drop and tok.encoder.legacy_readout
    x = case.inputs["image"]
    with torch.no_grad():
        z = tok.encode_latents(x)
    _close(case, "z_pre_quant", _as_official(z))
    tokens = tok.encode(x)
    assert torch.equal(tokens.ids, case.expected["tokens"][:, 0])
    with torch.no_grad():
        _close(case, "z_quant", _as_official(tok.quantize(z).z_q))
    ffn = _Capture(tok.decoder.ffn)
    _close(case, "decoded_full", tok.decode(tokens, clamp=False))
    _close(case, "decoder_logits_full", ffn.value)
    for length in case.case["lengths"]:
        _close(case, f"decoded_L{length}", tok.decode(tokens, length=length, clamp=False))
        _close(case, f"decoder_logits_L{length}", ffn.value)
        # a prefix of ids decodes identically; so do per-item lengths (attention masking)
        prefix = tok.decode(tokens.ids[:, :length], clamp=False)
        _close(case, f"decoded_L{length}", prefix)
        masked = tok.decode(zoo.Tokens(ids=tokens.ids, lengths=torch.full((2,), length)), clamp=False)
        torch.testing.assert_close(masked, prefix, rtol=0, atol=1e-4)
    short = tok.encode(x, length=3)
    assert torch.equal(short.ids, tokens.ids[:, :3])
