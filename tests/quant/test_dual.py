"""Shared-mapping (TokenFlow) and dual-codebook (DualToken) quantizers against their definitions."""
import pytest
import torch
import torch.nn.functional as F

from zoo.quant.dual import DualCodebookQuantizer, MultiScaleResidualQuantizer, SharedMappingQuantizer


def test_shared_index_minimises_weighted_distance():
    torch.manual_seed(0)
    q = SharedMappingQuantizer(24, semantic_dim=6, pixel_dim=3, semantic_weight=0.5, pixel_weight=2.0).eval()
    z = torch.randn(2, 9, 3, 3)
    with torch.no_grad():
        out = q(z)
    zs = F.normalize(z[:, :6].permute(0, 2, 3, 1), dim=-1)
    zp = F.normalize(z[:, 6:].permute(0, 2, 3, 1), dim=-1)
    es, ep = (F.normalize(w, dim=-1) for w in (q.embedding_sem.weight, q.embedding_pix.weight))
    d = 0.5 * ((zs[..., None, :] - es) ** 2).sum(-1) + 2.0 * ((zp[..., None, :] - ep) ** 2).sum(-1)
    assert torch.equal(out.ids, d.argmin(-1))
    sem, pix = q.split(out.z_q)
    torch.testing.assert_close(sem, es[out.ids].permute(0, 3, 1, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(pix, ep[out.ids].permute(0, 3, 1, 2), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        q(torch.randn(2, 8, 3, 3))


def test_multiscale_residual_schedule_and_grad():
    torch.manual_seed(0)
    ms = MultiScaleResidualQuantizer(SharedMappingQuantizer(16, 4, 2), (1, 2, 4)).train()
    z = torch.randn(2, 6, 4, 4, requires_grad=True)
    out = ms(z)
    assert out.ids.shape == (2, 1 + 4 + 16) and out.z_q.shape == z.shape
    torch.testing.assert_close(ms.ids_to_latents(out.ids), out.z_q, atol=1e-5, rtol=1e-5)
    out.loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        MultiScaleResidualQuantizer(SharedMappingQuantizer(16, 4, 2), (2, 1))
    drop = MultiScaleResidualQuantizer(SharedMappingQuantizer(16, 4, 2), (1, 2, 3, 4), scale_drop_prob=1.0).train()
    assert drop(torch.randn(1, 6, 4, 4)).ids.shape[1] in (17, 21, 26)  # one scale other than the first dropped


def test_dual_codebook_separate_indices():
    torch.manual_seed(0)
    q = DualCodebookQuantizer((10, 20), semantic_dim=5, pixel_dim=3).eval()
    z = torch.randn(2, 8, 2, 2)
    with torch.no_grad():
        out = q(z)
    assert out.ids.shape == (2, 2, 2, 2) and q.names == ("sem", "pix")
    for g, part in enumerate((z[:, :5], z[:, 5:])):
        cos = F.normalize(part.permute(0, 2, 3, 1), dim=-1) @ F.normalize(q.codebooks[g].weight, dim=-1).t()
        assert torch.equal(out.ids[..., g], cos.argmax(-1))
    assert int(out.ids[..., 0].max()) < 10
