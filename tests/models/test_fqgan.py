"""FQGAN tokenizer: API, persistence, official-layout conversion, and a short training run on photos."""
import re

import pytest
import torch
import torch.nn.functional as F

import zoo
from tests.models.image_training import train_on_photos
from zoo.models.fqgan import FQGAN


def _tiny(**kw):
    cfg = dict(variant="dual", codebook_size=32, codebook_dim=4, z_channels=32, ch=32, ch_mult=[1, 2],
               num_res_blocks=1, num_groups=8, image_size=32, adapter_depth=1, adapter_heads=4,
               feat_dims={"sem": 48}, feat_depth=1, feat_heads=4, entropy_loss_ratio=0.03, disentangle_ratio=0.1)
    cfg.update(kw)
    return FQGAN(**cfg)


def pooled_colours(x: torch.Tensor) -> torch.Tensor:
    """A fixed, weight-free feature network standing in for CLIP: 4x4 average-pooled colours [B, 48]."""
    return F.adaptive_avg_pool2d(x, 4).flatten(1)


def test_encode_decode_roundtrip(photo_batch, tmp_path):
    torch.manual_seed(0)
    tok = _tiny(variant="triple", feat_dims={"sem_mid": 16, "sem_high": 48}).eval()
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


def _to_official(sd: dict, variant: str) -> dict:
    """Zoo FQGAN keys -> the official VQModel layout (tokenizer/vq_model_{dual,triple}.py)."""
    names = {"dual": ["vis", "sem"], "triple": ["vis", "sem_mid", "sem_high"]}[variant]
    head = {"vis": "visual_head", "sem": "semantic_head", "sem_mid": "semantic_head_mid",
            "sem_high": "semantic_head_high"}
    feat = {"sem": "feat_pred_head", "sem_mid": "mid_sem_feat_pred", "sem_high": "high_sem_feat_pred"}
    out = {}
    for k, v in sd.items():
        if ".transformer.blocks." in k:  # nn.MultiheadAttention-based ResidualAttentionBlock names
            k = k.replace(".transformer.blocks.", ".transformer.").replace(".norm1.", ".ln_1.").replace(".norm2.", ".ln_2.")
            k = k.replace(".mlp.fc1.", ".mlp.c_fc.").replace(".mlp.fc2.", ".mlp.c_proj.")
            k = k.replace(".attn.qkv.", ".attn.in_proj_").replace(".attn.proj.", ".attn.out_proj.")
        if m := re.match(r"heads\.(\d)\.adapter\.(.*)", k):
            k = f"encoder.{head[names[int(m.group(1))]]}.0.{m.group(2)}"
        elif m := re.match(r"heads\.(\d)\.(norm_out|conv_out)\.(.*)", k):
            k = f"encoder.{m.group(2)}_{names[int(m.group(1))]}.{m.group(3)}"
        elif m := re.match(r"quant_convs\.(\d)\.(.*)", k):
            k = f"quant_conv_{names[int(m.group(1))]}.{m.group(2)}"
        elif m := re.match(r"quantizer\.codebooks\.(\d)\.weight", k):
            k = f"quantize_{names[int(m.group(1))]}.embedding.weight"
            out[f"quantize_{names[int(m.group(1))]}.codebook_used"] = torch.zeros(65536)
        elif m := re.match(r"feat_heads\.(\w+?)\.(.*)", k):
            k = f"{feat[m.group(1)]}.{m.group(2)}"
        out[k] = v
    return out


@pytest.mark.parametrize("variant,feats", [("dual", {"sem": 64}), ("triple", {"sem_mid": 32, "sem_high": 64})])
def test_official_layout_conversion(variant, feats, photo_batch):
    torch.manual_seed(0)
    ref = FQGAN(variant=variant, codebook_size=32, codebook_dim=4, z_channels=32, ch=32, ch_mult=[1, 2],
                num_res_blocks=2, num_groups=32, image_size=32, adapter_depth=2, adapter_heads=8,
                feat_dims=feats, feat_depth=1, feat_heads=8).eval()
    official = _to_official(ref.state_dict(), variant)
    assert "encoder.visual_head.0.transformer.1.attn.in_proj_weight" in official
    assert "encoder.conv_out_vis.weight" in official and "post_quant_conv.weight" in official
    config = {"codebook_size": 32, "codebook_embed_dim": 4, "encoder_ch_mult": [1, 2], "decoder_ch_mult": [1, 2],
              "z_channels": 32, "with_disentanglement": True, "disentanglement_ratio": 0.1}
    tok = zoo.load_official("fqgan", {"ema": official}, config)
    x = photo_batch[:2, :, :32, :32]
    assert torch.equal(tok.encode(x).ids, ref.encode(x).ids)
    torch.testing.assert_close(tok.reconstruct(x), ref.reconstruct(x))
    q = zoo.load_official("fqgan.quantizer", official, config)
    assert q.names == tok.branches
    broken = dict(official)
    broken.pop("encoder.mid.0.conv1.weight")
    with pytest.raises(zoo.CheckpointMismatchError, match="encoder.mid.0.conv1.weight"):
        zoo.load_official("fqgan", broken, config)


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
