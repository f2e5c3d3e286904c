"""TiTok / One-D-Piece model: tiny configs on real photos, variable length, training forward, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.checkpoint import save_state_dict
from zoo.models.maskgit_vqgan import MaskGITVQGAN, VQGANResBlock
from zoo.models.titok import TiTok

TINY = dict(image_size=64, enc_size=None, dec_size=None, enc_width=64, enc_depth=1, dec_width=64, dec_depth=1,
            num_tokens=8, codebook_dim=8, codebook_size=32, quantizer="vq", l2_norm=True, legacy_readout=False,
            decoder_head="pixel")
VQGAN = {"channels": [32, 32, 32, 32, 64], "num_res_blocks": 1, "z_channels": 32}  # f16, like MaskGIT's


def tiny(**kw) -> TiTok:
    torch.manual_seed(0)
    return TiTok(**{**TINY, **kw}).eval()


def test_encode_decode_real_photos(photo_batch):
    tok = tiny()
    tokens = tok.encode(photo_batch)
    assert tokens.ids.shape == (4, 8) and tokens.ids.dtype == torch.long
    assert int(tokens.ids.max()) < tok.codebook_size
    assert tok.token_shape((3, 64, 64)) == (8,)
    y = tok.decode(tokens)
    assert y.shape == photo_batch.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    raw = tok.decode(tokens, clamp=False)
    torch.testing.assert_close(y, raw.clamp(0, 1))
    assert torch.equal(tok.encode(photo_batch).ids, tokens.ids)


def test_prefix_length_masking_and_sensitivity(photo_batch):
    tok = tiny(tail_drop=True)
    tokens = tok.encode(photo_batch)
    for length in (1, 3, 8):
        prefix = tok.decode(tokens, length=length, clamp=False)
        torch.testing.assert_close(prefix, tok.decode(tokens.ids[:, :length], clamp=False))
        changed = tokens.ids.clone()
        changed[:, length:] = (changed[:, length:] + 1) % tok.codebook_size
        torch.testing.assert_close(tok.decode(changed, length=length, clamp=False), prefix)
    # per-item lengths (attention masking) equal per-item prefix decoding
    lengths = torch.tensor([2, 8, 5, 1])
    mixed = tok.decode(zoo.Tokens(ids=tokens.ids, lengths=lengths), clamp=False)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(mixed[i:i + 1], tok.decode(tokens.ids[i:i + 1, :n], clamp=False),
                                   rtol=0, atol=1e-5)
    # the last kept token matters
    other = tokens.ids.clone()
    other[:, 2] = (other[:, 2] + 1) % tok.codebook_size
    assert (tok.decode(other, length=3, clamp=False) - tok.decode(tokens, length=3, clamp=False)).abs().max() > 1e-4
    assert tok.encode(photo_batch, length=3).ids.shape == (4, 3)


def test_bad_inputs_raise(photo_batch):
    tok = tiny()
    tokens = tok.encode(photo_batch)
    with pytest.raises(ValueError, match="64x64"):
        tok.encode(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="length"):
        tok.decode(tokens, length=0)
    with pytest.raises(ValueError, match="length"):
        tok.decode(tokens, length=9)
    with pytest.raises(ValueError, match="out of range"):
        tok.decode(torch.full((1, 8), 32))
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        tok.decode(torch.zeros(1, 8, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="at most 8|has 8"):
        tok.decode(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("kw, match", [
    (dict(quantizer="lfq"), "quantizer"),
    (dict(quantizer="fsq"), "fsq_levels is required"),
    (dict(fsq_levels=[8, 5, 5]), "fsq_levels is required"),
    (dict(quantizer="fsq", fsq_levels=[8, 5, 5]), "codebook_dim"),
    (dict(quantizer="fsq", codebook_dim=3, fsq_levels=[8, 5, 5]), "200 codes, not codebook_size=32"),
    (dict(decoder_head="rgb"), "decoder_head"),
    (dict(pixel_decoder=VQGAN), "only used with decoder_head='proxy'"),
    (dict(decoder_head="proxy", pixel_decoder={**VQGAN, "hidden": 3}), "hidden"),
    (dict(decoder_head="proxy", pixel_decoder={**VQGAN, "channels": [32, 48]}), "multiples of 32"),
    (dict(decoder_head="proxy", pixel_decoder={**VQGAN, "channels": [32, 32, 64]}), "does not map"),
    (dict(enc_width=96, enc_heads=5), "divisible"),
    (dict(enc_size="huge"), "enc_size"),
    (dict(image_size=60), "multiple of patch_size"),
    (dict(text_dim=8), "text_dim and text_len"),
])
def test_bad_configs_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        TiTok(**{**TINY, **kw})


def test_vae_variant_returns_posterior_mean(photo_batch):
    tok = tiny(quantizer="vae")
    tokens = tok.encode(photo_batch)
    z = tok.encode_latents(photo_batch).detach()
    torch.testing.assert_close(tokens.extras["latents"], z[..., :8])
    assert tok.codebook_size == 1 and int(tokens.ids.abs().sum()) == 0
    y = tok.decode(tokens)
    assert y.shape == photo_batch.shape
    torch.testing.assert_close(tok.decode(tokens.extras["latents"]), y)
    with pytest.raises(TypeError, match="continuous"):
        tok.decode(tokens.ids)


def test_text_guidance_decoder(photo_batch):
    tok = tiny(text_dim=16, text_len=4)
    tokens = tok.encode(photo_batch)
    text = torch.randn(4, 4, 16)
    y = tok.decode(tokens, text_guidance=text)
    assert y.shape == photo_batch.shape
    assert not torch.equal(y, tok.decode(tokens, text_guidance=torch.randn(4, 4, 16)))
    with pytest.warns(UserWarning, match="without text guidance"):
        no_text = tok.decode(tokens)
    assert no_text.shape == photo_batch.shape and not torch.equal(no_text, y)
    with pytest.raises(ValueError, match="text_guidance must be"):
        tok.decode(tokens, text_guidance=torch.randn(4, 5, 16))


def test_training_forward_single_stage(photo_batch):
    tok = tiny().train()
    out = tok(photo_batch)
    assert set(out.losses) == {"commitment", "codebook", "recon_l2"}
    assert out.recon.shape == photo_batch.shape and out.tokens.ids.shape == (4, 8)
    torch.testing.assert_close(out.losses["recon_l2"], F.mse_loss(out.recon, photo_batch))
    out.loss.backward()
    assert tok.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    assert tok.quantize.embedding.weight.grad.abs().sum() > 0
    assert {"usage", "perplexity"} <= set(out.stats)


def test_fsq_variant_round_trip_and_training(photo_batch):
    tok = tiny(quantizer="fsq", codebook_dim=4, fsq_levels=[8, 5, 5, 5], codebook_size=None)
    assert tok.codebook_size == 1000
    tokens = tok.encode(photo_batch)
    assert tokens.ids.shape == (4, 8) and 0 <= int(tokens.ids.min()) and int(tokens.ids.max()) < 1000
    # decoding the ids equals decoding the quantized latents of the training path
    codes = tok.quantize(tok.encode_latents(photo_batch)).z_q
    torch.testing.assert_close(tok.decode(tokens, clamp=False), tok.decoder(codes).detach())
    with pytest.raises(ValueError, match="out of range|codebook"):
        tok.decode(torch.full((1, 8), 1000))
    tok.train()
    out = tok(photo_batch)
    assert set(out.losses) == {"recon_l2"}  # FSQ has no codebook or commitment loss
    out.loss.backward()
    assert tok.encoder.patch_embed.proj.weight.grad.abs().sum() > 0  # straight-through gradient


def test_tail_drop_training_uses_one_random_prefix(photo_batch):
    tok = tiny(tail_drop=True).train()
    seen = set()
    for seed in range(6):
        torch.manual_seed(seed)
        out = tok(photo_batch)
        length = int(out.stats["length"])
        assert 1 <= length <= 8 and out.extras["latents"].shape[1] == length
        seen.add(length)
    assert len(seen) > 1
    tok.eval()
    assert "length" not in tok(photo_batch).stats


def test_tail_drop_prob_truncates_only_that_fraction_of_batches(photo_batch):
    tok = tiny(tail_drop=True, tail_drop_prob=0.5).train()
    torch.manual_seed(0)
    lengths = [int(tok(photo_batch).stats["length"]) for _ in range(40)]
    full = sum(n == 8 for n in lengths)
    # P(full) = 0.5 + 0.5 / 8 = 0.5625 per batch: 40 batches give 22.5 +- 3.1 (1 sd); 10..35 is > 4 sd wide
    assert 10 <= full <= 35 and len(set(lengths)) > 2
    with pytest.raises(ValueError, match="tail_drop_prob"):
        tiny(tail_drop=True, tail_drop_prob=0.0)


def test_vae_training_forward(photo_batch):
    tok = tiny(quantizer="vae", kl_weight=1e-3).train()
    out = tok(photo_batch)
    assert set(out.losses) == {"kl", "recon_l2"} and out.losses["kl"] > 0
    out.loss.backward()
    assert tok.encoder.conv_out.weight.grad.abs().sum() > 0


@pytest.fixture
def vqgan_file(tmp_path):
    torch.manual_seed(1)
    vq = MaskGITVQGAN(VQGAN["channels"], VQGAN["num_res_blocks"], VQGAN["z_channels"], codebook_size=1024)
    for p in vq.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "maskgit-vqgan.safetensors"
    save_state_dict(vq.state_dict(), path)
    return path, vq


def test_stage1_proxy_code_training(photo_batch, vqgan_file):
    path, ref = vqgan_file
    tok = tiny(decoder_head="proxy", legacy_readout=True, image_size=64, dec_patch_size=16,
               proxy_weights=str(path)).train()
    out = tok(photo_batch)
    assert set(out.losses) == {"commitment", "codebook", "proxy_ce"}
    codes = ref.codes(photo_batch)
    assert torch.equal(out.extras["proxy_codes"], codes) and codes.shape == (4, 4, 4)
    assert out.recon.shape == photo_batch.shape and "proxy_accuracy" in out.stats
    torch.testing.assert_close(out.losses["proxy_ce"], F.cross_entropy(out.extras["proxy_logits"], codes))
    out.loss.backward()
    assert tok.decoder.ffn[2].weight.grad.abs().sum() > 0 and tok.encoder.latent_tokens.grad.abs().sum() > 0
    assert all(p.grad is None for p in tok.proxy_tokenizer.parameters())
    assert "proxy" not in " ".join(tok.state_dict())  # the frozen VQGAN is not part of the checkpoint
    # a stage-1 model decodes to pixels through the proxy tokenizer
    tok.eval()
    y = tok.decode(tok.encode(photo_batch))
    assert y.shape == photo_batch.shape


def test_stage2_freezes_encoder(photo_batch):
    tok = tiny(decoder_head="proxy", legacy_readout=True, pixel_decoder=VQGAN).train()
    x = photo_batch
    out = tok(x)
    assert set(out.losses) == {"recon_l2"} and out.recon.shape == x.shape
    out.loss.backward()
    assert tok.encoder.patch_embed.proj.weight.grad is None
    assert tok.pixel_decoder.conv_out.weight.grad.abs().sum() > 0


def test_vqgan_resblock_shortcut_quirk():
    torch.manual_seed(0)
    blk = VQGANResBlock(32, 64)
    x = torch.randn(1, 32, 4, 4)
    h = blk.conv2(F.silu(blk.norm2(blk.conv1(F.silu(blk.norm1(x))))))
    torch.testing.assert_close(blk(x), h + blk.nin_shortcut(h))


def test_save_and_load_round_trip(tmp_path, photo_batch):
    tok = tiny(tail_drop=True, quantizer="vq")
    tok.save_pretrained(tmp_path)
    loaded = zoo.from_pretrained(tmp_path)
    assert isinstance(loaded, TiTok) and loaded.tail_drop
    assert torch.equal(loaded.encode(photo_batch).ids, tok.encode(photo_batch).ids)


def test_registry_entries_build_and_untrained_tiny_runs(photo_batch):
    names = zoo.list_tokenizers(filter="*titok*") + zoo.list_tokenizers(filter="onedpiece*")
    assert len(names) >= 20
    for name in names:
        info = zoo.get_info(name)
        with torch.device("meta"):  # published sizes: check construction without allocating
            tok = zoo.create_tokenizer(name)
        assert tok.num_tokens == info.token_shape[0] and tok.codebook_size == info.codebook_size, name
        if info.pretrained and info.source.packaged is None:  # official checkpoints (demo ones are packaged)
            assert info.source.converter in ("titok", "onedpiece") and info.metrics["rfid_in1k_val"] > 0
            assert info.license and info.paper and info.source.hf_repo
    tok = zoo.create_tokenizer("onedpiece_tiny")
    assert tok.decode(tok.encode(photo_batch), length=4).shape == photo_batch.shape


def test_lengths_out_of_range_and_proxy_grid_mismatch(photo_batch, tmp_path):
    tok = tiny()
    ids = tok.encode(photo_batch).ids
    with pytest.raises(ValueError, match="lengths"):
        tok.decode(zoo.Tokens(ids=ids, lengths=torch.tensor([0, 1, 2, 3])))
    # a proxy tokenizer whose code grid differs from the decoder grid is refused
    vq = MaskGITVQGAN([32, 32, 64], 1, 32)
    save_state_dict(vq.state_dict(), tmp_path / "f4.safetensors")
    stage1 = tiny(decoder_head="proxy", proxy_weights=str(tmp_path / "f4.safetensors")).train()
    with pytest.raises(ValueError, match="code grid"):
        stage1(photo_batch)


@pytest.mark.slow
def test_few_training_steps_reduce_the_loss_on_a_real_photo(photo_batch):
    tok = tiny(tail_drop=True).train()
    opt = torch.optim.Adam(tok.parameters(), lr=2e-3)
    x = photo_batch[:2]
    torch.manual_seed(0)
    first = None
    for _ in range(25):
        out = tok(x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = float(out.losses["recon_l2"].detach()) if first is None else first
    tok.eval()
    final = float(tok(x).losses["recon_l2"].detach())
    assert final < 0.7 * first, (first, final)


def test_proxy_weights_from_the_hub_cache(tmp_path, monkeypatch, photo_batch):
    """proxy_weights="hub" reads the official MaskGIT-VQGAN .bin (torch format) from an offline HF cache."""
    import huggingface_hub.constants as hc

    from zoo.models.maskgit_vqgan import OFFICIAL_VQGAN

    torch.manual_seed(2)
    vq = MaskGITVQGAN(VQGAN["channels"], VQGAN["num_res_blocks"], VQGAN["z_channels"])
    repo_dir = tmp_path / f"models--{OFFICIAL_VQGAN.hf_repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("a" * 40)
    torch.save(vq.state_dict(), snap / OFFICIAL_VQGAN.files["weights"])
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = tiny(decoder_head="proxy", proxy_weights="hub").train()
    out = tok(photo_batch)
    assert torch.equal(out.extras["proxy_codes"], vq.codes(photo_batch))
