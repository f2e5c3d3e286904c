import pytest
import torch

from zoo.layers import PatchEmbed2d, PatchEmbed3d, unpatchify_2d, unpatchify_3d


def test_unpatchify_inverts_patch_order():
    x = torch.randn(2, 3, 8, 12)
    tokens = x.unfold(2, 4, 4).unfold(3, 4, 4)  # b c gh gw p1 p2
    tokens = tokens.permute(0, 2, 3, 4, 5, 1).reshape(2, 6, 48)
    torch.testing.assert_close(unpatchify_2d(tokens, (2, 3), 4, 3), x)
    v = torch.randn(1, 3, 4, 8, 8)
    t = v.reshape(1, 3, 2, 2, 2, 4, 2, 4).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(1, 8, 2 * 4 * 4 * 3)
    torch.testing.assert_close(unpatchify_3d(t, (2, 2, 2), 4, 2, 3), v)


def test_patch_embed_shapes_and_errors():
    assert PatchEmbed2d(3, 16, 4)(torch.randn(1, 3, 8, 12)).shape == (1, 6, 16)
    assert PatchEmbed3d(3, 16, 4, 2)(torch.randn(1, 3, 4, 8, 8)).shape == (1, 8, 16)
    with pytest.raises(ValueError, match="multiple"):
        PatchEmbed2d(3, 16, 4)(torch.randn(1, 3, 9, 8))
