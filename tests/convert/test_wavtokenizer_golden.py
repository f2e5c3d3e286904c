"""Parity of the zoo WavTokenizer with the official code (golden fixtures in ../shared/golden/wavtokenizer)."""
from __future__ import annotations

import math

import pytest
import torch
import yaml

import zoo
from tests.conftest import load_golden, register_golden_entry
from zoo.checkpoint import load_state_dict_file
from zoo.convert.architecture import ArchitectureMismatchError
from zoo.convert.wavtokenizer import to_official_state_dict

pytestmark = pytest.mark.golden

CASES = ["frame40_tiny", "frame75_tiny"]


def _close(case, name, actual):
    tol = case.case["tolerances"][name]
    torch.testing.assert_close(actual, case.expected[name], atol=tol["atol"], rtol=tol["rtol"],
                               msg=lambda m: f"{name}: {m}")


@pytest.fixture(scope="module", params=CASES)
def golden(request):
    case = load_golden("wavtokenizer", request.param)
    tok = zoo.load_official("wavtokenizer", case.state_dict_path, case.config_path)
    return case, tok


def test_codes_features_and_audio(golden):
    case, tok = golden
    audio, bw = case.inputs["audio"], case.inputs["bandwidth_id"]
    _close(case, "pre_quant", tok.latents(audio))
    tokens = tok.encode(audio, sample_rate=24000)
    assert torch.equal(tokens.ids, case.expected["codes"][0])  # official codes are (n_q=1, B, F)
    assert torch.equal(tok.quantizer.ids_to_latents(tokens.ids), case.expected["features"])
    _close(case, "decoded", tok.decode(tokens, bandwidth_id=bw, clamp=False))
    _close(case, "decoded_bw2", tok.decode(tokens, bandwidth_id=case.inputs["bandwidth_id_2"], clamp=False))
    tokens.extras["bandwidth_id"] = 2  # the same through Tokens.extras
    _close(case, "decoded_bw2", tok.decode(tokens, clamp=False))


def test_odd_length_restores_the_input_length(golden):
    case, tok = golden
    audio = case.inputs["audio_odd"]
    _close(case, "pre_quant_odd", tok.latents(audio))
    tokens = tok.encode(audio)
    assert torch.equal(tokens.ids, case.expected["codes_odd"][0])
    assert torch.equal(tok.quantizer.ids_to_latents(tokens.ids), case.expected["features_odd"])
    full = tok.decode(tokens, trim=False, clamp=False)
    _close(case, "decoded_odd", full)
    trimmed = tok.decode(tokens, clamp=False)
    assert trimmed.shape == audio.shape == (1, case.case["lengths"]["audio_odd"]["T"])
    torch.testing.assert_close(trimmed, full[:, : audio.shape[-1]])


def test_official_code_ids_decode_like_official(golden):
    case, tok = golden
    y = tok.decode(case.expected["codes"][0], bandwidth_id=case.inputs["bandwidth_id"], clamp=False)
    _close(case, "decoded", y)


def test_real_speech_round_trip_through_converted_model(golden, speech_clip):
    _, tok = golden
    x = speech_clip(24000, 1.3)
    tokens = tok.encode(x)
    assert tokens.ids.shape == (1, math.ceil(x.shape[-1] / tok.hop_length))
    y = tok.decode(tokens)
    assert y.shape == x.shape and torch.isfinite(y).all()


def _lightning_ckpt(case, new_style_weight_norm=False):
    """A Lightning-style checkpoint as published: state_dict with decoder, discriminators, loss buffers."""
    sd = dict(load_state_dict_file(case.state_dict_path))
    for key, shape in case.case["state_dict"]["dropped_decoder_keys"]["keys_and_shapes"].items():
        sd[key] = torch.randn(shape)
    sd["multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    sd["dac.discriminators.0.convs.0.bias"] = torch.randn(4)
    sd["melspec_loss.mel_spec.spectrogram.window"] = torch.hann_window(1024)
    if new_style_weight_norm:
        for k in [k for k in sd if k.endswith(".weight_g") and k.startswith("feature_extractor.encodec.encoder")]:
            sd[k.replace(".weight_g", ".parametrizations.weight.original0")] = sd.pop(k)
            v = k.replace(".weight_g", ".weight_v")
            sd[v.replace(".weight_v", ".parametrizations.weight.original1")] = sd.pop(v)
    return {"epoch": 3, "global_step": 1000, "state_dict": sd}


@pytest.mark.parametrize("new_style", [False, True])
def test_lightning_ckpt_file_with_decoder_and_discriminators(tmp_path, new_style):
    case = load_golden("wavtokenizer", "frame40_tiny")
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_ckpt(case, new_style), path)
    tok = zoo.load_official("wavtokenizer", path, case.config_path)  # torch.load(weights_only=True)
    assert not any("decoder" in k or "disc" in k for k in tok.state_dict())
    tokens = tok.encode(case.inputs["audio"])
    assert torch.equal(tokens.ids, case.expected["codes"][0])
    _close(case, "decoded", tok.decode(tokens, bandwidth_id=0, clamp=False))


