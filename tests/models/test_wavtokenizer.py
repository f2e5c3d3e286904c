"""WavTokenizer model: exact lengths, bandwidth ids, errors, training forward, persistence."""
import math

import pytest
import torch

import zoo
from zoo.models.wavtokenizer import WavTokenizer

SMALL = dict(codebook_size=64, n_filters=4, lstm_layers=1, vocos_width=32, vocos_mlp_hidden=48, vocos_depth=1,
             kmeans_iters=3)


@pytest.fixture(scope="module")
def tok40():
    torch.manual_seed(0)
    return WavTokenizer(ratios=(6, 5, 5, 4), n_fft=2400, hop_length=600, **SMALL).eval()


@pytest.fixture(scope="module")
def tok75():
    torch.manual_seed(0)
    return WavTokenizer(ratios=(8, 5, 4, 2), n_fft=1280, hop_length=320, **SMALL).eval()


@pytest.mark.parametrize("name", ["tok40", "tok75"])
def test_speech_round_trip_keeps_the_number_of_samples(request, speech_clip, name):
    tok = request.getfixturevalue(name)
    x = speech_clip(24000, 1.3)  # real speech, 31200 samples: not a multiple of the hop
    tokens = tok.encode(x, sample_rate=24000)
    frames = math.ceil(x.shape[-1] / tok.hop_length)
    assert tokens.ids.shape == (1, frames) == (1, *tok.token_shape(tuple(x.shape)))
    assert tokens.num_samples == x.shape[-1]
    y = tok.decode(tokens)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert tok.decode(tokens.ids).shape == (1, frames * tok.hop_length)  # bare ids: no length to restore
    assert tok.decode(tokens, trim=False).shape == (1, frames * tok.hop_length)


@pytest.mark.parametrize("length", [1, 599, 600, 601, 12345])
def test_any_length_works(tok40, length):
    x = 0.1 * torch.randn(2, length).clamp(-5, 5)
    tokens = tok40.encode(x)
    assert tokens.ids.shape == (2, math.ceil(length / 600))
    assert tok40.decode(tokens).shape == (2, length)


def test_properties(tok40, tok75):
    assert tok40.sample_rate == tok75.sample_rate == 24000
    assert tok40.tokens_per_second == 40 and tok75.tokens_per_second == 75
    assert tok40.codebook_size == 64 and tok40.modality == "audio"


def test_fresh_model_in_eval_mode_does_not_run_kmeans(tok40, speech_clip):
    before = tok40.quantizer.embed.clone()
    tok40.encode(speech_clip(24000, 0.5))
    assert tok40.quantizer.inited.item() == 0.0
    assert torch.equal(tok40.quantizer.embed, before)


def test_bandwidth_id_from_kwarg_or_tokens_extras(tok40):
    with torch.no_grad():
        for m in tok40.backbone.modules():
            if hasattr(m, "scale") and isinstance(m.scale, torch.nn.Embedding):
                m.scale.weight[2].mul_(1.5)
    x = 0.1 * torch.randn(1, 3000)
    tokens = tok40.encode(x)
    y0, y2 = tok40.decode(tokens), tok40.decode(tokens, bandwidth_id=2)
    assert not torch.allclose(y0, y2)
    tokens.extras["bandwidth_id"] = 2
    torch.testing.assert_close(tok40.decode(tokens), y2)
    hinted = tok40.encode(x, bandwidth_id=torch.tensor([2]))
    assert hinted.extras == {"bandwidth_id": 2}
    torch.testing.assert_close(tok40.decode(hinted), y2)
    torch.testing.assert_close(tok40.decode(tokens, bandwidth_id=torch.tensor([2])), y2)
    with pytest.raises(ValueError, match="bandwidth_id"):
        tok40.decode(tokens, bandwidth_id=4)
    with pytest.raises(ValueError, match="bandwidth_id"):
        tok40.decode(tokens, bandwidth_id=1.0)


