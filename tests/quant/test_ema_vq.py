"""EMA vector quantizer: no surprise k-means in eval, k-means init, EMA updates, dead-code restarts."""
import pytest
import torch

from zoo.quant.ema_vq import EMAVectorQuantizer, kmeans


def _clusters(n_per: int = 64, dim: int = 8, k: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = 10.0 * torch.randn(k, dim, generator=g)
    x = centers.repeat_interleave(n_per, 0) + 0.1 * torch.randn(k * n_per, dim, generator=g)
    return x, centers


def test_fresh_quantizer_in_eval_mode_runs_no_kmeans_and_changes_nothing():
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(16, 8, kmeans_iters=10_000).eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    out = vq(torch.randn(2, 8, 5))
    assert out.ids.shape == (2, 5) and out.z_q.shape == (2, 8, 5)
    assert out.losses == {}
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert vq.inited.item() == 0.0
    # the random initial codebook is not degenerate: distinct inputs use several codes
    assert out.ids.unique().numel() > 1


def _sse(x, means):
    return torch.cdist(x, means).min(dim=1).values.pow(2).sum()


def _is_lloyd_fixed_point(x, means, atol=1e-4):
    ids = torch.cdist(x, means).argmin(dim=1)
    for k in ids.unique():
        if not torch.allclose(x[ids == k].mean(0), means[k], atol=atol):
            return False
    return True


def test_kmeans_lowers_the_objective_and_converges():
    x, _ = _clusters()
    init, _ = kmeans(x, 4, num_iters=0, generator=torch.Generator().manual_seed(1))
    means, counts = kmeans(x, 4, num_iters=20, generator=torch.Generator().manual_seed(1))
    assert counts.sum() == x.shape[0]
    assert _sse(x, means) < _sse(x, init)
    assert _is_lloyd_fixed_point(x, means)


def test_first_training_batch_initialises_by_kmeans():
    x, _ = _clusters()
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(4, 8, kmeans_iters=20, threshold_ema_dead_code=0, decay=1.0, channel_dim=-1).train()
    random_codebook = vq.embed.clone()
    out = vq(x[None])
    assert vq.inited.item() == 1.0
    assert _is_lloyd_fixed_point(x, vq.embed)  # decay=1: the EMA step leaves the k-means result
    assert _sse(x, vq.embed) < _sse(x, random_codebook)
    assert "commitment" in out.losses
    # a second training batch does not re-run k-means
    vq(x[None] + 100.0)
    assert _is_lloyd_fixed_point(x, vq.embed)


def test_ema_update_tracks_data_and_straight_through_gradients():
    x, _ = _clusters(k=2, n_per=32)
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(2, 8, kmeans_init=False, decay=0.5, threshold_ema_dead_code=0, channel_dim=-1).train()
    first = None
    for _ in range(20):
        z = x[None].clone().requires_grad_(True)
        out = vq(z)
        err = (out.z_q.detach() - x).pow(2).mean()
        first = err if first is None else first
    assert err < 0.1 * first
    out.losses["commitment"].backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # straight-through: z_q carries the gradient of the identity
    z2 = x[None].clone().requires_grad_(True)
    vq(z2).z_q.sum().backward()
    torch.testing.assert_close(z2.grad, torch.ones_like(z2))


def test_dead_codes_restart_from_batch_vectors():
    x, _ = _clusters(k=2, n_per=32)
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(8, 8, kmeans_init=False, decay=0.99, threshold_ema_dead_code=1.0, channel_dim=-1).train()
    with torch.no_grad():
        vq.embed.fill_(1e3)  # far from the data: every code is dead
        vq.embed_avg.fill_(1e3)
    vq(x[None])
    # restarted codes hold (EMA-smoothed) data vectors, not the far-away initial value
    assert vq.embed.abs().max() < 100
    near_data = torch.cdist(vq.embed, x).min(dim=1).values < 0.5
    assert near_data.sum() >= 6  # codes not hit by this batch are exactly restarted data vectors


def test_ids_to_latents_inverts_lookup_and_shape_checks():
    vq = EMAVectorQuantizer(16, 4).eval()
    z = torch.randn(3, 4, 7)
    out = vq(z)
    torch.testing.assert_close(vq.ids_to_latents(out.ids), out.z_q)
    with pytest.raises(ValueError, match="channels"):
        vq(torch.randn(3, 5, 7))


def test_loading_an_uninitialised_state_re_enables_kmeans():
    x, _ = _clusters()
    vq = EMAVectorQuantizer(4, 8, kmeans_iters=5, channel_dim=-1).train()
    fresh = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(x[None])
    assert vq.inited.item() == 1.0
    vq.load_state_dict(fresh)
    assert vq.inited.item() == 0.0
    vq(x[None])
    assert vq.inited.item() == 1.0
