"""Whole-model TokenFlow conversion from the official key layout (clipb_224 teacher)."""
import re
from collections import OrderedDict

import pytest
import torch
from torch import nn

import zoo
from zoo.models.tokenflow import ClipVisionEncoder, TokenFlow


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


def _tiny_kwargs():
    return dict(codebook_size=64, semantic_dim=8, pixel_dim=4, image_size=32, ch=32, ch_mult=[1, 2, 2],
                num_res_blocks=1, z_channels=32, num_groups=32, dec_ch=64, dec_num_res_blocks=2, patch_size=4,
                sem_width=128, sem_depth=2, sem_heads=2, sem_pos_grid=6, sem_dec_width=96, sem_dec_depth=1,
                sem_dec_heads=12, teacher_dim=24, scales=[1, 2, 4, 6, 8])


def _to_official(sd):
    """Zoo TokenFlow keys -> official TokenFlow keys (tokenflow/tokenizer/vq_model.py, clip/model.py, vqkd_model.py)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("encoder_vqkd.blocks."):
            k = k.replace("encoder_vqkd.blocks.", "encoder_vqkd.transformer.resblocks.")
            for a, b in ((".norm1.", ".ln_1."), (".norm2.", ".ln_2."), (".mlp.fc1.", ".mlp.c_fc."),
                         (".mlp.fc2.", ".mlp.c_proj."), (".attn.qkv.", ".attn.in_proj_"), (".attn.proj.", ".attn.out_proj.")):
                k = k.replace(a, b)
        elif m := re.match(r"(decoder_vqkd\.blocks\.\d+\.attn)\.qkv\.bias", k):
            q, _, vb = v.chunk(3)
            out[f"{m.group(1)}.q_bias"], out[f"{m.group(1)}.v_bias"] = q, vb
            continue
        k = k.replace("quantizer.quantizer.embedding_sem.", "quantize.embedding_vqkd.")
        k = k.replace("quantizer.quantizer.embedding_pix.", "quantize.embedding_vqgan.")
        out[k] = v
    out["encoder_vqkd.proj"] = torch.randn(128, 24)
    out["quantize.codebook_used"] = torch.zeros(131072)
    return out


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


def test_whole_model_from_official_layout(photo_batch):
    torch.manual_seed(0)
    ref = TokenFlow(**_tiny_kwargs()).eval()
    official = _to_official(ref.state_dict())
    config = {"codebook_size": 64, "codebook_embed_dim": 4, "semantic_code_dim": 8, "encoder_ch_mult": [1, 2, 2],
              "decoder_ch_mult": [1, 2, 2], "z_channels": 32, "teacher": "clipb_224", "infer_interpolate": True}
    with pytest.raises(ValueError, match="last scale"):  # the teacher's schedule ends at 16, the tiny grid is 8
        zoo.load_official("tokenflow", {"model": official}, config, image_size=32)
    tok = zoo.load_official("tokenflow", {"model": official}, config, scales=[1, 2, 4, 6, 8])
    assert tok.grid == 8 and tok.decoder.conv_out.weight.shape[1] == 64  # widths / depths read from the weights
    x = photo_batch[:2, :, :32, :32]
    with torch.no_grad():
        assert torch.equal(tok.encode(x).ids, ref.encode(x).ids)
        torch.testing.assert_close(tok.reconstruct(x), ref.reconstruct(x))
    q = zoo.load_official("tokenflow.quantizer", official, config)
    assert q.quantizer.semantic_dim == 8 and q.scales[-1] == 16
    with pytest.raises(ValueError):
        zoo.load_official("tokenflow", official, {**config, "teacher": "siglip_384"})
    broken = dict(official)
    broken.pop("decoder_vqkd.blocks.0.attn.v_bias")
    with pytest.raises(KeyError):
        zoo.load_official("tokenflow", broken, config)
