"""Rectified-flow helpers: timestep embedding, noise/loss, CFG/APG and the Euler sampler."""
import math

import pytest
import torch

from zoo.layers.flow import (APGState, TimestepEmbedder, apg_combine, cfg_combine, euler_sample, rf_loss, rf_noise,
                             sample_timesteps, timestep_embedding)


def test_timestep_embedding_formula():
    t = torch.tensor([0.0, 0.25, 1.0])
    emb = timestep_embedding(t, 8, max_period=256.0, time_scale=1000.0)
    k = torch.arange(4, dtype=torch.float64)
    freqs = 1000.0 * torch.exp(-math.log(256.0) * k / 4)
    args = t.double()[:, None] * freqs
    ref = torch.cat([args.cos(), args.sin()], dim=1)
    assert torch.allclose(emb.double(), ref, atol=1e-4)
    assert timestep_embedding(t, 7).shape == (3, 7)
    assert torch.equal(timestep_embedding(t, 8, cos_first=False)[:, :4], timestep_embedding(t, 8)[:, 4:])
    mod = TimestepEmbedder(16, freq_dim=8)
    assert mod(t).shape == (3, 16)
    assert [n for n, _ in mod.named_parameters()] == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]


def test_rf_noise_and_loss():
    x0, noise = torch.randn(4, 2, 3), torch.randn(4, 2, 3)
    t = torch.tensor([0.0, 0.5, 1.0, 0.25])
    xt, n = rf_noise(x0, t, noise)
    assert n is noise
    assert torch.allclose(xt[0], x0[0]) and torch.allclose(xt[2], noise[2])
    assert torch.allclose(xt[1], 0.5 * (x0[1] + noise[1]))
    assert rf_loss(noise - x0, x0, noise).item() == 0.0
    g = torch.Generator().manual_seed(0)
    xt2, n2 = rf_noise(x0, t, generator=g)
    assert n2.shape == x0.shape and not torch.equal(n2, noise)


@pytest.mark.parametrize("mode", ["logit_normal", "logit_normal_stratified", "uniform", "mode"])
def test_sample_timesteps_range(mode):
    t = sample_timesteps(512, mode, generator=torch.Generator().manual_seed(1), mode_scale=1.29)
    assert t.shape == (512,) and bool(((t >= 0) & (t <= 1)).all())
    if mode.startswith("logit_normal"):
        assert abs(t.mean().item() - 0.5) < 0.05  # symmetric around 1/2
    with pytest.raises(ValueError):
        sample_timesteps(3, "cosine")


def test_euler_exact_on_straight_paths():
    # a perfect velocity for x0 = 0 is v = x_t / t: Euler steps land exactly on x0
    noise = torch.randn(3, 4, 2, 2)
    calls = []

    def velocity(x, t, uncond):
        calls.append((x.shape[0], t.clone(), uncond.clone()))
        return x / t.view(-1, 1, 1, 1)

    x = euler_sample(velocity, noise, steps=5)
    assert torch.allclose(x, torch.zeros_like(x), atol=1e-6)
    assert len(calls) == 5 and all(c[0] == 3 and not c[2].any() for c in calls)
    assert torch.allclose(torch.stack([c[1][0] for c in calls]), torch.tensor([1.0, 0.8, 0.6, 0.4, 0.2]))
    with pytest.raises(ValueError):
        euler_sample(velocity, noise, steps=0)


def test_euler_cfg_batches_cond_and_uncond():
    noise = torch.randn(2, 3, 2, 2)
    v_c, v_u = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)

    def velocity(x, t, uncond):
        return torch.where(uncond.view(-1, 1, 1, 1), v_u.repeat(x.shape[0] // 2, 1, 1, 1),
                           v_c.repeat(x.shape[0] // 2, 1, 1, 1))

    x = euler_sample(velocity, noise, steps=2, guidance=3.0)
    assert torch.allclose(x, noise - cfg_combine(v_c, v_u, 3.0), atol=1e-6)
    x2 = euler_sample(velocity, noise, steps=2, guidance=3.0, batch_cfg=False)
    assert torch.allclose(x, x2)
    x1 = euler_sample(velocity, noise, steps=2, guidance=1.0)
    assert torch.allclose(x1, noise - v_c, atol=1e-6)


def test_apg_by_hand():
    torch.manual_seed(0)
    vc, vu = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    state = APGState(-0.5)
    out1 = apg_combine(vc, vu, 7.5, state)
    out2 = apg_combine(vc, vu, 7.5, state)
    for avg, out in (((vc - vu), out1), ((vc - vu) * 0.5, out2)):  # d, then d + (-0.5) d
        for i in range(2):
            d = avg[i].double()
            d = d * min(1.0, 2.5 / d.norm().item())
            u = vc[i].double() / vc[i].double().norm()
            orth = d - (d * u).sum() * u
            ref = vc[i].double() + 6.5 * orth
            assert torch.allclose(out[i].double(), ref, atol=1e-5)
    # no clipping and eta = 1 recovers plain CFG
    assert torch.allclose(apg_combine(vc, vu, 7.5, None, eta=1.0, norm_threshold=0.0), cfg_combine(vc, vu, 7.5),
                          atol=1e-5)
