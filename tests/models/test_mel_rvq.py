"""Mel residual-VQ codec: shapes and bit rates, the PCA + k-means start, training forward, errors."""
import math

import pytest
import torch

import zoo
from zoo.api import Tokens
from zoo.models.mel_rvq import MelRVQ
from zoo.train.mel_rvq_init import kmeans_init_mel_rvq_

SMALL = dict(codebook_size=64, width=32, mlp_hidden=48, depth=1, vocos_width=32, vocos_mlp_hidden=48, vocos_depth=1)


@pytest.fixture(scope="module")
def started():
    """A small codec (4 levels, 24-d codes) started by PCA + residual k-means on real training speech."""
    torch.manual_seed(0)
    tok = MelRVQ(stack=4, num_quantizers=4, code_dim=24, **SMALL)
    info = kmeans_init_mel_rvq_(tok, utterances=24, kmeans_iters=8, vocoder=None)
    return tok.eval(), info


def test_shapes_rates_and_exact_lengths(started, speech_clip):
    tok, _ = started
    assert tok.sample_rate == 16000 and tok.tokens_per_second == 20.0
    assert tok.codebook_size == (64,) * 4 and tok.bits_per_second == pytest.approx(20 * 4 * 6)
    for seconds in (1.0, 0.537):  # 8592 samples: 43 frames, not a multiple of the group of 4
        x = speech_clip(16000, seconds)
        tokens = tok.encode(x, sample_rate=16000)
        frames = x.shape[-1] // 200 + 1
        assert tokens.ids.shape == (1, math.ceil(frames / 4), 4) == (1, *tok.token_shape(tuple(x.shape)))
        assert int(tokens.ids.min()) >= 0 and int(tokens.ids.max()) < 64
        for k in (1, 2, 4):
            assert tok.decode(tokens, n_q=k).shape == x.shape
        assert torch.equal(tok.decode(tokens), tok.decode(tokens, n_q=4))
        # without num_samples: whole groups of frames
        bare = tok.decode(Tokens(ids=tokens.ids))
        assert bare.shape == (1, (tokens.ids.shape[1] * 4 - 1) * 200)


