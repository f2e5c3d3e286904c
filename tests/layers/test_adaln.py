"""adaLN-zero block and head."""
import pytest
import torch

from zoo.layers.adaln import DIT_ORDER, AdaLNBlock, AdaLNHead, AdaLNModulation, modulate


def test_zero_init_is_identity():
    blk = AdaLNBlock(32, 2, 48)
    x, c = torch.randn(2, 5, 32), torch.randn(2, 32)
    assert torch.equal(blk(x, c), x)
    head = AdaLNHead(32, 7)
    assert head(x, c).shape == (2, 5, 7)


def test_block_matches_manual_formula():
    torch.manual_seed(0)
    order = ("gate_msa", "gate_mlp", "shift_msa", "scale_msa", "shift_mlp", "scale_mlp")
    blk = AdaLNBlock(16, 2, 24, order=order)
    torch.nn.init.normal_(blk.adaLN_modulation[1].weight)
    torch.nn.init.normal_(blk.adaLN_modulation[1].bias)
    x, c = torch.randn(3, 4, 16), torch.randn(3, 16)
    chunks = dict(zip(order, blk.adaLN_modulation(c).chunk(6, dim=-1)))
    m = {k: v[:, None] for k, v in chunks.items()}
    ln = torch.nn.functional.layer_norm
    ref = x + m["gate_msa"] * blk.attn(ln(x, (16,), eps=1e-5) * (1 + m["scale_msa"]) + m["shift_msa"])
    ref = ref + m["gate_mlp"] * blk.mlp(ln(ref, (16,), eps=1e-5) * (1 + m["scale_mlp"]) + m["shift_mlp"])
    assert torch.allclose(blk(x, c), ref, atol=1e-5)


def test_segments_select_per_token_modulation():
    mod = AdaLNModulation(8, 4, n=2, segments=2)
    torch.nn.init.normal_(mod.adaLN_modulation[1].weight)
    c = torch.randn(2, 8)
    full = mod.adaLN_modulation(c).view(2, 2, 2, 4)
    seg = torch.tensor([0, 0, 1])
    out = mod(c, seg)
    assert out.shape == (2, 3, 2, 4)
    assert torch.equal(out[:, 0], full[:, 0]) and torch.equal(out[:, 2], full[:, 1])
    with pytest.raises(ValueError, match="segment_ids"):
        mod(c)


def test_bad_order_and_modulate():
    with pytest.raises(ValueError):
        AdaLNBlock(8, 2, 8, order=DIT_ORDER[:5] + ("gate",))
    x = torch.ones(2)
    assert torch.equal(modulate(x, torch.tensor(1.0), torch.tensor(2.0)), torch.full((2,), 4.0))
