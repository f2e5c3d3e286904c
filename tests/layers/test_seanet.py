"""SEANet encoder: exact frame arithmetic, weight-norm convs, reflect padding of short inputs."""
import math

import pytest
import torch
from torch import nn

from zoo.layers.seanet import SConv1d, SEANetEncoder, WNConv1d, pad1d


@pytest.fixture(scope="module")
def small_encoder():
    torch.manual_seed(0)
    return SEANetEncoder(channels=1, dimension=8, n_filters=2, ratios=(4, 3, 2), lstm=1).eval()


@pytest.mark.parametrize("length", [1, 5, 23, 24, 25, 240, 241])
def test_frames_are_ceil_of_length_over_hop(small_encoder, length):
    assert small_encoder.strides == [2, 3, 4] and small_encoder.hop_length == 24
    with torch.no_grad():
        z = small_encoder(torch.randn(2, 1, length))
    assert z.shape == (2, 8, math.ceil(length / 24)) == (2, 8, small_encoder.num_frames(length))


def test_encoder_runs_on_real_speech(small_encoder, speech_clip):
    x = speech_clip(24000, 0.25)
    with torch.no_grad():
        z = small_encoder(x[:, None])
    assert z.shape[-1] == math.ceil(x.shape[-1] / 24) and torch.isfinite(z).all()


def test_weight_norm_conv_matches_torch_parametrization():
    torch.manual_seed(0)
    ours = WNConv1d(3, 5, 4, stride=2)
    with torch.no_grad():
        ours.weight_g.uniform_(0.5, 2.0)  # g differs from ||v||
    ref = nn.utils.parametrizations.weight_norm(nn.Conv1d(3, 5, 4, stride=2))
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(ours.weight_g)
        ref.parametrizations.weight.original1.copy_(ours.weight_v)
        ref.bias.copy_(ours.bias)
    x = torch.randn(2, 3, 17)
    torch.testing.assert_close(ours(x), ref(x))
    norms = ours.weight.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, ours.weight_g.flatten())


def test_state_dict_uses_encodec_names():
    keys = set(SConv1d(2, 4, 3).state_dict())
    assert keys == {"conv.conv.weight_g", "conv.conv.weight_v", "conv.conv.bias"}


def test_reflect_pad_of_short_input():
    x = torch.arange(3.0)[None, None]
    y = pad1d(x, 3, 4)
    assert y.shape[-1] == 3 + 7
    torch.testing.assert_close(y[..., 3:6], x)
    torch.testing.assert_close(pad1d(x, 1, 1), torch.tensor([[[1.0, 0.0, 1.0, 2.0, 1.0]]]))


def test_strided_conv_length():
    conv = SConv1d(1, 1, kernel_size=10, stride=5)
    for n in (1, 4, 5, 6, 99, 100):
        assert conv(torch.randn(1, 1, n)).shape[-1] == math.ceil(n / 5)
