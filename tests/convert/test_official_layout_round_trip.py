"""The converters' inverse direction (zoo module -> official layout), pinned against the golden fixtures
made by running the official code: official state dict -> zoo -> official gives the same keys and
tensors, and the official config / training arguments written for the converted model convert back
to the same zoo model. (The configs at the released sizes: tests/test_registry_official.py.)
"""
import pytest
import torch

import zoo
from tests.conftest import golden_cases, load_golden
from zoo.checkpoint import load_state_dict_file
from zoo.convert import flextok_layout, fqgan, larp, titok, tokenflow, wavtokenizer

pytestmark = pytest.mark.golden

STATE_DICTS = {"titok": titok, "flextok": flextok_layout, "wavtokenizer": wavtokenizer, "larp": larp,
               "fqgan": fqgan, "tokenflow": tokenflow}
#: whole-model fixtures (the fqgan / tokenflow quantizer-only cases have no whole state dict)
CASES = [(f, c) for f in STATE_DICTS for c in golden_cases(f)
         if f not in ("fqgan", "tokenflow") or c.startswith("whole")]
#: LARP stores its patch position tables summed over the axes; the zoo keeps the per-axis factors
#: (split in float64, see zoo.convert.larp.split_factorized_pos), so summing them back in float32
#: differs by float32 rounding of values of magnitude <= ~2: at most a few ulps (2.4e-7 each)
FACTORED = {"encoder_patch_pe", "decoder_patch_query_embed"}


def _converted(family, case):
    g = load_golden(family, case)
    return g, zoo.load_official(family, g.state_dict_path, g.config_path)


@pytest.mark.parametrize("family, case", CASES)
def test_state_dict_round_trip(family, case):
    g, tok = _converted(family, case)
    official = load_state_dict_file(g.state_dict_path)
    back = STATE_DICTS[family].to_official_state_dict(tok)
    assert sorted(back) == sorted(official)
    for k, v in official.items():
        if family == "larp" and k in FACTORED:
            torch.testing.assert_close(back[k], v, rtol=0, atol=1e-6)
        else:
            assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


def _config_of(tok):
    return {k: v for k, v in tok.config.items() if k != "tokenizer_class"}


@pytest.mark.parametrize("family, case", [(f, c) for f, c in CASES if f in ("flextok", "wavtokenizer", "larp")])
def test_config_round_trip(family, case):
    g, tok = _converted(family, case)
    back = STATE_DICTS[family].to_official_state_dict(tok)
    if family == "flextok":  # the fixture's VAE folder lies next to its config
        config = flextok_layout.to_official_config(tok, vae_hub_path=str(g.path / "vae_diffusers"))
    else:
        config = STATE_DICTS[family].to_official_config(tok)
    again = zoo.load_official(family, back, config)
    assert _config_of(again) == _config_of(tok)


@pytest.mark.parametrize("family, case", [(f, c) for f, c in CASES if f in ("fqgan", "tokenflow")])
def test_training_args_round_trip(family, case):
    """A released-format checkpoint written from the converted model converts back to it."""
    g, tok = _converted(family, case)
    module = STATE_DICTS[family]
    ckpt = {"model": module.to_official_state_dict(tok), "args": module.to_official_args(tok)}
    again = zoo.load_official(family, ckpt, None)
    assert _config_of(again) == _config_of(tok)
    x = (g.inputs["image"] + 1) / 2
    assert torch.equal(again.encode(x).ids, g.expected["ids"])


def test_titok_config_names_official_sizes_only():
    """The official TiTok config names ViT sizes; a width without one is refused rather than mislabelled."""
    g, tok = _converted("titok", "vq_direct")
    with pytest.raises(ValueError, match="no official ViT size"):
        titok.to_official_config(tok)
    with torch.device("meta"):
        full = zoo.create_tokenizer("titok_bl64_vq8k.in1k")
    vq = titok.to_official_config(full)["model"]["vq_model"]
    assert (vq["vit_enc_model_size"], vq["vit_dec_model_size"], vq["quantize_mode"], vq["is_legacy"]) == \
        ("base", "large", "vq", False)