def test_bad_inputs_get_clear_errors(tok40, speech_clip):
    x = speech_clip(24000, 0.2)
    with pytest.raises(ValueError, match="24000 Hz"):
        tok40.encode(x, sample_rate=16000)
    with pytest.raises(ValueError, match="mono"):
        tok40.encode(torch.cat([x, x])[None])  # [1, 2, T] stereo
    with pytest.raises(ValueError, match="empty"):
        tok40.encode(torch.zeros(1, 0))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        tok40.encode(x * 10)
    with pytest.raises(TypeError):
        tok40.encode((x * 32767).short())
    with pytest.raises(ValueError, match="out of range"):
        tok40.decode(torch.tensor([[0, 64]]))
    tokens = tok40.encode(x)
    tokens.num_samples = 10 * x.shape[-1]
    with pytest.raises(ValueError, match="num_samples"):
        tok40.decode(tokens)


def test_training_forward_losses_and_gradients(speech_clip):
    torch.manual_seed(0)
    tok = WavTokenizer(**SMALL).train()
    x = speech_clip(24000, 0.5).repeat(2, 1)
    out = tok(x)
    assert tok.quantizer.inited.item() == 1.0  # k-means ran on the first training batch
    assert out.recon.shape == x.shape
    assert set(out.losses) == {"commitment", "mel"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert out.tokens.ids.shape == (2, math.ceil(x.shape[-1] / 600))
    assert out.extras["bandwidth_id"].shape == (1,)
    out.loss.backward()
    assert tok.encoder.model[0].conv.conv.weight_v.grad.abs().sum() > 0
    assert tok.backbone.embed.weight.grad.abs().sum() > 0
    assert tok.head.out.weight.grad.abs().sum() > 0
    assert not any(k.startswith("_mel") for k in tok.state_dict())


def test_save_and_load_round_trip(tmp_path, tok75, speech_clip):
    x = speech_clip(24000, 0.4)
    tok75.save_pretrained(tmp_path / "wt")
    again = zoo.from_pretrained(tmp_path / "wt")
    assert isinstance(again, WavTokenizer) and again.tokens_per_second == 75
    t1, t2 = tok75.encode(x), again.encode(x)
    assert torch.equal(t1.ids, t2.ids)
    torch.testing.assert_close(tok75.decode(t1), again.decode(t2))


def test_registry_entries():
    names = zoo.list_tokenizers(family="wavtokenizer")
    assert {"wavtokenizer_small_40.libritts", "wavtokenizer_small_75.libritts", "wavtokenizer_medium_75.speech",
            "wavtokenizer_medium_75.music_audio", "wavtokenizer_large_40.unify",
            "wavtokenizer_large_75.speech"} <= set(names)
    for name in names:
        info = zoo.get_info(name)
        assert info.modality == "audio" and info.sample_rate == 24000
        if info.pretrained and info.source.packaged is None:  # official checkpoints (demo ones are packaged)
            assert info.source.hf_repo.startswith("novateur/WavTokenizer") and info.source.converter == "wavtokenizer"
            assert info.license == "MIT" and "2408.16532" in info.paper
    tiny = zoo.create_tokenizer("wavtokenizer_tiny_75")
    assert tiny.tokens_per_second == 75 and tiny.codebook_size == 1024


def test_hop_mismatch_is_rejected():
    with pytest.raises(ValueError, match="hop"):
        WavTokenizer(ratios=(8, 5, 4, 2), n_fft=2400, hop_length=600, **SMALL)


@pytest.mark.parametrize("name", ["wavtokenizer_small_40", "wavtokenizer_small_75"])
def test_published_architecture_round_trips_real_speech(speech_clip, name):
    """The registered full-size architecture (random weights) keeps the number of samples."""
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name).eval()
    x = speech_clip(24000, 1.3)
    tokens = tok.encode(x)
    assert tokens.ids.shape == (1, math.ceil(x.shape[-1] / tok.hop_length))
    assert tokens.ids.max() < 4096
    y = tok.decode(tokens)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_unconditioned_variant_needs_no_bandwidth_id(speech_clip):
    tok = WavTokenizer(**{**SMALL, "num_bandwidths": None}).eval()
    x = speech_clip(24000, 0.3)
    assert tok.decode(tok.encode(x)).shape == x.shape
    assert not any(".scale." in k for k in tok.state_dict())


