"""dMel: parity with Apple's ``dmel`` package (golden fixtures and the live package on real speech),
API, vocoders and errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from tests.conftest import load_golden
from zoo.data.offline import load_speech, speech_paths
from zoo.models.dmel import DMel

SR = 16000


@pytest.fixture(scope="module")
def tok() -> DMel:
    return zoo.load_official("dmel", None, None)


@pytest.fixture(scope="module")
def official():
    """The official package with the official example's settings."""
    dmel = pytest.importorskip("dmel")
    logmel = dmel.LogMelFbank(sampling_freq=16000, n_fft=1024, frame_size_ms=50, frame_stride_ms=12.5,
                              n_filterbank=80)
    return dmel.DiscretizedLogMelFbank(logmelfbank=logmel, n_bits=4, quantize_min_value=-7, quantize_max_value=2)


# ----------------------------------------------------------------------------- parity
@pytest.mark.golden
def test_golden_parity(tok):
    g = load_golden("dmel", "default")
    x, e = g.inputs, g.expected
    assert torch.equal(tok.fbank, e["mel_filterbank"])  # bit-identical to librosa's filters
    assert torch.equal(tok.centers, e["bin_centers"])
    tol = g.case["tolerances"]["log_mel"]
    assert torch.allclose(tok.log_mel(x["audio"]), e["log_mel"], atol=tol["atol"], rtol=tol["rtol"])
    assert torch.allclose(tok.log_mel(x["audio_loud"]), e["log_mel_loud"], atol=tol["atol"], rtol=tol["rtol"])

    # official framing through the public encode
    t = tok.encode(x["audio"], sample_rate=SR, lengths=x["audio_lengths"], bos_eos=True)
    assert torch.equal(t.ids, e["tokens"]) and torch.equal(t.lengths, e["token_lengths"])
    t = tok.encode(x["audio"], lengths=x["audio_lengths_ragged"], bos_eos=True)
    assert torch.equal(t.ids, e["tokens_ragged"]) and torch.equal(t.lengths, e["token_lengths_ragged"])
    # the loud clip (peak ~50, outside [-1, 1]) hits the upper clamp: tokenize skips the range check
    t = tok.tokenize(x["audio_loud"], lengths=x["audio_loud_lengths"], bos_eos=True)
    assert torch.equal(t.ids, e["tokens_loud"])
    assert (t.ids[:, 1:-1] == 15).float().mean() > 0.01

    plain = tok.encode(x["audio"])
    assert plain.ids.shape == (2, 121, 80) and plain.lengths is None and plain.num_samples == 24000
    assert torch.equal(plain.ids, e["tokens"][:, 1:-1])
    assert torch.equal(tok.dequantize(plain.ids), e["dequantized"])
    assert torch.equal(tok.dequantize(tok.tokenize(x["audio_loud"]).ids), e["dequantized_loud"])


def test_ids_equal_the_package_on_all_alsa_clips(tok, official):
    paths = speech_paths("alsa")
    assert len(paths) == 9
    for p in paths:
        wave = load_speech(p, SR)[None]  # the same 48 kHz -> 16 kHz resampling for both
        ref, ref_len = official(wave, torch.tensor([wave.shape[-1]]))
        ours = tok.encode(wave, sample_rate=SR)
        assert torch.equal(ours.ids, ref[:, 1:-1]), p.name
        framed = tok.encode(wave, lengths=torch.tensor([wave.shape[-1]]), bos_eos=True)
        assert torch.equal(framed.ids, ref) and torch.equal(framed.lengths, ref_len), p.name