def test_pca_kmeans_start_is_a_working_coarse_to_fine_code(started, speech_clip):
    """The start: the code maps are the principal directions (orthonormal, mean-centred), every level
    lowers the residual of the data it was fitted to, and on real speech decoding more levels gives
    log-mel frames closer to the input's (the refiners start as the identity)."""
    tok, info = started
    assert 0.8 < info["explained_variance"] < 1.0 and info["vectors"] > 1000
    mse = info["level_mse"]
    assert all(a > b for a, b in zip(mse, mse[1:]))
    basis = tok.to_codes.weight[:, :, 0]
    torch.testing.assert_close(basis @ basis.t(), torch.eye(24), atol=1e-5, rtol=0)
    torch.testing.assert_close(tok.from_codes.weight[:, :, 0], basis.t())
    x = speech_clip(16000, 2.0)
    with torch.inference_mode():
        target = tok.group_frames(tok.mel.log_mel(x))
        z = tok.latents(x)
        torch.testing.assert_close(z, tok.to_codes(target))  # encoder refiner starts as the identity
        ids = tok.encode(x).ids
        errors = [float((tok.from_codes(tok.quantizer.ids_to_latents(ids[..., :k])) - target).abs().mean())
                  for k in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.7 * errors[0]


def test_training_forward_losses_gradients_and_quantizer_dropout(speech_clip):
    torch.manual_seed(0)
    tok = MelRVQ(stack=2, num_quantizers=3, code_dim=16, quantizer_dropout=True, **SMALL)
    kmeans_init_mel_rvq_(tok, utterances=8, kmeans_iters=3, vocoder=None)
    tok.train()
    x = speech_clip(16000, 1.0).repeat(2, 1)
    out = tok(x)
    assert set(out.losses) == {"mel", "latent", "commitment", "codebook"}
    assert out.recon.shape == x.shape and out.tokens.ids.shape == (2, 41, 3)
    out.loss.backward()
    # the zero-initialised refiner outputs, the codebooks, the code maps and the vocoder all learn
    for p in (tok.encoder.out.weight, tok.decoder.out.weight, tok.quantizer.layers[0].embedding.weight,
              tok.to_codes.weight, tok.from_codes.weight, tok.mel.vocos.head.out.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    levels = {int(tok(x).stats["n_q"]) for _ in range(12)}
    assert levels == {1, 2, 3}
    # the decoder refiner is told how many levels it decodes: condition k - 1 for n_q = k
    tok.eval()
    tokens = tok.encode(x[:1])
    with torch.no_grad():
        tok.decoder.out.weight.normal_(0.0, 0.1)  # a non-identity refiner (a fresh one is the identity)
        base = {k: tok.decode(tokens, n_q=k) for k in (1, 2)}
        tok.decoder.backbone.norm.shift.weight[0] += 1.0  # only condition 0 (one level) changes
        moved = {k: tok.decode(tokens, n_q=k) for k in (1, 2)}
    assert not torch.allclose(moved[1], base[1]) and torch.equal(moved[2], base[2])


def test_vocoder_starts_from_the_packaged_dmel_vocoder():
    tok = MelRVQ(stack=4, num_quantizers=1, code_dim=8, vocos_width=192, vocos_mlp_hidden=576, vocos_depth=6,
                 width=32, mlp_hidden=48, depth=1, codebook_size=16)
    kmeans_init_mel_rvq_(tok, utterances=4, kmeans_iters=2, vocoder="dmel_vocos_demo.demo")
    ref = zoo.create_tokenizer("dmel_vocos_demo.demo", pretrained=True).vocos.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in tok.mel.vocos.state_dict().items())
    with pytest.raises(ValueError, match="no Vocos vocoder"):
        kmeans_init_mel_rvq_(tok, utterances=4, kmeans_iters=2, vocoder="dmel.official")


def test_save_and_load_round_trip(tmp_path, started, speech_clip):
    tok, _ = started
    tok.save_pretrained(tmp_path / "codec")
    again = zoo.from_pretrained(f"local-dir:{tmp_path / 'codec'}")
    x = speech_clip(16000, 0.5)
    a, b = tok.encode(x), again.encode(x)
    assert torch.equal(a.ids, b.ids)
    torch.testing.assert_close(tok.decode(a), again.decode(b))


def test_bad_inputs_and_configs_get_clear_errors(started, speech_clip):
    tok, _ = started
    x = speech_clip(16000, 0.5)
    tokens = tok.encode(x)
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        tok.encode(x, sample_rate=24000)
    with pytest.raises(ValueError, match="more than 512 samples"):
        tok.encode(x[:, :300])
    with pytest.raises(ValueError, match=r"\[B, N, 4\]"):
        tok.decode(tokens.ids[..., :2])
    with pytest.raises(ValueError, match="n_q"):
        tok.decode(tokens, n_q=5)
    with pytest.raises(ValueError, match="n_q"):
        tok.decode(tokens, n_q=0)
    with pytest.raises(ValueError, match="num_samples"):
        tok.decode(Tokens(ids=tokens.ids, num_samples=x.shape[-1] * 2))
    bad = tokens.ids.clone()
    bad[0, 0, 3] = 64  # 64 codes per level: ids 0..63
    with pytest.raises(ValueError, match="64"):
        tok.decode(Tokens(ids=bad, num_samples=x.shape[-1]))
    with pytest.raises(ValueError, match="code_dim"):
        MelRVQ(stack=2, code_dim=161, **SMALL)
    with pytest.raises(ValueError, match="stack"):
        MelRVQ(stack=0, **SMALL)


# ----------------------------------------------------------------------------- the encoder's joint search
def _joint(tok, **search):
    joint = MelRVQ(stack=4, num_quantizers=4, code_dim=24, **SMALL, **search)
    joint.load_state_dict(tok.state_dict())
    return joint.eval()


def _weighted_error(tok, log_mel, ids, k):
    """Mean weighted squared error of the decoded log-mel groups from the first k levels (before the refiner)."""
    groups = tok.group_frames(log_mel)
    decoded = tok.from_codes(tok.quantizer.ids_to_latents(ids[..., :k]))
    return float(((decoded - groups).pow(2) * tok.search_weights()[:, None]).sum(1).mean())


def test_weighted_search_is_greedy_in_the_weighted_log_mel_space(started, speech_clip):
    """The QR-rotated search picks, level by level, the code nearest in the weighted space of decoded
    log-mel groups (checked against that search done directly, 320-d); bins centred above the cutoff
    weigh search_floor."""
    tok, _ = started
    joint = _joint(tok, search_cutoff_hz=3000.0, search_floor=0.3)
    weights = joint.search_weights()
    assert weights.shape == (4 * 80,)
    low = joint.mel_bin_hz <= 3000.0
    assert 20 < int(low.sum()) < 80 and torch.equal(weights[:80][low], torch.ones(int(low.sum())))
    torch.testing.assert_close(weights[:80][~low], torch.full((int((~low).sum()),), 0.3))
    x = speech_clip(16000, 2.0)
    with torch.inference_mode():
        log_mel = joint.mel.log_mel(x)
        ids = joint.encode(x).ids
        residual = ((joint.group_frames(log_mel)[0].t() - joint.from_codes.bias) * weights.sqrt())
        direct = []
        for codes in joint.quantizer.code_tables():
            mapped = (codes @ joint.from_codes.weight[:, :, 0].t()) * weights.sqrt()
            i = torch.cdist(residual, mapped).argmin(1)
            direct.append(i)
            residual = residual - mapped[i]
        assert (ids[0] == torch.stack(direct, 1)).float().mean() > 0.99
        # the weighted error is what it lowers: below the code-space greedy search's at every level count
        plain = tok.encode(x).ids
        for k in (1, 2, 4):
            assert _weighted_error(joint, log_mel, ids, k) < _weighted_error(joint, log_mel, plain, k)


def test_beam_search_and_encoding_for_a_number_of_levels(started, speech_clip):
    tok, _ = started
    greedy = _joint(tok, search_cutoff_hz=3000.0, search_floor=0.3)
    beam = _joint(tok, search_cutoff_hz=3000.0, search_floor=0.3, search_beam=8)
    assert beam.searches_jointly and not tok.searches_jointly
    x = speech_clip(16000, 2.0)
    with torch.inference_mode():
        log_mel = beam.mel.log_mel(x)
        full = beam.encode(x).ids
        assert _weighted_error(beam, log_mel, full, 4) < _weighted_error(beam, log_mel, greedy.encode(x).ids, 4)
        two = beam.encode(x, n_q=2)  # the first 2 levels searched together, the rest greedily after them
        assert two.ids.shape == full.shape and int(two.ids.min()) >= 0
        assert _weighted_error(beam, log_mel, two.ids, 2) < _weighted_error(beam, log_mel, full, 2)
        assert beam.decode(two, n_q=2).shape == x.shape
        # greedy search: the prefix does not depend on how many levels follow
        assert torch.equal(greedy.encode(x, n_q=2).ids, greedy.encode(x).ids)


def test_search_tables_follow_the_weights_and_settings_round_trip(tmp_path, started, speech_clip):
    tok, _ = started
    joint = _joint(tok, search_cutoff_hz=2500.0, search_floor=0.5, search_beam=4)
    x = speech_clip(16000, 1.0)
    before = joint.encode(x).ids
    books = [c.clone() for c in joint.search_tables()[3]]
    with torch.no_grad():
        joint.from_codes.weight.mul_(2.0)  # in place: the cached tables must follow
    assert not torch.allclose(joint.search_tables()[3][0], books[0])
    fresh = _joint(tok, search_cutoff_hz=2500.0, search_floor=0.5, search_beam=4)
    fresh.load_state_dict(joint.state_dict())
    assert torch.equal(joint.encode(x).ids, fresh.encode(x).ids)
    with torch.no_grad():
        joint.from_codes.weight.mul_(0.5)
    assert torch.equal(joint.encode(x).ids, before)
    joint.save_pretrained(tmp_path / "joint")
    again = zoo.from_pretrained(f"local-dir:{tmp_path / 'joint'}")
    assert (again.search_cutoff_hz, again.search_floor, again.search_beam) == (2500.0, 0.5, 4)
    assert torch.equal(again.encode(x).ids, before)


def test_search_settings_and_n_q_get_clear_errors(started, speech_clip):
    tok, _ = started
    for bad in (dict(search_cutoff_hz=0.0), dict(search_cutoff_hz=8000.0), dict(search_floor=0.0),
                dict(search_floor=1.5), dict(search_beam=0), dict(search_beam=2.0)):
        with pytest.raises(ValueError, match="search_"):
            MelRVQ(stack=4, num_quantizers=4, code_dim=24, **SMALL, **bad)
    x = speech_clip(16000, 0.5)
    for n_q in (0, 5, True):
        with pytest.raises(ValueError, match="n_q"):
            tok.encode(x, n_q=n_q)
