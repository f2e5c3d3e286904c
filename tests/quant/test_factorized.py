"""FactorizedQuantizer: shapes, id order, hand-computed losses, gradients, errors."""
import pytest
import torch
import torch.nn.functional as F

from zoo.losses.disentangle import disentangle_loss, squared_cosine
from zoo.losses.entropy import codebook_entropy_loss
from zoo.quant.factorized import FactorizedQuantizer


def test_ids_order_and_lookup():
    torch.manual_seed(0)
    q = FactorizedQuantizer(16, 4, num_groups=2, disentangle_ratio=0.1, entropy_loss_ratio=0.03).eval()
    z_vis, z_sem = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    with torch.no_grad():
        out = q([z_vis, z_sem])
    assert out.ids.shape == (2, 3, 5, 2) and out.z_q.shape == (2, 8, 3, 5)
    # group 0 is the first list entry: brute-force nearest code by cosine similarity
    for g, z in enumerate((z_vis, z_sem)):
        cos = F.normalize(z.permute(0, 2, 3, 1), dim=-1) @ F.normalize(q.codebooks[g].weight, dim=-1).t()
        assert torch.equal(out.ids[..., g], cos.argmax(-1))
    torch.testing.assert_close(q.ids_to_latents(out.ids), out.z_q, atol=1e-6, rtol=0)
    assert q.split(out.z_q)[1].shape == (2, 4, 3, 5)
    assert set(out.stats) >= {"usage", "perplexity", "usage_vis", "usage_sem", "perplexity_sem"}


def test_losses_match_definitions():
    torch.manual_seed(1)
    q = FactorizedQuantizer((8, 12), (3, 5), num_groups=2, beta=0.5, entropy_loss_ratio=0.2,
                            disentangle_ratio=0.3, names=("a", "b")).train()
    zs = [torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 5, 4, 4, requires_grad=True)]
    # branches of different widths cannot be compared by cosine: disentanglement needs equal dims
    with pytest.raises(ValueError):
        q(zs)
    q.disentangle_ratio = 0.0
    out = q(zs)
    assert q.codebook_size == (8, 12)
    for g, (name, z) in enumerate(zip(q.names, zs)):
        zn = F.normalize(z.detach().permute(0, 2, 3, 1), dim=-1)
        e = F.normalize(q.codebooks[g].weight.detach(), dim=-1)[out.ids[..., g]]
        torch.testing.assert_close(out.losses[f"codebook_{name}"], ((e - zn) ** 2).mean())
        torch.testing.assert_close(out.losses[f"commitment_{name}"], 0.5 * ((e - zn) ** 2).mean())
        table = F.normalize(q.codebooks[g].weight.detach(), dim=-1)
        d = ((zn.reshape(-1, 1, zn.shape[-1]) - table) ** 2).sum(-1)
        torch.testing.assert_close(out.losses[f"entropy_{name}"], 0.2 * codebook_entropy_loss(d), atol=1e-5, rtol=1e-4)
    out.loss.backward()
    assert all(z.grad is not None and torch.isfinite(z.grad).all() for z in zs)
    assert q.codebooks[0].weight.grad is not None


def test_disentangle_and_entropy_hand_cases():
    # two positions; branch a holds (1,1) and (0,1), branch b holds (0,1) twice
    a = torch.tensor([[1.0, 1.0], [0.0, 1.0]])[None].permute(0, 2, 1)[..., None]  # [1, 2, 2, 1]
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])[None].permute(0, 2, 1)[..., None]
    # cos((1,1),(0,1))^2 = 1/2, cos((0,1),(0,1))^2 = 1 -> mean 0.75
    torch.testing.assert_close(squared_cosine(a, b), torch.tensor(0.75))
    torch.testing.assert_close(disentangle_loss([a, b, b]), torch.tensor((0.75 + 0.75 + 1.0) / 3))
    # entropy: two tokens, each certain of a different code out of 2 -> 0 - ln 2
    d = torch.tensor([[0.0, 10.0], [10.0, 0.0]])
    torch.testing.assert_close(codebook_entropy_loss(d), torch.log(torch.tensor(0.5 + 1e-5)), atol=1e-4, rtol=0)


def test_channel_last_and_errors():
    q = FactorizedQuantizer(8, 4, num_groups=3, channel_dim=-1)
    assert q.names == ("vis", "sem_mid", "sem_high")
    out = q([torch.randn(2, 7, 4) for _ in range(3)])
    assert out.ids.shape == (2, 7, 3) and out.z_q.shape == (2, 7, 12)
    with pytest.raises(TypeError):
        q(torch.randn(2, 7, 12))
    with pytest.raises(ValueError):
        q([torch.randn(2, 7, 4), torch.randn(2, 6, 4), torch.randn(2, 7, 4)])
    with pytest.raises(ValueError):
        FactorizedQuantizer((8, 8), 4, num_groups=3)
