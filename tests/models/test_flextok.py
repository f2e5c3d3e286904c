"""FlexTok model: encode / variable-length decode on real photos, masks, sampler inputs, training."""
import pytest
import torch

import zoo
from zoo.models.flextok import FlexTok, sample_keep_k
from zoo.models.flextok_encoder import causal_last_mask

TINY = dict(image_size=64, vae=dict(block_out_channels=[16, 32, 64, 64], norm_num_groups=8, latent_channels=16,
                                     down_block_types=["DownEncoderBlock2D"] * 4,
                                     up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=1),
            vae_scaling_factor=1.0, enc_width=64, enc_depth=1, dec_width=64, dec_depth=2, num_registers=256)


@pytest.fixture(scope="module")
def tok():
    torch.manual_seed(0)
    model = FlexTok(**TINY).eval()
    with torch.no_grad():  # non-trivial modulation so that every input matters
        for blk in model.decoder.blocks:
            blk.adaLN_modulation[1].weight.normal_(0, 0.05)
        model.decoder.final.mod.adaLN_modulation[1].weight.normal_(0, 0.05)
    return model


def test_causal_last_mask():
    m = causal_last_mask(2, 3)
    assert m.tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                          [True, True, True, False, False], [True, True, True, True, False],
                          [True, True, True, True, True]]


@pytest.mark.slow
def test_encode_then_decode_every_k_on_real_photo(tok, photo_batch):
    x = photo_batch[:1]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (1, 256) and tokens.input_shape == (64, 64)
    assert int(tokens.ids.min()) >= 0 and int(tokens.ids.max()) < 64000
    assert tok.token_shape((3, 64, 64)) == (256,) and tok.codebook_size == 64000
    # every k in 1..256 at once: one batch row per k (k may differ per row)
    ids = tokens.ids.expand(256, -1)
    k = torch.arange(1, 257)
    noise = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)).expand(256, -1, -1, -1)
    with torch.inference_mode():
        lat = tok.decode_latents(ids, k=k, steps=2, guidance=1.0, noise=noise)
    assert lat.shape == (256, 16, 8, 8) and bool(torch.isfinite(lat).all())
    diffs = (lat[1:] - lat[:-1]).flatten(1).abs().amax(1)
    assert bool((diffs > 0).all()), "each extra token must change the sample"
    # the batched per-row k equals single decodes of truncated sequences, incl. the image decode
    for kk in (1, 7, 256):
        img = tok.decode(tokens.ids[:, :kk], steps=2, guidance=1.0, noise=noise[:1])
        assert img.shape == (1, 3, 64, 64) and 0 <= img.min() and img.max() <= 1
        with torch.inference_mode():
            single = tok.decode_latents(tokens.ids[:, :kk], steps=2, guidance=1.0, noise=noise[:1])
        assert torch.allclose(single, lat[kk - 1:kk], atol=1e-5)
    img = tok.decode(tokens, k=16, steps=2, guidance=3.0, apg=True, generator=torch.Generator().manual_seed(1))
    assert img.shape == (1, 3, 64, 64) and bool(torch.isfinite(img).all())


def test_tokens_beyond_k_are_ignored(tok, photo_batch):
    ids = tok.encode(photo_batch[:2]).ids
    other = ids.clone()
    other[:, 3:] = (other[:, 3:] + 17) % 64000
    noise = torch.randn(2, 16, 8, 8)
    kw = dict(steps=2, guidance=2.0, apg=False, noise=noise)
    with torch.inference_mode():
        a = tok.decode_latents(ids, k=3, **kw)
        b = tok.decode_latents(other, k=3, **kw)
        c = tok.decode_latents(other, k=4, **kw)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_noise_and_generator_reproducible(tok, photo_batch):
    tokens = tok.encode(photo_batch[:2])
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    a = tok.decode(tokens, k=8, steps=2, generator=g())
    b = tok.decode(tokens, k=8, steps=2, generator=g())
    assert torch.equal(a, b)
    gen = g()
    noise = torch.cat([torch.randn(1, 16, 8, 8, generator=gen) for _ in range(2)])
    assert torch.equal(tok.decode(tokens, k=8, steps=2, noise=noise), a)
    assert not torch.equal(tok.decode(tokens, k=8, steps=2, generator=torch.Generator().manual_seed(6)), a)


