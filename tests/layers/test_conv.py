"""2D conv blocks: shapes, SDPA attention vs the explicit softmax form, encoder/decoder stacks."""
import pytest
import torch

from zoo.layers.conv import AttnBlock, ConvDecoder2d, ConvEncoder2d, Downsample, ResnetBlock, Upsample


def test_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    blk = AttnBlock(32, num_groups=8).eval()
    x = torch.randn(2, 32, 5, 3)
    h = blk.norm(x)
    q, k, v = (m(h).flatten(2) for m in (blk.q, blk.k, blk.v))  # [B, C, N]
    w = torch.softmax(q.transpose(1, 2) @ k * 32 ** -0.5, dim=-1)  # [B, N, N]
    ref = x + blk.proj_out((v @ w.transpose(1, 2)).view_as(x))
    torch.testing.assert_close(blk(x), ref, atol=1e-5, rtol=1e-5)


def test_blocks_shapes():
    x = torch.randn(1, 16, 8, 8)
    assert ResnetBlock(16, 32, num_groups=8)(x).shape == (1, 32, 8, 8)
    assert Downsample(16)(x).shape == (1, 16, 4, 4)
    assert Downsample(16, with_conv=False)(x).shape == (1, 16, 4, 4)
    assert Upsample(16)(x).shape == (1, 16, 16, 16)
    with pytest.raises(ValueError):
        ResnetBlock(12, num_groups=8)


def test_encoder_decoder_on_photo(photo_batch):
    torch.manual_seed(0)
    enc = ConvEncoder2d(3, 16, (1, 2, 2), num_res_blocks=1, z_channels=8, num_groups=8)
    dec = ConvDecoder2d(8, 16, (1, 2, 2), num_res_blocks=1, num_groups=8)
    x = photo_batch[:2, :, :32, :32] * 2 - 1
    z = enc(x)
    assert z.shape == (2, 8, 8, 8) and enc.downsample_factor == 4
    y = dec(z)
    assert y.shape == x.shape and torch.isfinite(y).all()
    trunk = ConvEncoder2d(3, 16, (1, 2), num_res_blocks=1, z_channels=None, num_groups=8)
    assert trunk(x).shape == (2, 32, 16, 16) and trunk.out_width == 32
    keys = set(enc.state_dict())
    assert {"conv_blocks.0.res.0.norm1.weight", "conv_blocks.2.attn.0.q.weight", "mid.1.proj_out.bias",
            "conv_blocks.0.downsample.conv.weight", "conv_out.weight"} <= keys
    assert "conv_blocks.0.upsample.conv.weight" in dec.state_dict()  # deepest level first (LlamaGen order)
