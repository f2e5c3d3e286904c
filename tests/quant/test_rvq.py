"""Residual VQ against a hand-computed case and its definition."""
import pytest
import torch

from zoo.quant.rvq import ResidualVectorQuantizer


def _hand_rvq():
    q = ResidualVectorQuantizer(2, 3, 2, channel_dim=-1).eval()
    with torch.no_grad():
        q.layers[0].embedding.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]))
        q.layers[1].embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0]]))
    return q


def test_hand_computed_case():
    q = _hand_rvq()
    z = torch.tensor([[[5.1, 0.2], [0.3, 2.9], [0.1, -0.8]]])
    with torch.no_grad():
        out = q(z)
    # (5.1,.2) -> (4,0) + residual (1.1,.2) -> (1,0); (.3,2.9) -> (0,4) + (.3,-1.1) -> (0,-1); (.1,-.8) -> 0 + (0,-1)
    assert out.ids.tolist() == [[[1, 1], [2, 2], [0, 2]]]
    torch.testing.assert_close(out.z_q, torch.tensor([[[5.0, 0.0], [0.0, 3.0], [0.0, -1.0]]]))
    torch.testing.assert_close(q.ids_to_latents(out.ids), out.z_q)
    torch.testing.assert_close(q.ids_to_latents(out.ids[..., :1]), torch.tensor([[[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]]]))
    with torch.no_grad():
        first = q(z, n_q=1)
    assert first.ids[..., 1].eq(-1).all()


def test_losses_dropout_and_grad():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(3, 16, 4, quantizer_dropout=True).train()
    z = torch.randn(2, 4, 10, requires_grad=True)
    out = q(z)
    assert out.ids.shape == (2, 10, 3)
    n_used = int((out.ids[0, 0] >= 0).sum())
    assert 1 <= n_used <= 3 and set(out.losses) == {"commitment", "codebook"}
    out.loss.backward()
    assert torch.isfinite(z.grad).all()
    with pytest.raises(ValueError):
        q(z, n_q=4)
