"""FlexTok converter: config reading and clear errors for unsupported official settings."""
import copy
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for conftest's helpers)
from conftest import load_golden  # noqa: E402

from zoo.convert.flextok import convert_flextok, flextok_kwargs_from_config  # noqa: E402
from zoo.source import LocalDir  # noqa: E402


@pytest.fixture(scope="module")
def fixture():
    g = load_golden("flextok", "tiny")
    cfg = json.loads(g.config_path.read_text())
    return g, cfg


def test_kwargs_read_from_config(fixture):
    g, cfg = fixture
    kw, names, vae_src = flextok_kwargs_from_config(cfg, g.config_path)
    assert vae_src == LocalDir(g.path / "vae_diffusers")
    assert (kw["enc_width"], kw["enc_depth"], kw["dec_depth"], kw["num_registers"]) == (128, 2, 2, 16)
    assert kw["enc_mlp_hidden"] == kw["dec_mlp_hidden"] == 341
    assert kw["fsq_levels"] == [8, 8, 8, 5, 5, 5] and kw["vae_scaling_factor"] == 0.6
    assert kw["adaln_segments"] == 2 and kw["max_timestep"] == 1.0 and kw["image_size"] == 32
    assert kw["vae"]["block_out_channels"] == [16, 32, 64, 64]
    assert names["dec_nd"] == "dec_nested_dropout" and names["enc_regs"] == "enc_register_module"
    # a changed value in the config is followed, not guessed
    cfg2 = copy.deepcopy(cfg)
    cfg2["decoder"]["module_dict"]["dec_time_embedder"]["max_timestep"] = 1000.0
    cfg2["decoder"]["module_dict"]["dec_nested_dropout"]["size_sampling_mode"] = "pow2"
    kw2, _, _ = flextok_kwargs_from_config(cfg2, g.config_path)
    assert kw2["max_timestep"] == 1000.0 and kw2["nested_dropout"] == "pow2"


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["encoder"]["module_dict"]["enc_seq_packer"].update(mask_mode="full"), "mask_mode"),
    (lambda c: c["encoder"]["module_dict"]["enc_transformer"].update(gated_mlp=False), "gated_mlp"),
    (lambda c: c["decoder"]["module_dict"]["dec_transformer"].update(adaLN_expansion=1), "adaLN_expansion"),
    (lambda c: c["encoder"]["module_dict"]["enc_to_latents"].update(use_mup_readout=True), "mup"),
])
def test_unsupported_settings_raise(fixture, edit, match):
    g, cfg = fixture
    cfg2 = copy.deepcopy(cfg)
    edit(cfg2)
    with pytest.raises(NotImplementedError, match=match):
        flextok_kwargs_from_config(cfg2, g.config_path)


def test_state_dict_errors(fixture):
    g, cfg = fixture
    from safetensors.torch import load_file

    sd = load_file(str(g.state_dict_path))
    sd_missing = {k: v for k, v in sd.items() if "dec_nested_dropout" not in k}
    with pytest.raises(KeyError, match="dropout_mask_token"):
        convert_flextok(sd_missing, cfg, config_path=g.config_path)
    sd_extra = dict(sd, **{"decoder.module_dict.unknown.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unknown"):
        convert_flextok(sd_extra, cfg, config_path=g.config_path)
    with pytest.raises(ValueError, match="not a FlexTok config"):
        convert_flextok(sd, {"encoder": {}}, config_path=g.config_path)


def test_wrapped_and_stringified_configs(fixture):
    g, cfg = fixture
    kw, _, _ = flextok_kwargs_from_config(cfg, g.config_path)
    kw_wrapped, _, _ = flextok_kwargs_from_config({"config": cfg}, g.config_path)
    stringified = {k: str(v) if isinstance(v, dict) else v for k, v in cfg.items()}  # safetensors-header style
    kw_str, _, _ = flextok_kwargs_from_config(stringified, g.config_path)
    assert kw == kw_wrapped == kw_str
