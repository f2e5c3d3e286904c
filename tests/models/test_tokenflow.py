"""TokenFlow-style tokenizer: API, multi-scale ids, persistence, the CLIP encoder's block formulation and
position interpolation, and a short training run on photos (parity of the whole converted model with
the official code: tests/convert/test_tokenflow_whole_golden.py)."""
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from tests.models.image_training import train_on_photos
from zoo.models.tokenflow import ClipVisionEncoder, TokenFlow


def patch_colours(x: torch.Tensor) -> torch.Tensor:
    """A fixed, weight-free patch feature network standing in for CLIP: 4x4 patches -> [B, 64, 48]."""
    return F.unfold(x, 4, stride=4).transpose(1, 2)


def test_encode_decode_and_prefix(photo_batch, tmp_path):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").eval()
    x = photo_batch[:, :, :32, :32]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (4, 1 + 4 + 16 + 36 + 64) == (4, *tok.token_shape((3, 32, 32)))
    assert tok.codebook_size == 256
    y = tok.decode(tokens)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert tok.decode(tokens.ids[:, :21]).shape == x.shape  # coarse prefix (scales 1, 2, 4)
    assert tok.decode_semantic(tokens).shape == (4, 64, 48)
    with pytest.raises(ValueError):
        tok.decode(tokens.ids[:, :20])
    with pytest.raises(ValueError):
        tok.encode(photo_batch)  # 64x64 is not the model's 32x32
    tok.save_pretrained(tmp_path)
    assert torch.equal(zoo.from_pretrained(tmp_path).encode(x).ids, tokens.ids)


def test_shared_index_drives_both_decoders(photo_batch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").eval()
    x = photo_batch[:2, :, :32, :32]
    with torch.no_grad():
        z = tok.latents(x)
        out = tok.quantizer(z)
    sem, pix = torch.split(out.z_q, [16, 8], dim=1)
    latents = tok.quantizer.ids_to_latents(out.ids)
    torch.testing.assert_close(latents[:, :16], sem, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(latents[:, 16:], pix, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        TokenFlow(image_size=32, ch_mult=[1, 2], patch_size=4, num_groups=8, ch=16, z_channels=16)


@pytest.mark.slow
def test_tiny_training_on_photos():
    """~100 steps at 32x32 on real photos: every loss finite, reconstruction and semantics improve."""
    from zoo.data.offline import photos

    torch.manual_seed(0)
    data = photos(32)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").train()
    tok.set_teacher(patch_colours)
    first, last, out = train_on_photos(tok, data)
    assert {"recon", "codebook", "commitment", "semantic"} <= set(last)
    assert last["recon"] < 0.7 * first["recon"]
    assert last["semantic"] < first["semantic"]
    assert 0 < float(out.stats["usage_all_scales"]) <= 1 and float(out.stats["perplexity"]) >= 1


def test_separate_codebooks_dualtoken_style(photo_batch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained", codebook_mapping="separate").eval()
    x = photo_batch[:2, :, :32, :32]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (2, 121, 2) == (2, *tok.token_shape((3, 32, 32)))
    assert tok.codebook_size == (256, 256)
    assert tok.decode(tokens).shape == x.shape
    tok.train()
    out = tok(x)
    assert {"codebook_sem", "codebook_pix", "commitment_pix"} <= set(out.losses)
    assert all(torch.isfinite(v) for v in out.losses.values())


class _OfficialClipBlock(nn.Module):
    """The official CLIP ResidualAttentionBlock formulation (LND layout, nn.MultiheadAttention, QuickGELU)."""

    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, 4 * d)), ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d)

    def forward(self, x):
        x = x + self.attn(*(self.ln_1(x),) * 3, need_weights=False)[0]
        h = self.mlp.c_fc(self.ln_2(x))
        return x + self.mlp.c_proj(h * torch.sigmoid(1.702 * h))


def test_clip_encoder_matches_official_block_formulation():
    torch.manual_seed(0)
    enc = ClipVisionEncoder(4, 64, 2, 4, pos_grid=4).eval()
    blocks = nn.ModuleList(_OfficialClipBlock(64, 4) for _ in range(2)).eval()
    sd = {}
    for i, b in enumerate(blocks):
        for k, v in b.state_dict().items():
            for a, r in (("ln_1.", "norm1."), ("ln_2.", "norm2."), ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."),
                         ("attn.in_proj_", "attn.qkv."), ("attn.out_proj.", "attn.proj.")):
                k = k.replace(a, r) if k.startswith(a) else k
            sd[f"blocks.{i}.{k}"] = v
    enc.load_state_dict(sd, strict=False)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    t = enc.conv1(x).flatten(2).transpose(1, 2)
    t = torch.cat([enc.class_embedding.expand(2, 1, -1), t], 1) + enc.positional_embedding
    t = enc.ln_pre(t).permute(1, 0, 2)
    for b in blocks:
        t = b(t)
    ref = enc.ln_post(t.permute(1, 0, 2))[:, 1:]
    with torch.no_grad():
        torch.testing.assert_close(enc(x), ref, atol=1e-5, rtol=1e-5)
        # other grids: bicubic-interpolated positions
        assert enc(torch.rand(1, 3, 24, 24)).shape == (1, 36, 64)