def test_residual_vq_levels_refine_the_same_latents(speech_clip):
    """num_quantizers > 1: residual EMA codebooks over one encoder; every extra level lowers the error
    of the summed codes on the batch their k-means ran on (each level's k-means can only reduce the
    residual it was fitted to, with the codes of the previous levels fixed)."""
    torch.manual_seed(0)
    tok = WavTokenizer(**SMALL, num_quantizers=3).train()
    x = speech_clip(24000, 1.0).repeat(2, 1)
    out = tok(x)  # first training batch: k-means initialises all three levels
    assert all(level.inited.item() == 1.0 for level in tok._levels())
    assert out.tokens.ids.shape == (2, 40, 3) and set(out.losses) == {"commitment", "mel"}
    out.loss.backward()
    assert tok.encoder.model[0].conv.conv.weight_v.grad.abs().sum() > 0
    tok.eval()
    tokens = tok.encode(x)
    assert tokens.ids.shape == (2, 40, 3) == (2, *tok.token_shape(tuple(x.shape)))
    assert tok.codebook_size == (64, 64, 64) and int(tokens.ids.max()) < 64
    # the residual chain itself, on latents with spread (the untrained encoder's output is nearly constant)
    fresh = WavTokenizer(**SMALL, num_quantizers=3).train()
    latents = torch.randn(2, 512, 40, generator=torch.Generator().manual_seed(0))
    fresh._quantize(latents)  # k-means initialises every level on this batch
    fresh.eval()
    ids = fresh._quantize(latents)[1]
    errors = [float((fresh._codes(ids, k) - latents).square().mean()) for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    for k in (1, 2, 3):
        assert tok.decode(tokens, n_q=k).shape == x.shape
    assert torch.equal(tok.decode(tokens), tok.decode(tokens, n_q=3))
    with pytest.raises(ValueError, match="n_q"):
        tok.decode(tokens, n_q=4)
    with pytest.raises(ValueError, match="3 codebooks"):
        tok.decode(tokens.ids[..., 0])


def test_single_codebook_weights_start_a_residual_model(tok75, speech_clip):
    """The first level keeps the single-codebook names: a 1-level checkpoint loads into a residual model
    (the extra levels stay uninitialised) and its first level alone gives the same ids and audio."""
    rvq = WavTokenizer(ratios=(8, 5, 4, 2), n_fft=1280, hop_length=320, **SMALL, num_quantizers=2,
                       quantizer_dropout=True)
    result = rvq.load_state_dict(tok75.state_dict(), strict=False)
    assert not result.unexpected_keys and all(k.startswith("residual_quantizers.0.") for k in result.missing_keys)
    rvq.eval()
    x = speech_clip(24000, 0.5)
    one, two = tok75.encode(x), rvq.encode(x)
    assert torch.equal(two.ids[..., 0], one.ids)
    torch.testing.assert_close(rvq.decode(two, n_q=1), tok75.decode(one))
    rvq.train()
    torch.manual_seed(3)
    levels = {float(rvq(x).stats["n_q"]) for _ in range(8)}  # quantizer dropout: 1 or 2 levels per batch
    assert levels == {1.0, 2.0}
    with pytest.raises(ValueError, match="num_quantizers"):
        WavTokenizer(**SMALL, num_quantizers=0)
    with pytest.raises(ValueError, match="n_q must be 1"):
        tok75.decode(one, n_q=2)
