"""Vocos backbone: ConvNeXt blocks, AdaLayerNorm conditioning, WavTokenizer pos-net."""
import pytest
import torch

from zoo.layers.vocos import AdaLayerNorm, AttnBlock1d, VocosBackbone


def test_backbone_shapes_plain_and_conditioned():
    torch.manual_seed(0)
    x = torch.randn(2, 20, 9)
    plain = VocosBackbone(20, 32, 48, num_layers=2)
    assert plain.pos_net is None and plain(x).shape == (2, 9, 32)
    cond = VocosBackbone(20, 32, 48, num_layers=2, adanorm_num_embeddings=3, pos_net=True).eval()
    assert cond(x, torch.tensor([1])).shape == (2, 9, 32)
    with pytest.raises(ValueError, match="condition"):
        cond(x)
    with pytest.raises(ValueError, match="expects"):
        cond(torch.randn(2, 19, 9), torch.tensor([0]))


def test_condition_ids_select_rows_and_broadcast():
    torch.manual_seed(0)
    net = VocosBackbone(8, 32, 64, num_layers=1, adanorm_num_embeddings=2, pos_net=True).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, AdaLayerNorm):
                m.scale.weight.add_(0.3 * torch.randn_like(m.scale.weight))
                m.shift.weight.add_(0.3 * torch.randn_like(m.shift.weight))
    x = torch.randn(2, 8, 6)
    y0, y1 = net(x, torch.tensor([0])), net(x, torch.tensor([1]))
    assert not torch.allclose(y0, y1)
    per_item = net(x, torch.tensor([0, 1]))
    torch.testing.assert_close(per_item[0], y0[0])
    torch.testing.assert_close(per_item[1], y1[1])


def test_attention_block_matches_explicit_softmax():
    torch.manual_seed(0)
    blk = AttnBlock1d(32).eval()
    x = torch.randn(2, 32, 7)
    h = blk.norm(x)
    q, k, v = blk.q(h), blk.k(h), blk.v(h)
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / 32 ** 0.5, dim=-1)
    ref = x + blk.proj_out(torch.einsum("bij,bcj->bci", w, v))
    torch.testing.assert_close(blk(x), ref, atol=1e-5, rtol=1e-5)


def test_pos_net_needs_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        VocosBackbone(8, 48, 64, num_layers=1, pos_net=True)


def test_layer_scale_default_and_init():
    net = VocosBackbone(8, 32, 64, num_layers=4)
    assert torch.allclose(net.convnext[0].gamma, torch.full((32,), 0.25))
    assert net.embed.bias.abs().sum() == 0


@pytest.mark.parametrize("adanorm", [None, 4])
def test_inference_runs_time_major_with_the_same_maths(adanorm):
    """Without autograd the ConvNeXt stack stays time-major (channels-last depthwise conv); with it,
    channels-first. Same products in other summation orders: float32 rounding only."""
    torch.manual_seed(0)
    m = VocosBackbone(32, 64, 96, 3, adanorm_num_embeddings=adanorm, pos_net=True).eval()
    x, cond = torch.randn(2, 32, 50), (torch.tensor([1, 3]) if adanorm else None)
    with torch.inference_mode():
        fast = m(x, cond)
    with torch.enable_grad():
        ref = m(x, cond).detach()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
