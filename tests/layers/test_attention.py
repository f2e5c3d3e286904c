"""Attention matches PyTorch's reference and loads foreign weight layouts."""
import torch
from torch import nn

from zoo.layers import Attention, Block


def test_matches_nn_multihead_attention_with_in_proj_weights():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    attn = Attention(32, 4)
    attn.load_state_dict(ref.state_dict())  # in_proj_weight / out_proj names
    x = torch.randn(2, 7, 32)
    torch.testing.assert_close(attn(x), ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)


def test_separate_qkv_weights_load():
    torch.manual_seed(0)
    attn = Attention(16, 2)
    q, k, v = attn.qkv.weight.detach().chunk(3)
    qb, kb, vb = attn.qkv.bias.detach().chunk(3)
    sd = {"q.weight": q, "k.weight": k, "v.weight": v, "q.bias": qb, "k.bias": kb, "v.bias": vb,
          "proj.weight": attn.proj.weight.detach(), "proj.bias": attn.proj.bias.detach()}
    other = Attention(16, 2)
    other.load_state_dict(sd)
    x = torch.randn(1, 5, 16)
    torch.testing.assert_close(other(x), attn(x))


def test_mask_matches_manual_softmax_and_empty_rows_are_zero():
    torch.manual_seed(0)
    attn = Attention(8, 2, qk_norm=True)
    x = torch.randn(1, 4, 8)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = attn(x, mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 3], attn.proj.bias)  # empty row -> zero attention output
    q, k, v = attn.qkv(x).view(1, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(q), attn.k_norm(k)
    w = (q @ k.transpose(-1, -2) / 2.0).masked_fill(~mask, float("-inf"))[..., :3, :].softmax(-1)
    manual = attn.proj((w @ v).transpose(1, 2).reshape(1, 3, 8))
    torch.testing.assert_close(out[:, :3], manual, atol=1e-5, rtol=1e-5)


def test_block_options_build_and_run():
    blk = Block(16, 2, mlp="swiglu", bias=False, qk_norm=True, norm_affine=False)
    linear_biases = [n for n, m in blk.named_modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    assert linear_biases == [] and blk.norm1.weight is None
    assert blk(torch.randn(2, 3, 16)).shape == (2, 3, 16)