def test_encoder_registers_are_causal(tok, photo_batch):
    with torch.inference_mode():
        lat = tok.vae_encode(photo_batch[:1])
        z = tok.encoder(lat)
        saved = tok.encoder.registers[5].clone()
        tok.encoder.registers[5] += 1.0
        z2 = tok.encoder(lat)
        tok.encoder.registers[5] = saved
    assert torch.equal(z[:, :5], z2[:, :5])
    assert not torch.allclose(z[:, 5:], z2[:, 5:])


def test_bad_inputs(tok, photo_batch):
    tokens = tok.encode(photo_batch[:1])
    with pytest.raises(ValueError, match="k must be in"):
        tok.decode(tokens, k=0, steps=1)
    with pytest.raises(ValueError, match="k must be in"):
        tok.decode(tokens.ids[:, :4], k=5, steps=1)
    with pytest.raises(TypeError):
        tok.decode(tokens, k=2.5, steps=1)
    with pytest.raises(ValueError):
        tok.decode(torch.full((1, 4), 64000), steps=1)
    with pytest.raises(ValueError, match="noise"):
        tok.decode(tokens, steps=1, noise=torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        tok.encode(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="larger"):
        tok.encode(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="steps"):
        tok.decode(tokens, steps=0)


def test_null_condition_single_token_has_no_nans():
    model = FlexTok(**dict(TINY, num_registers=8, null_single_token=True)).eval()
    dec = model.decoder
    x, t = torch.randn(2, 16, 8, 8), torch.full((2,), 0.5)
    codes = model.quantizer.ids_to_codes(torch.randint(0, 64000, (2, 8)))
    with torch.inference_mode():
        v = dec(x, t, codes, uncond=torch.tensor([True, False]))
        v_other = dec(x, t, torch.zeros_like(codes), uncond=torch.tensor([True, False]))
    assert bool(torch.isfinite(v).all())
    assert torch.allclose(v[0], v_other[0], atol=1e-6)  # unconditional row ignores the tokens


@pytest.mark.parametrize("mode", ["uniform", "pow2", "uniform_pow2"])
def test_sample_keep_k(mode):
    k = sample_keep_k(4000, 256, mode, generator=torch.Generator().manual_seed(0))
    assert int(k.min()) >= 1 and int(k.max()) <= 256
    if mode != "uniform":
        assert bool(((k & (k - 1)) == 0).all())
    if mode == "pow2":
        assert set(k.tolist()) == {2 ** i for i in range(9)}
    with pytest.raises(ValueError):
        sample_keep_k(2, 6, "pow2")


def test_training_forward_with_repa(photo_batch):
    torch.manual_seed(0)
    model = FlexTok(**dict(TINY, num_registers=16, repa_layer=0, teacher_dim=8, repa_hidden=32,
                           nested_dropout="pow2", cfg_dropout=0.5)).train()
    feat_net = torch.nn.Conv2d(3, 8, 16, stride=16).requires_grad_(False)  # frozen feature network
    model.set_repa_encoder(feat_net)
    out = model(photo_batch[:2], generator=torch.Generator().manual_seed(0))
    assert set(out.losses) == {"flow", "repa"} and all(torch.isfinite(v) for v in out.losses.values())
    assert out.recon.shape == (2, 16, 8, 8) and out.tokens.ids.shape == (2, 16)
    assert not model.vae.training
    out.loss.backward()
    assert model.encoder.head.weight.grad is not None  # through the FSQ straight-through estimator
    assert model.repa_proj[0].weight.grad is not None and model.decoder.mask_token.grad is not None
    assert all(p.grad is None for p in model.vae.parameters())
    assert "feat_net" not in str(list(model.state_dict()))
    model.set_repa_encoder(None)
    with pytest.raises(ValueError, match="REPA"):
        model(photo_batch[:2])
    out2 = model(photo_batch[:2], repa_target=torch.randn(2, 16, 8))  # [B, N, F] features, resized to 4x4
    assert torch.isfinite(out2.losses["repa"])


def test_save_load_round_trip(tok, photo_batch, tmp_path):
    tok.save_pretrained(tmp_path)
    tok2 = zoo.from_pretrained(tmp_path)
    assert isinstance(tok2, FlexTok)
    assert torch.equal(tok.encode(photo_batch[:1]).ids, tok2.encode(photo_batch[:1]).ids)


def test_registry_entries():
    names = zoo.list_tokenizers(family="flextok")
    for n in ("flextok_d12_d12.in1k", "flextok_d18_d18.in1k", "flextok_d18_d28.in1k", "flextok_d18_d28.dfn"):
        assert n in names
        info = zoo.registry.get_info(n)
        assert info.source.hf_repo == "EPFL-VILAB/" + n.replace(".", "_") and info.source.converter == "flextok"
        assert info.codebook_size == 64000 and info.token_shape == (256,) and "Apple" in info.license
    assert zoo.registry.get_info("flextok_d18_d28.dfn").kwargs["dec_width"] == 1792
    assert FlexTok.variable_length_arg == "k"


def test_flex_attention_backend_matches_sdpa(tok, photo_batch):
    pytest.importorskip("torch.nn.attention.flex_attention")
    import warnings

    x = photo_batch[:1]
    with torch.inference_mode():
        lat = tok.vae_encode(x)
        ref = tok.encoder(lat)
        tok.set_attention_backend("flex")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # eager flex_attention warns on CPU
                out = tok.encoder(lat)
        finally:
            tok.set_attention_backend("sdpa")
    assert torch.allclose(out, ref, atol=1e-4)
    with pytest.raises(ValueError):
        tok.set_attention_backend("xformers")


@pytest.mark.parametrize("single_null", [False, True])
def test_inference_collapses_copied_registers_without_changing_the_velocity(tok, single_null):
    """In inference the decoder keeps one copy of the mask / null registers with a log-count key
    bias (FlexTokDecoder.collapse_registers); with autograd on it runs all 256. Same attention
    maths, float32 rounding apart: the velocities agree to ~1e-6 of their size."""
    dec = tok.decoder
    dec.null_single_token = single_null
    try:
        g = torch.Generator().manual_seed(3)
        x_t, t = torch.randn(4, 16, 8, 8, generator=g), torch.rand(4, generator=g)
        codes = torch.randn(4, 256, 6, generator=g)
        keep_k = torch.tensor([1, 40, 256, 200])
        uncond = torch.tensor([False, True, False, True])
        with torch.inference_mode():
            fast = dec(x_t, t, codes, keep_k, uncond)
            regs, bias = dec.collapse_registers(dec.condition(codes, keep_k, uncond), 16, keep_k, uncond)
        with torch.enable_grad():
            full = dec(x_t, t, codes, keep_k, uncond).detach()
        # row 3 keeps all 256 distinct registers: nothing to collapse, unless single null tokens are hidden
        assert regs.shape[1] == 256 and (bias is not None) == single_null
        torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-4)
        with torch.inference_mode():  # rows with few distinct registers shrink the sequence
            regs, bias = dec.collapse_registers(dec.condition(codes[:2], keep_k[:2], uncond[:2]), 16, keep_k[:2],
                                                uncond[:2])
        assert regs.shape[1] == 2 and bias.shape == (2, 1, 1, 18)
        expected_uncond = torch.log(torch.tensor((1.0 if single_null else 256.0) / 2))  # 2 rows hold the copies
        torch.testing.assert_close(bias[1, 0, 0, 16:], torch.full((2,), float(expected_uncond)))
        torch.testing.assert_close(bias[0, 0, 0, 16:], torch.tensor([0.0, float(torch.log(torch.tensor(255.0)))]))
    finally:
        dec.null_single_token = False