def test_quantizer_matches_official_argmin_at_decision_points(tok, official):
    """Values within a few float32 ulps of every decision point, and random values incl. clamps."""
    t = tok.thresholds.numpy()
    near = [t]
    for direction in (-np.inf, np.inf):
        v = t.copy()
        for _ in range(4):
            v = np.nextafter(v, np.float32(direction))
            near.append(v.copy())
    centers = tok.centers.numpy()
    vals = np.concatenate(near + [centers, np.linspace(-9, 4, 4001, dtype=np.float32)]).astype(np.float32)
    x = torch.from_numpy(np.resize(vals, (1, -(-vals.size // 80) * 80)).reshape(1, -1, 80))
    assert torch.equal(tok.quantize(x), official.discretize_func(x))


def test_other_official_settings_via_converter(official):
    """The converter maps official argument names; LogMelFbank's own default stride is 25 ms."""
    dmel = pytest.importorskip("dmel")
    tok25 = zoo.load_official("dmel", None, {"sampling_freq": 16000, "frame_stride_ms": 25, "n_filterbank": 80,
                                             "window_type": "HANNING"})
    assert tok25.hop_length == 400 and tok25.tokens_per_second == 40
    ref = dmel.DiscretizedLogMelFbank(logmelfbank=dmel.LogMelFbank(frame_stride_ms=25), n_bits=4)
    wave = load_speech(speech_paths("alsa")[1], SR)[None]
    ids, _ = ref(wave, torch.tensor([wave.shape[-1]]))
    assert torch.equal(tok25.encode(wave).ids, ids[:, 1:-1])
    with pytest.raises(ValueError, match="unknown dMel setting"):
        zoo.load_official("dmel", None, {"n_filterbanks": 80})
    with pytest.raises(ValueError, match="not supported"):
        zoo.load_official("dmel", None, {"discretizer": "bins.npy"})
    with pytest.raises(ValueError, match="no weights"):
        zoo.load_official("dmel", None, {"vocoder": "vocos"})


# ----------------------------------------------------------------------------- API and registry
def test_properties(tok):
    assert tok.modality == "audio" and tok.sample_rate == SR and tok.tokens_per_second == 80
    assert tok.codebook_size == (16,) * 80
    assert tok.token_shape((SR,)) == (81, 80) and tok.token_shape((1, 24000)) == (121, 80)
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (16, 17, 18)
    assert sum(p.numel() for p in tok.parameters()) == 0 and len(tok.state_dict()) == 0


def test_autocast_keeps_exact_tokens(tok, speech_clip):
    wave = speech_clip(SR, 0.5)
    ref = tok.encode(wave).ids
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(tok.encode(wave).ids, ref)
        assert tok.log_mel(wave).dtype == torch.float32


def test_registry_pretrained_builds_official(tmp_path, monkeypatch, tok):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    info = zoo.get_info("dmel")
    assert info.name == "dmel.official" and info.pretrained and info.source.converter == "dmel"
    a = zoo.create_tokenizer("dmel.official", pretrained=True)
    b = zoo.create_tokenizer("dmel.official", pretrained=True)  # second call: from the converted cache
    c = zoo.create_tokenizer("dmel.official")
    assert a.config == b.config == c.config == tok.config
    wave = load_speech(speech_paths("alsa")[2], SR, max_seconds=1.0)[None]
    ref = tok.encode(wave).ids
    assert torch.equal(a.encode(wave).ids, ref) and torch.equal(b.encode(wave).ids, ref)
    assert {"dmel_vocos.scratch", "dmel_vocos_tiny.scratch"} <= set(zoo.list_tokenizers(family="dmel"))


# ----------------------------------------------------------------------------- decoding
def _err(tok, recon, wave):
    return (tok.log_mel(recon) - tok.log_mel(wave)).abs().mean().item()


def test_griffin_lim_round_trip_on_speech(tok, speech_clip):
    wave = speech_clip(SR, 1.0)
    tokens = tok.encode(wave)
    g = torch.Generator().manual_seed(0)
    recon = tok.decode(tokens, generator=g)
    assert recon.shape == wave.shape and recon.abs().max() <= 1
    again = tok.decode(tokens, generator=torch.Generator().manual_seed(0))
    assert torch.equal(recon, again)  # reproducible with a generator
    no_iter = tok.decode(tokens, griffin_lim_iters=0)
    err, err0 = _err(tok, recon, wave), _err(tok, no_iter, wave)
    noise = torch.randn(wave.shape, generator=torch.Generator().manual_seed(1)) * wave.std()
    assert err < err0 and err < 0.5 * _err(tok, noise.clamp(-1, 1), wave)
    # ids only (no num_samples): (frames - 1) * hop samples; bos/eos tokens decode the same
    assert tok.decode(tokens.ids, griffin_lim_iters=2).shape == (1, (tokens.ids.shape[1] - 1) * 200)
    framed = tok.encode(wave, bos_eos=True)
    assert torch.equal(tok.decode(framed, generator=torch.Generator().manual_seed(0)), recon)


def test_vocos_vocoder_trains_and_round_trips(tmp_path, speech_clip):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("dmel_vocos_tiny.scratch")
    assert tok.vocos is not None and tok.config["vocoder"] == "vocos"
    wave = speech_clip(SR, 0.5)
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    tok.train()
    losses = []
    for _ in range(4):
        out = tok(wave)
        assert out.recon.shape == wave.shape and set(out.losses) == {"mel"}
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0]
    tok.eval()
    tokens = tok.encode(wave)
    recon = tok.decode(tokens)
    assert recon.shape == wave.shape
    tok.save_pretrained(tmp_path / "dmel_vocos")
    back = zoo.from_pretrained(tmp_path / "dmel_vocos")
    assert torch.allclose(back.decode(tokens), recon, atol=1e-6)
    assert tok.decode(tokens, vocoder="griffin_lim", griffin_lim_iters=2).shape == wave.shape


# ----------------------------------------------------------------------------- errors
def test_bad_inputs(tok, speech_clip):
    wave = speech_clip(SR, 0.5)
    with pytest.raises(ValueError, match="16000 Hz"):
        tok.encode(wave, sample_rate=24000)
    with pytest.raises(ValueError, match="mono"):
        tok.encode(torch.cat([wave, wave])[None])  # [1, 2, T] stereo
    with pytest.raises(ValueError, match="empty"):
        tok.encode(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="more than 512 samples"):
        tok.encode(torch.zeros(1, 300))
    with pytest.raises(ValueError, match="lie in"):
        tok.encode(wave * 4)
    with pytest.raises(TypeError):
        tok.encode((wave * 32767).short())
    ids = tok.encode(wave).ids
    with pytest.raises(ValueError, match="out of range"):
        tok.decode(ids + 16)
    with pytest.raises(ValueError):
        tok.decode(ids[..., :40])
    with pytest.raises(ValueError, match="frames"):
        tok.decode(zoo.Tokens(ids=ids, num_samples=wave.shape[-1] + 1000))
    with pytest.raises(ValueError, match="no Vocos vocoder"):
        tok.decode(ids, vocoder="vocos")


