"""The LARP-style 1D video tokenizer (Video1DTokenizer) on real photo clips."""

import pytest
import torch

import zoo
from tests.models.video_training import train_on_photo_clips
from zoo.models.video import Video1DTokenizer
from zoo.models.video_quant import StochasticCosineVQ, build_quantizer, codebook_vectors

TINY = dict(input_size=[8, 32, 32], tubelet=2, patch_size=8, num_tokens=16, enc_width=32, enc_depth=1,
            enc_heads=2, dec_width=32, dec_depth=1, dec_heads=2, codebook_dim=8, codebook_size=64,
            prior=True, prior_width=32, prior_depth=1, prior_heads=2)


@pytest.fixture(scope="module")
def clips():
    """Four real 8x32x32 photo clips (pans and zooms), [4, 3, 8, 32, 32] in [0, 1]."""
    from zoo.data.video import PhotoClips

    ds = PhotoClips(frames=8, size=32)
    return torch.stack([ds[i] for i in range(4)])


@pytest.mark.parametrize("quantizer,extra,k", [("vq", {}, 64), ("fsq", {"fsq_levels": [4, 4, 3]}, 48),
                                                ("lfq", {"codebook_size": 32}, 32)])
def test_encode_decode_real_clip(quantizer, extra, k, clips):
    torch.manual_seed(0)
    tok = Video1DTokenizer(**{**TINY, "quantizer": quantizer, **extra}).eval()
    assert tok.codebook_size == k and tok.token_shape((3, 8, 32, 32)) == (16,)
    tokens = tok.encode(clips)
    assert tokens.ids.shape == (4, 16) and tokens.ids.dtype == torch.long
    assert 0 <= int(tokens.ids.min()) and int(tokens.ids.max()) < k
    torch.testing.assert_close(tok.encode(clips).ids, tokens.ids)         # deterministic
    video = tok.decode(tokens)
    assert video.shape == clips.shape and video.dtype == torch.float32
    assert 0 <= float(video.min()) and float(video.max()) <= 1
    torch.testing.assert_close(tok.decode(tokens.ids), video)             # bare ids decode too
    torch.testing.assert_close(tok.encode((clips * 255).round().to(torch.uint8)).ids.shape, tokens.ids.shape)


def test_forward_losses_and_gradients(clips):
    torch.manual_seed(0)
    tok = Video1DTokenizer(**TINY).train()
    out = tok(clips)
    assert set(out.losses) == {"recon", "quant_commitment", "quant_codebook", "prior_ce"}
    assert {"usage", "perplexity", "prior_acc"} <= set(out.stats)
    assert out.recon.shape == clips.shape and out.tokens.ids.shape == (4, 16)
    # the prior's cross-entropy alone reaches the encoder (LARP: it shapes the latent space)
    out.losses["prior_ce"].backward()
    assert tok.latent_queries.grad is not None and tok.latent_queries.grad.abs().sum() > 0
    assert tok.prior.input_proj.weight.grad.abs().sum() > 0
    tok.zero_grad()
    out = tok(clips)
    out.loss.backward()
    assert all(p.grad is not None for n, p in tok.named_parameters() if not n.startswith("quantizer")), \
        [n for n, p in tok.named_parameters() if p.grad is None]
    no_prior = Video1DTokenizer(**{**TINY, "prior": False})
    assert "prior_ce" not in no_prior(clips).losses and no_prior.prior is None


def test_stochastic_vq_samples_in_training_only():
    torch.manual_seed(0)
    q, dim = build_quantizer("vq", 8, codebook_size=32, stochastic_temperature=0.5)
    assert isinstance(q, StochasticCosineVQ) and dim == 8
    z = torch.randn(4, 64, 8)
    q.eval()
    det = q(z).ids
    torch.testing.assert_close(q(z).ids, det)
    nearest = (torch.nn.functional.normalize(z, dim=-1) @ q._codebook().t()).argmax(-1)
    torch.testing.assert_close(det, nearest)
    q.train()
    sampled = q(z)
    assert (sampled.ids != det).any() and set(sampled.losses) == {"commitment", "codebook"}
    assert codebook_vectors(q).shape == (32, 8)
    with pytest.raises(ValueError, match="l2_norm"):
        build_quantizer("vq", 8, codebook_size=32, stochastic_temperature=0.5, l2_norm=False)
    with pytest.raises(ValueError, match="unknown quantizer"):
        build_quantizer("rq", 8, codebook_size=32)


def test_bad_inputs(clips):
    tok = Video1DTokenizer(**TINY).eval()
    with pytest.raises(ValueError, match="exactly 8x32x32"):
        tok.encode(clips[:, :, :4])
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        tok.encode(clips[:, :, 0])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode(torch.full((1, 16), 64))
    with pytest.raises(ValueError, match=r"ids \[B, 16\]"):
        tok.decode(torch.zeros(1, 15, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of the tubelet"):
        Video1DTokenizer(**{**TINY, "input_size": [7, 32, 32]})
    with pytest.raises(ValueError, match="recon_loss"):
        Video1DTokenizer(**{**TINY, "recon_loss": "huber"})


def test_save_load_roundtrip(tmp_path, clips):
    torch.manual_seed(0)
    tok = Video1DTokenizer(**{**TINY, "quantizer": "fsq", "fsq_levels": [5, 5, 5]}).eval()
    tok.save_pretrained(tmp_path / "tok")
    back = zoo.from_pretrained(tmp_path / "tok")
    assert type(back) is Video1DTokenizer and back.config == tok.config
    torch.testing.assert_close(back.encode(clips).ids, tok.encode(clips).ids)
    torch.testing.assert_close(back.decode(tok.encode(clips)), tok.decode(tok.encode(clips)))


def test_registry_entries():
    names = zoo.list_tokenizers(family="video1d")
    assert {"larp_l_256.untrained", "larp_l_512.untrained", "larp_l_1024.untrained", "video1d_tiny.untrained"} <= set(names)
    info = zoo.get_info("larp_l_1024.untrained")
    assert info.modality == "video" and info.token_shape == (1024,) and info.input_size == (16, 128, 128)
    tok = zoo.create_tokenizer("video1d_tiny.untrained")
    assert tok.token_shape((3, 8, 32, 32)) == zoo.get_info("video1d_tiny.untrained").token_shape
    assert tok.codebook_size == zoo.get_info("video1d_tiny.untrained").codebook_size


@pytest.mark.slow
def test_tiny_trains_on_photo_clips():
    """300 CPU steps on real photo clips: held-out reconstruction error falls clearly.

    Where it ends depends on the CPU's rounding (the run is chaotic): measured 0.194-0.261 from 0.326
    (-20 % to -40 %) over AMX / AVX2-only kernels and 1-2 threads. A model that does not learn stays
    at 0.326; the bound asks for half the smallest measured drop."""
    before, after = train_on_photo_clips("video1d_tiny.untrained", frames=8, held_items=16, steps=300, batch_size=4)
    assert after < 0.9 * before, (before, after)