def test_registry_loads_a_local_checkpoint_folder(tmp_path, monkeypatch):
    """create_tokenizer(weights=folder) goes through the registry source and the converter, offline."""
    case = load_golden("wavtokenizer", "frame75_tiny")
    info = zoo.get_info("wavtokenizer_small_75.libritts")
    torch.save(_lightning_ckpt(case), tmp_path / info.source.files["weights"])
    (tmp_path / info.source.files["config"]).write_text(case.config_path.read_text())
    # the fixture-size checkpoint is not the model the real entry advertises: refused, naming the difference
    with pytest.raises(ArchitectureMismatchError, match="backbone.convnext.0.dwconv.weight"):
        zoo.create_tokenizer("wavtokenizer_small_75.libritts", weights=tmp_path)
    name = register_golden_entry(monkeypatch, info.name, zoo.load_official("wavtokenizer", case.state_dict_path,
                                                                           case.config_path))
    tok = zoo.create_tokenizer(name, weights=tmp_path)
    assert tok.tokens_per_second == 75 and not tok.training
    assert torch.equal(tok.encode(case.inputs["audio"]).ids, case.expected["codes"][0])


def test_config_is_optional_and_checked():
    case = load_golden("wavtokenizer", "frame40_tiny")
    tok = zoo.load_official("wavtokenizer", case.state_dict_path, None)  # large/medium ship no yaml
    assert torch.equal(tok.encode(case.inputs["audio"]).ids, case.expected["codes"][0])
    wrong = load_golden("wavtokenizer", "frame75_tiny").config_path  # the 75 tokens/s yaml
    with pytest.raises(ValueError, match="does not describe this checkpoint"):
        zoo.load_official("wavtokenizer", case.state_dict_path, wrong)
    cfg = yaml.safe_load(case.config_path.read_text())
    cfg["model"]["init_args"]["backbone"]["init_args"]["num_layers"] = 3
    with pytest.raises(ValueError, match="num_layers"):
        zoo.load_official("wavtokenizer", case.state_dict_path, cfg)


def test_missing_or_foreign_weights_are_named():
    case = load_golden("wavtokenizer", "frame40_tiny")
    sd = dict(load_state_dict_file(case.state_dict_path))
    sd.pop("backbone.pos_net.2.q.weight")
    with pytest.raises(zoo.CheckpointMismatchError, match="pos_net.2.q.weight"):
        zoo.load_official("wavtokenizer", sd, case.config_path)
    with pytest.raises(ValueError, match="no WavTokenizer weights"):
        zoo.load_official("wavtokenizer", {"encoder.weight": torch.zeros(1)}, None)


@pytest.mark.parametrize("name", ["wavtokenizer_small_40.libritts", "wavtokenizer_large_75.speech"])
def test_full_size_layout_round_trips_through_the_converter(name):
    """The published architecture (768-wide, 12 ConvNeXt layers, 4096 codes) is read back from shapes."""
    torch.manual_seed(0)
    model = zoo.create_tokenizer(name, pretrained=False)
    official = to_official_state_dict(model)
    official["feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited"] = torch.ones(1)
    tok = zoo.load_official("wavtokenizer", {"state_dict": official}, None)
    assert tok.config == {**tok.config, **zoo.get_info(name).kwargs}
    for k, v in tok.state_dict().items():
        if k != "quantizer.inited":
            assert torch.equal(v, model.state_dict()[k]), k
