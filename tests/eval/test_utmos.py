"""UTMOS22 strong learner on torchaudio's wav2vec2: golden parity (SpeechMOS) and checkpoint formats."""
from __future__ import annotations

import pytest
import torch

from eval.utmos import UTMOS22Strong, convert_utmos_state_dict, load_utmos
from tests.conftest import load_golden


@pytest.fixture(scope="module")
def golden():
    return load_golden("utmos", "strong_tiny")


@pytest.fixture(scope="module")
def model(golden):
    return load_utmos(golden.state_dict_path)


def _close(a, b, tol):
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=tol["atol"], rtol=tol["rtol"]), (a - b).abs().max().item()


@pytest.mark.golden
def test_golden_parity(golden, model):
    tol, x, exp = golden.case["tolerances"], golden.inputs, golden.expected
    assert model.num_layers == 2  # depth read from the state dict
    with torch.no_grad():
        _close(model.cnn_features(x["audio_16k"]), exp["cnn_features"], tol["cnn_features"])
        ssl = model.ssl_features(x["audio_16k"])
        _close(ssl, exp["ssl_features"], tol["ssl_features"])
        _close(model.frame_scores(ssl), exp["frame_scores"], tol["frame_scores"])
        _close(model(x["audio_16k"], 16000), exp["score"], tol["score"])
        _close(model(x["audio_24k"], 24000), exp["score_24k"], tol["score_24k"])
        _close(model(x["audio_16k_short"], 16000), exp["score_short"], tol["score_short"])
        _close(model.ssl_features(x["audio_16k_short"]), exp["ssl_features_short"], tol["ssl_features_short"])


def _to_utmos_pytorch_layout(sd, plain_pos_conv=False):
    """SpeechMOS key layout -> utmos-pytorch / UTMOS22 Lightning layout (embedding tables, prefixes)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in sd.items():
        if k.startswith("wav2vec2."):
            out["feature_extractors.0.ssl_model." + k[len("wav2vec2."):]] = v
        elif k.startswith("blstm."):
            out["output_layers.0.decoder_rnn." + k[len("blstm."):]] = v
        elif k.startswith("projection."):
            idx, rest = k[len("projection."):].split(".", 1)
            out[f"output_layers.1.net.{ {'0': 0, '2': 3}[idx] }.{rest}"] = v
    dom = torch.randn(3, 128, generator=g).half()
    dom[0] = sd["domain_emb"][0]
    jud = torch.randn(3000, 128, generator=g).half()
    jud[288] = sd["judge_emb"][0]
    out["feature_extractors.1.embedding.weight"] = dom
    out["output_layers.0.judge_embedding.weight"] = jud
    if plain_pos_conv:  # as saved after torch.nn.utils.remove_weight_norm
        p = "feature_extractors.0.ssl_model.encoder.pos_conv.0."
        gg, vv = out.pop(p + "weight_g").float(), out.pop(p + "weight_v").float()
        out[p + "weight"] = gg * vv / vv.norm(dim=(0, 1), keepdim=True)
    return {"state_dict": out}


@pytest.mark.golden
@pytest.mark.parametrize("plain", [False, True])
def test_self_consistency_utmos_pytorch_layout_written_by_the_test_gives_same_scores(golden, model, plain):
    from safetensors.torch import load_file

    sd = load_file(str(golden.state_dict_path))
    other = load_utmos(_to_utmos_pytorch_layout(sd, plain_pos_conv=plain))
    x = golden.inputs["audio_16k_short"]
    with torch.no_grad():
        assert torch.allclose(other(x), model(x), atol=1e-5)


def test_conversion_errors():
    with pytest.raises(KeyError, match="not a UTMOS22"):
        convert_utmos_state_dict({"foo.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unknown wav2vec2 key"):
        convert_utmos_state_dict({"wav2vec2.encoder.bogus.weight": torch.zeros(1)})
    m = UTMOS22Strong(num_layers=1)
    sd = {k: v for k, v in m.state_dict().items()}
    with pytest.raises(Exception, match="missing keys"):
        from zoo.checkpoint import load_state_dict_strict

        load_state_dict_strict(UTMOS22Strong(num_layers=2), sd)


@pytest.mark.golden
def test_batch_one_semantics_on_real_speech(model, speech_clip):
    """Scoring a zero-padded batch with lengths equals scoring each clip alone; padding alone changes it."""
    from zoo.data.offline import load_speech, speech_paths

    a = speech_clip(16000, 1.0)[0]
    b = load_speech(speech_paths("alsa")[3], 16000, max_seconds=0.7)
    batch = torch.zeros(2, a.numel())
    batch[0], batch[1, : b.numel()] = a, b
    with torch.no_grad():
        got = model.score(batch, 16000, lengths=torch.tensor([a.numel(), b.numel()]))
        alone = torch.cat([model(a[None]), model(b[None])])
        padded = model(batch)
    assert torch.allclose(got, alone, atol=1e-6)
    assert (padded[1] - alone[1]).abs() > 1e-4


@pytest.mark.golden
def test_utmos_metric_streams(golden, model):
    from eval.audio import UTMOS

    x = golden.inputs["audio_24k"]
    m = UTMOS(24000, model=model)
    m.update(x)
    m.update(x[:, :36000])
    with torch.no_grad():
        ref = (model(x, 24000) + model(x[:, :36000], 24000)) / 2
    assert torch.allclose(m.compute(), ref.float(), atol=1e-6)


def test_bad_inputs():
    m = UTMOS22Strong(num_layers=1).eval()
    with pytest.raises(ValueError, match="mono"):
        m(torch.zeros(1, 2, 16000))
    with pytest.raises(ValueError, match="at least 400"):
        m(torch.zeros(1, 100))
    with pytest.raises(TypeError):
        m(torch.zeros(1, 16000, dtype=torch.long))


@pytest.mark.golden
def test_weight_sources(golden, monkeypatch, tmp_path):
    """Env var and folder sources; an unreachable hub names the repo and how to work offline."""
    import shutil

    from zoo.hub import WeightsNotFoundError

    monkeypatch.setenv("ZOO_UTMOS_WEIGHTS", str(golden.state_dict_path))
    assert load_utmos().num_layers == 2
    folder = tmp_path / "utmos"
    folder.mkdir()
    from safetensors.torch import load_file

    torch.save(load_file(str(golden.state_dict_path)), folder / "utmos_state_dict.pt")
    assert load_utmos(folder).num_layers == 2  # a folder holding utmos_state_dict.pt (torch.load weights_only)
    monkeypatch.delenv("ZOO_UTMOS_WEIGHTS")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # read at import time by huggingface_hub
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(WeightsNotFoundError, match="Blinorot/UTMOS-PyTorch"):
        load_utmos()
    shutil.rmtree(folder)
