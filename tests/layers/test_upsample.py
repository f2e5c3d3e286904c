"""upsample2x_conv3x3 computes conv3x3(nearest x2 upsampling) on the low-resolution grid."""
import pytest
import torch
import torch.nn.functional as F

from zoo.layers.upsample import upsample2x_conv3x3


@pytest.mark.parametrize("shape", [(2, 32, 5, 7), (1, 64, 8, 8)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_equals_upsample_then_conv(shape, channels_last):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(48, shape[1], 3, 3) / (3 * shape[1] ** 0.5), torch.randn(48)
    ref = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, b, padding=1)
    with torch.inference_mode():
        out = upsample2x_conv3x3(x, w, b)
        no_bias = upsample2x_conv3x3(x, w, None)
    # same products, different summation order: float32 rounding of ~9 * C terms of size ~1
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(no_bias, ref - b[:, None, None], atol=1e-5, rtol=1e-5)
    assert out.shape == (shape[0], 48, 2 * shape[2], 2 * shape[3])
    assert out.is_contiguous(memory_format=torch.channels_last)  # the next convolutions skip a reorder
