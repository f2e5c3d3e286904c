"""Lookup-free quantization: hand-computed codes and ids, losses, round trip."""
import pytest
import torch

from zoo.quant.lfq import LookupFreeQuantizer


def test_hand_computed_ids_and_codes():
    q = LookupFreeQuantizer(3, channel_dim=-1).eval()
    z = torch.tensor([[[0.3, -0.2, 0.5], [-1.0, -1.0, -1.0], [2.0, 0.1, -0.1]]])
    with torch.no_grad():
        out = q(z)
    # MSB first: (+,-,+) -> 101b = 5; (-,-,-) -> 0; (+,+,-) -> 110b = 6
    assert out.ids.tolist() == [[5, 0, 6]]
    assert out.z_q.tolist() == [[[1.0, -1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, 1.0, -1.0]]]
    assert torch.equal(q.ids_to_latents(out.ids), out.z_q)
    assert q.codebook_size == 8
    torch.testing.assert_close(out.stats["usage"], torch.tensor(3 / 8))


def test_channel_first_losses_and_grad():
    torch.manual_seed(0)
    q = LookupFreeQuantizer(4, entropy_loss_weight=0.1, commitment_loss_weight=0.25).train()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(z)
    assert out.ids.shape == (2, 3, 3) and out.z_q.shape == z.shape
    code = torch.where(z.detach() > 0, 1.0, -1.0)
    torch.testing.assert_close(out.losses["commitment"], 0.25 * ((z.detach() - code) ** 2).mean())
    assert torch.isfinite(out.losses["entropy"])
    out.loss.backward()
    assert torch.isfinite(z.grad).all()
    torch.testing.assert_close(q.ids_to_latents(out.ids), out.z_q.detach())
    with pytest.raises(ValueError):
        q(torch.randn(2, 5, 3, 3))
