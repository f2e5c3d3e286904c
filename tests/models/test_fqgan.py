"""FQGAN tokenizer: API, persistence, registry entries and a short training run on photos (parity of the
whole converted model with the official code: tests/convert/test_fqgan_whole_golden.py)."""
import pytest
import torch
import torch.nn.functional as F

import zoo
from tests.models.image_training import train_on_photos
from zoo.models.fqgan import FQGAN


def _tiny(**kw):
    cfg = dict(variant="dual", codebook_size=32, codebook_dim=4, z_channels=32, ch=32, ch_mult=[1, 2],
               num_res_blocks=1, num_groups=8, image_size=32, adapter_depth=1, adapter_heads=4,
               teacher_dims={"sem": 48}, feat_depth=1, feat_heads=4, entropy_weight=0.03, disentangle_weight=0.1)
    cfg.update(kw)
    return FQGAN(**cfg)


def pooled_colours(x: torch.Tensor) -> torch.Tensor:
    """A fixed, weight-free feature network standing in for CLIP: 4x4 average-pooled colours [B, 48]."""
    return F.adaptive_avg_pool2d(x, 4).flatten(1)


def test_encode_decode_roundtrip(photo_batch, tmp_path):
    torch.manual_seed(0)
    tok = _tiny(variant="triple", teacher_dims={"sem_mid": 16, "sem_high": 48}).eval()
    x = photo_batch[:, :, :32, :32]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (4, 256, 3) == (4, *tok.token_shape((3, 32, 32)))
    assert tok.codebook_size == (32, 32, 32)
    y = tok.decode(tokens)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    # the decoder input is the concatenation of the sub-codes in branch order
    with torch.no_grad():
        q = tok.quantizer(tok.branch_latents(x))
    assert torch.equal(q.ids.flatten(1, 2), tokens.ids)
    torch.testing.assert_close(tok.decode(tokens.ids.view(4, 256, 3)), y)
    tok.save_pretrained(tmp_path)
    again = zoo.from_pretrained(tmp_path)
    assert torch.equal(again.encode(x).ids, tokens.ids)
    with pytest.raises(ValueError):
        tok.decode(tokens.ids[..., :2])
    with pytest.raises(ValueError):
        tok.decode(torch.full((1, 256, 3), 32))
    with pytest.raises(ValueError):
        FQGAN(variant="quad")


def test_semantic_teacher_loss(photo_batch):
    tok = _tiny()
    tok.set_teacher("sem", pooled_colours)
    out = tok(photo_batch[:, :, :32, :32])
    assert {"recon", "semantic_sem", "disentangle", "entropy_vis", "codebook_sem"} <= set(out.losses)
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert out.extras["semantic_features"]["sem"].shape == (4, 257, 48)  # CLS + 16x16 tokens
    with pytest.raises(ValueError):
        tok.set_teacher("vis", pooled_colours)


def test_registry_entries():
    names = zoo.list_tokenizers(family="fqgan")
    assert {"fqgan_dual_ds16.in1k", "fqgan_triple_ds16.in1k", "fqgan_tiny.untrained"} <= set(names)
    info = zoo.get_info("fqgan_triple_ds16.in1k")
    assert info.source.hf_repo == "ZechenBai/FQGAN" and info.source.converter == "fqgan"
    assert info.metrics["rfid_in1k_val_256"] == 0.76 and info.token_shape == (256, 3)


@pytest.mark.slow
def test_tiny_training_on_photos():
    """~100 steps at 32x32 on real photos: every loss finite, reconstruction and alignment improve."""
    from zoo.data.offline import photos

    torch.manual_seed(0)
    data = photos(32)
    tok = zoo.create_tokenizer("fqgan_tiny.untrained").train()
    tok.set_teacher("sem", pooled_colours)
    first, last, out = train_on_photos(tok, data)
    assert last["recon"] < 0.7 * first["recon"]
    assert last["semantic_sem"] < first["semantic_sem"]
    assert 0 < float(out.stats["usage_vis"]) <= 1 and float(out.stats["perplexity_sem"]) >= 1
