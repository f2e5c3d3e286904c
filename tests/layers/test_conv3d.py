"""Causal 3D conv blocks: shapes, causality, and 2D -> 3D inflation against zoo.layers.conv."""
import pytest
import torch

from zoo.layers.conv import ConvDecoder2d, ConvEncoder2d
from zoo.layers.conv3d import (CausalConv3d, CausalConvDecoder3d, CausalConvEncoder3d, CausalDownsample3d,
                               CausalResBlock3d, CausalUpsample3d, FrameAttention3d, FrameGroupNorm,
                               causal_frames_after, inflate_conv_weight, inflate_state_dict)

KW = dict(ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, num_groups=4)


@pytest.fixture(scope="module")
def real_clip():
    """A real 9-frame pan over a photo, [2, 3, 9, 32, 32]."""
    from zoo.data.video import PhotoClips

    ds = PhotoClips(frames=9, size=32)
    return torch.stack([ds[0], ds[1]])


def test_causal_conv_shapes_and_strides():
    x = torch.randn(2, 4, 9, 16, 16)
    assert CausalConv3d(4, 8, 3)(x).shape == (2, 8, 9, 16, 16)
    assert CausalConv3d(4, 8, 3, stride=(2, 1, 1))(x).shape == (2, 8, 5, 16, 16)
    assert CausalDownsample3d(4, temporal=True)(x).shape == (2, 4, 5, 8, 8)
    assert CausalDownsample3d(4, temporal=False)(x).shape == (2, 4, 9, 8, 8)
    assert CausalUpsample3d(4, temporal=True)(x).shape == (2, 4, 17, 32, 32)
    assert CausalUpsample3d(4, temporal=False)(x).shape == (2, 4, 9, 32, 32)
    assert causal_frames_after(17, 4) == 5
    with pytest.raises(ValueError, match="1 \\+ 2k"):
        CausalConv3d(4, 4, 3, stride=(2, 1, 1))(torch.randn(1, 4, 8, 4, 4))
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        CausalConv3d(4, 4, 3)(torch.randn(4, 8, 4, 4))
    with pytest.raises(ValueError, match="time_pad"):
        CausalConv3d(4, 4, 3, time_pad="reflect")


@pytest.mark.parametrize("module,cin", [
    (lambda: CausalConv3d(3, 8, 3), 3), (lambda: CausalResBlock3d(8, 16, num_groups=4), 8),
    (lambda: FrameAttention3d(8, num_groups=4), 8), (lambda: CausalDownsample3d(8, temporal=True), 8),
    (lambda: CausalUpsample3d(8, temporal=True), 8),
])
def test_blocks_are_causal(module, cin):
    """Changing frames >= 5 never changes outputs that correspond to frames < 5."""
    torch.manual_seed(0)
    m = module().eval()
    x = torch.randn(1, cin, 9, 8, 8)
    y = x.clone()
    y[:, :, 5:] = torch.randn_like(y[:, :, 5:])
    with torch.no_grad():
        a, b = m(x), m(y)
    # output frames fed only by input frames 0..4
    keep = {9: 5, 5: 3, 17: 9}[a.shape[2]]
    torch.testing.assert_close(a[:, :, :keep], b[:, :, :keep], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, :, keep:], b[:, :, keep:])


def test_frame_group_norm_matches_2d_per_frame():
    x = torch.randn(2, 8, 5, 6, 6)
    gn = FrameGroupNorm(4, 8)
    torch.nn.init.normal_(gn.weight)
    ref = torch.nn.functional.group_norm(x.transpose(1, 2).reshape(10, 8, 6, 6), 4, gn.weight, gn.bias, gn.eps)
    torch.testing.assert_close(gn(x), ref.view(2, 5, 8, 6, 6).transpose(1, 2))


def test_inflate_conv_weight_modes():
    w = torch.randn(4, 3, 3, 3)
    last = inflate_conv_weight(w, 3, "last")
    assert last.shape == (4, 3, 3, 3, 3)
    torch.testing.assert_close(last[:, :, -1], w)
    assert last[:, :, :-1].abs().sum() == 0
    mean = inflate_conv_weight(w, 3, "mean")
    torch.testing.assert_close(mean.sum(2), w)
    with pytest.raises(ValueError, match="mode"):
        inflate_conv_weight(w, 3, "center")
    with pytest.raises(ValueError, match="2D conv kernel"):
        inflate_conv_weight(torch.randn(4, 3, 3), 3)


