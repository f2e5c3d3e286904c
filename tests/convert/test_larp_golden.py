"""LARP converter: parity with the official hywang66/LARP tokenizer code (golden fixture), and
the converter's handling of the checkpoint format."""
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.checkpoint import CheckpointMismatchError, load_state_dict_file
from zoo.convert import read_config
from zoo.convert.larp import split_factorized_pos
from zoo.layers import sincos_1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for conftest's helpers)
from conftest import load_golden, register_golden_entry  # noqa: E402


@pytest.fixture(scope="module")
def golden():
    return load_golden("larp", "tiny_random")


@pytest.mark.golden
def test_larp_parity_with_official(golden):
    tok = zoo.load_official("larp", golden.state_dict_path, golden.config_path)
    assert type(tok).__name__ == "Video1DTokenizer" and not tok.training
    video = golden.inputs["video"]
    tokens = tok.encode(video)
    torch.testing.assert_close(tokens.ids, golden.expected["ids"], rtol=0, atol=0)
    with torch.no_grad():
        latents = tok.quantizer.ids_to_latents(tokens.ids)
        torch.testing.assert_close(latents, golden.expected["latents"], rtol=0, atol=1e-6)
        raw = tok._pixels(latents)
    atol = golden.case["tolerances"]["recon_atol"]
    torch.testing.assert_close(raw, golden.expected["recon"], rtol=0, atol=atol)
    torch.testing.assert_close(tok.decode(tokens), golden.expected["recon"].clamp(0, 1), rtol=0, atol=atol)


@pytest.mark.golden
def test_larp_converter_checks(golden, tmp_path, monkeypatch):
    sd = load_state_dict_file(golden.state_dict_path)
    config = read_config(golden.config_path)
    # the training-only prior is dropped; unknown keys are refused
    tok = zoo.load_official("larp", {**sd, "prior_model.head.weight": torch.zeros(8, 4)}, config)
    assert tok.prior is None
    with pytest.raises(CheckpointMismatchError, match="does not know"):
        zoo.load_official("larp", {**sd, "ema.decay": torch.zeros(())}, config)
    with pytest.raises(CheckpointMismatchError, match="x_embedder.proj.weight"):
        zoo.load_official("larp", {k: v for k, v in sd.items() if not k.startswith("x_embedder")}, config)
    bad = {**config, "bottleneck": {**config["bottleneck"], "args": {**config["bottleneck"]["args"], "norm": "bn_bn"}}}
    with pytest.raises(ValueError, match="bottleneck norm"):
        zoo.load_official("larp", sd, bad)
    # the registry entry resolves a local folder in the official hub layout through the converter
    import shutil

    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copy(golden.state_dict_path, hub / "model.safetensors")
    shutil.copy(golden.config_path, hub / "config.json")
    # (the fixture-size checkpoint is not the advertised LARP-L: the real entry refuses it)
    with pytest.raises(zoo.CheckpointMismatchError, match="holds another Video1DTokenizer than expected"):
        zoo.create_tokenizer("larp_l_long.k600_ucf101", weights=hub)
    local = zoo.create_tokenizer(register_golden_entry(monkeypatch, "larp_l_long.k600_ucf101", tok), weights=hub)
    torch.testing.assert_close(local.encode(golden.inputs["video"]).ids, golden.expected["ids"])
    # a converted copy saved in the zoo format loads back identically
    tok.save_pretrained(tmp_path / "zoo")
    again = zoo.from_pretrained(tmp_path / "zoo")
    video = golden.inputs["video"]
    torch.testing.assert_close(again.encode(video).ids, tok.encode(video).ids)


def test_split_factorized_pos():
    t, h, w, d = 3, 4, 5, 16
    time, row, col = sincos_1d(torch.arange(t), d), torch.randn(h, d), torch.randn(w, d)
    table = (time[:, None, None] + row[None, :, None] + col[None, None, :]).reshape(-1, d)
    a, b, c = split_factorized_pos(table, (t, h, w))
    torch.testing.assert_close((a[:, None, None] + b[None, :, None] + c[None, None, :]).reshape(-1, d), table)
    with pytest.raises(ValueError, match="not a sum"):
        split_factorized_pos(torch.randn(t * h * w, d), (t, h, w))
