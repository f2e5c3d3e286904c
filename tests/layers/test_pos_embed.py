import math

import torch

from zoo.layers import sincos_1d, sincos_2d, sincos_3d


def test_sincos_1d_values():
    e = sincos_1d(torch.tensor([0.0, 1.0, 2.0]), 4)
    # channels: sin(p), sin(p/100), cos(p), cos(p/100)
    expect = torch.tensor([[math.sin(p), math.sin(p / 100), math.cos(p), math.cos(p / 100)] for p in (0, 1, 2)])
    torch.testing.assert_close(e, expect)


def test_sincos_2d_layout():
    e = sincos_2d(2, 3, 8)
    assert e.shape == (6, 8)
    # first half encodes the row, second half the column (row-major grid)
    torch.testing.assert_close(e[4, :4], sincos_1d(torch.tensor([1.0]), 4)[0])
    torch.testing.assert_close(e[4, 4:], sincos_1d(torch.tensor([1.0]), 4)[0])
    torch.testing.assert_close(e[2, 4:], sincos_1d(torch.tensor([2.0]), 4)[0])
    assert sincos_3d(2, 2, 2, 16).shape == (8, 16)