def test_inflated_conv_is_framewise(real_clip):
    """Mode 'last': a causal 3x3x3 conv equals the 2D conv on every frame of a moving clip."""
    conv2d = torch.nn.Conv2d(3, 8, 3, padding=1)
    conv3d = CausalConv3d(3, 8, 3)
    assert inflate_state_dict(conv3d, conv2d.state_dict(), "last") == []
    with torch.no_grad():
        y3 = conv3d(real_clip)
        y2 = conv2d(real_clip.transpose(1, 2).flatten(0, 1)).view(2, 9, 8, 32, 32).transpose(1, 2)
    torch.testing.assert_close(y3, y2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["last", "mean"])
def test_inflated_encoder_decoder_reproduce_2d_on_static_clip(mode, real_clip):
    """An inflated 3D encoder / decoder maps a static clip (one real photo repeated) to the 2D
    network's output repeated, including temporal down- and up-sampling."""
    torch.manual_seed(0)
    e2, d2 = ConvEncoder2d(z_channels=8, **KW).eval(), ConvDecoder2d(z_channels=8, **KW).eval()
    e3 = CausalConvEncoder3d(z_channels=8, temporal_down=(True, True), **KW).eval()
    d3 = CausalConvDecoder3d(z_channels=8, temporal_up=(True, True), **KW).eval()
    assert inflate_state_dict(e3, e2.state_dict(), mode) == []
    assert inflate_state_dict(d3, d2.state_dict(), mode) == []
    image = real_clip[:, :, 4] * 2 - 1
    static = image[:, :, None].expand(-1, -1, 9, -1, -1)
    with torch.no_grad():
        z2, z3 = e2(image), e3(static)
        assert z3.shape == (2, 8, 3, 8, 8)
        torch.testing.assert_close(z3, z2[:, :, None].expand_as(z3), rtol=1e-4, atol=1e-4)
        x2, x3 = d2(z2), d3(z3)
        assert x3.shape == (2, 3, 9, 32, 32)
        torch.testing.assert_close(x3, x2[:, :, None].expand_as(x3), rtol=1e-4, atol=1e-4)
    # sanity: the 3D encoder is not trivially frame-independent on a moving clip in 'mean' mode
    if mode == "mean":
        with torch.no_grad():
            moving = e3(real_clip * 2 - 1)
            framewise = e2(real_clip[:, :, 8] * 2 - 1)
        assert not torch.allclose(moving[:, :, -1], framewise, atol=1e-3)


def test_inflate_state_dict_errors():
    e3 = CausalConvEncoder3d(z_channels=8, temporal_down=(True, True), **KW)
    e2 = ConvEncoder2d(z_channels=4, **KW)
    with pytest.raises(ValueError, match="conv_out"):
        inflate_state_dict(e3, e2.state_dict())
    extra = {**ConvEncoder2d(z_channels=8, **KW).state_dict(), "head.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match="no 3D counterpart"):
        inflate_state_dict(e3, extra)
    missing = {k: v for k, v in ConvEncoder2d(z_channels=8, **KW).state_dict().items() if not k.startswith("conv_out")}
    assert inflate_state_dict(e3, missing) == ["conv_out.weight", "conv_out.bias"]


def test_encoder_decoder_frame_counts():
    e = CausalConvEncoder3d(z_channels=4, temporal_down=(False, True), **KW)
    d = CausalConvDecoder3d(z_channels=4, temporal_up=(True, False), **KW)
    for t, lt in ((1, 1), (5, 3), (9, 5)):
        z = e(torch.randn(1, 3, t, 16, 16))
        assert z.shape == (1, 4, lt, 4, 4)
        assert d(z).shape == (1, 3, t, 16, 16)
    with pytest.raises(ValueError, match="one flag per"):
        CausalConvEncoder3d(temporal_down=(True,), **KW)
