"""Latent perturbation: statistics against the definition, beta rows, schedule, hooks on every VQ kind."""
import math

import pytest
import torch
import torch.nn.functional as F

from zoo.quant.dual import MultiScaleResidualQuantizer, SharedMappingQuantizer
from zoo.quant.factorized import FactorizedQuantizer
from zoo.quant.perturb import (LatentPerturbation, PerturbationSchedule, encode_perturbed, perturb_tokens,
                               sample_candidates, topk_candidates)
from zoo.quant.vq import VectorQuantizer


def _within(count, n, p, sigmas=5.0):
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("alpha,delta", [(0.6, 5), (1.0, 4), (0.3, 8)])
def test_sampling_distribution(alpha, delta):
    """P(candidate 0) = 1 - alpha + alpha/delta, P(candidate j>0) = alpha/delta, independently."""
    m = 20000
    cands = torch.arange(m * delta).view(m, delta)  # distinct ids: the chosen column is recoverable
    g = torch.Generator().manual_seed(123)
    picked = sample_candidates(cands, alpha, g)
    col = picked - cands[:, 0]
    counts = torch.bincount(col, minlength=delta)
    assert _within(int(counts[0]), m, 1 - alpha + alpha / delta)
    for j in range(1, delta):
        assert _within(int(counts[j]), m, alpha / delta)


def test_fraction_changed_and_candidates_on_real_photos(photo_batch):
    """Tokens of real photos: changed fraction = alpha * (1 - 1/delta); every pick is a candidate."""
    torch.manual_seed(0)
    q = VectorQuantizer(64, 12, l2_norm=True).eval()
    patches = F.unfold(photo_batch, 2, stride=2)  # [4, 12, 1024]: 2x2 RGB patches as latents
    z = patches - patches.mean(dim=(0, 2), keepdim=True)
    with torch.no_grad():
        clean = q(z)
        alpha, delta = 0.5, 6
        pert = LatentPerturbation(alpha, delta, beta=1.0, seed=7)
        out = pert.perturb_output(q, z, clean)
    n = clean.ids.numel()
    changed = int((out.ids != clean.ids).sum())
    assert _within(changed, n, alpha * (1 - 1 / delta))
    query = F.normalize(z.movedim(1, -1).reshape(-1, 12), dim=-1)
    cands, _ = topk_candidates(query, q._codebook(), delta)
    assert torch.equal(cands[:, 0], clean.ids.reshape(-1))
    assert bool((out.ids.reshape(-1, 1) == cands).any(1).all())
    # the output holds exactly the codes of the perturbed ids
    torch.testing.assert_close(out.z_q, q.ids_to_latents(out.ids), atol=1e-6, rtol=0)


def test_beta_rows_alpha0_delta1_and_gradients():
    torch.manual_seed(0)
    q = VectorQuantizer(32, 4, l2_norm=True).train()
    z = torch.randn(6, 4, 5, 5, requires_grad=True)
    clean = q(z)
    out = LatentPerturbation(1.0, 8, beta=0.5, seed=1).perturb_output(q, z, clean)
    assert torch.equal(out.ids[3:], clean.ids[3:]) and not torch.equal(out.ids[:3], clean.ids[:3])
    assert out.losses is clean.losses  # losses of the clean codes, computed before the perturbation
    out.z_q.sum().backward(retain_graph=True)
    g_pert = z.grad.clone()
    z.grad = None
    clean.z_q.sum().backward(inputs=[z])
    torch.testing.assert_close(g_pert, z.grad)  # straight-through: same gradient as the clean codes
    for alpha, delta in ((0.0, 8), (1.0, 1)):
        with torch.no_grad():
            o = LatentPerturbation(alpha, delta, seed=3).perturb_output(q, z, q(z))
        assert torch.equal(o.ids, q(z).ids)


def test_schedule_definition():
    s = PerturbationSchedule(alpha=1.0, delta=100, beta=0.1, anneal_start=40, anneal_end=120, end_ratio=0.5)
    assert s.at(0) == (1.0, 100, 0.1) and s.at(40) == (1.0, 100, 0.1)
    a, d, b = s.at(80)
    assert math.isclose(a, 0.75) and d == 75 and b == 0.1
    assert s.at(121) == (0.5, 50, 0.1)
    p = LatentPerturbation(1.0, 100, 0.1, schedule=s)
    assert p.step(80)[1] == 75 and p.delta == 75
    with pytest.raises(ValueError):
        LatentPerturbation(1.5, 4)
    with pytest.raises(ValueError):
        LatentPerturbation(0.5, 0)
    with pytest.raises(ValueError):
        topk_candidates(torch.randn(3, 2), torch.randn(4, 2), 5)


@pytest.mark.parametrize("shape,channel_dim", [((2, 6, 50), 1), ((2, 50, 6), -1), ((2, 6, 3, 4, 4), 1)])
def test_hook_on_audio_video_layouts(shape, channel_dim):
    """The same plug-in works for audio [B, C, T] / [B, T, C] and video [B, C, T, H, W] latents."""
    torch.manual_seed(0)
    q = VectorQuantizer(16, 6, channel_dim=channel_dim)
    pert = LatentPerturbation(1.0, 4, seed=0)
    handles = pert.attach(q)
    z = torch.randn(shape)
    q.eval()
    with torch.no_grad():
        assert torch.equal(q(z).ids, VectorQuantizer.forward(q, z).ids)  # inactive in eval mode
    q.train()
    out = q(z)
    assert pert.calls == 1 and out.stats["perturbed_fraction"] > 0.5
    for h in handles:
        h.remove()
    assert q(z).stats.get("perturbed_fraction") is None


def test_factorized_shared_and_multiscale():
    torch.manual_seed(0)
    fq = FactorizedQuantizer(16, 4, num_groups=2).train()
    pert = LatentPerturbation(1.0, 4, seed=0)
    pert.attach(fq)
    zs = [torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)]
    out = fq(zs)
    torch.testing.assert_close(out.z_q, fq.ids_to_latents(out.ids), atol=1e-6, rtol=0)

    sm = SharedMappingQuantizer(32, 6, 3)
    ms = MultiScaleResidualQuantizer(sm, (1, 2, 4)).train()
    pert2 = LatentPerturbation(1.0, 5, seed=0)
    pert2.attach(ms)  # attaches to the inner shared-mapping quantizer
    z = torch.randn(2, 9, 4, 4)
    out = ms(z)
    assert pert2.calls == 3 and out.ids.shape == (2, 21)
    # shared mapping: candidates ranked by the weighted sum of semantic and pixel distances
    with torch.no_grad():
        clean = SharedMappingQuantizer.forward(sm, z)
        d_sem, d_pix = sm.distances(z)
        cands = torch.topk(d_sem + d_pix, 5, dim=1, largest=False).indices
        o = LatentPerturbation(1.0, 5, seed=2).perturb_output(sm, z, clean)
    assert bool((o.ids.reshape(-1, 1) == cands).any(1).all())


def test_tokenizer_level_helpers(photo_batch):
    from zoo.models.fqgan import FQGAN

    torch.manual_seed(0)
    tok = FQGAN(variant="dual", codebook_size=32, codebook_dim=4, z_channels=16, ch=16, ch_mult=[1, 2],
                num_res_blocks=1, num_groups=4, image_size=64, adapter_depth=0).eval()
    x = photo_batch
    tokens = tok.encode(x)
    same = perturb_tokens(tok, tokens, alpha=0.0, delta=4, seed=0)
    assert torch.equal(same.ids, tokens.ids) and same.input_shape == tokens.input_shape
    p = perturb_tokens(tok, tokens, alpha=1.0, delta=4, seed=0)
    assert p.ids.shape == tokens.ids.shape
    frac = (p.ids != tokens.ids).float().mean().item()
    assert 0.6 < frac < 0.9  # expected 1 - 1/4 = 0.75 over 2 * 4 * 256 tokens
    assert torch.equal(p.ids, perturb_tokens(tok, tokens, alpha=1.0, delta=4, seed=0).ids)  # seeded
    assert tok.decode(p).shape == x.shape
    e = encode_perturbed(tok, x, alpha=1.0, delta=4, seed=0)
    assert e.ids.shape == tokens.ids.shape and not torch.equal(e.ids, tokens.ids)
    assert torch.equal(encode_perturbed(tok, x, alpha=0.0, delta=4).ids, tokens.ids)


def test_lfq_and_rvq_and_multiscale_tokens():
    from torch import nn

    from zoo.quant.lfq import LookupFreeQuantizer
    from zoo.quant.rvq import ResidualVectorQuantizer

    torch.manual_seed(0)
    lfq = LookupFreeQuantizer(4).train()
    pert = LatentPerturbation(1.0, 3, seed=0)
    pert.attach(lfq)
    z = torch.randn(2, 4, 6, 6)
    out = lfq(z)
    # candidates of a sign-quantised token: its own corner (distance 0 nearest), then corners one bit away
    flips = (out.ids ^ (z.permute(0, 2, 3, 1) > 0).long().mul(torch.tensor([8, 4, 2, 1])).sum(-1))
    assert set(torch.unique(flips).tolist()) <= {0, 1, 2, 4, 8}
    torch.testing.assert_close(out.z_q, lfq.ids_to_latents(out.ids))

    class Holder(nn.Module):
        def __init__(self, q):
            super().__init__()
            self.quantizer = q

    rvq = ResidualVectorQuantizer(3, 16, 4).eval()
    with torch.no_grad():
        ids = rvq(torch.randn(2, 4, 10)).ids
    p = perturb_tokens(Holder(rvq), ids, alpha=1.0, delta=16, seed=0)
    assert p.ids.shape == ids.shape and (p.ids != ids).float().mean() > 0.8  # 15/16 expected
    with pytest.raises(ValueError):
        perturb_tokens(Holder(rvq), ids[..., :2], alpha=1.0, delta=4)

    ms = MultiScaleResidualQuantizer(SharedMappingQuantizer(32, 6, 3), (1, 2, 4)).eval()
    with torch.no_grad():
        ids = ms(torch.randn(2, 9, 4, 4)).ids
    p = perturb_tokens(Holder(ms), ids, alpha=0.5, delta=4, seed=1)
    assert p.ids.shape == (2, 21)
    assert torch.equal(perturb_tokens(Holder(ms), ids, alpha=0.5, delta=1).ids, ids)


def test_fsq_and_ema_vq_audio_layouts(speech_clip):
    """FSQ (FlexTok) and EMA VQ (WavTokenizer) quantizers: candidate 0 is the clean code, others are neighbours."""
    from zoo.quant.ema_vq import EMAVectorQuantizer
    from zoo.quant.fsq import FSQ

    torch.manual_seed(0)
    fsq = FSQ((8, 5, 5), channel_dim=-1).eval()
    z = torch.randn(2, 40, 3)
    with torch.no_grad():
        clean = fsq(z)
        same = LatentPerturbation(1.0, 1, seed=0).perturb_output(fsq, z, clean)
        out = LatentPerturbation(1.0, 3, seed=0).perturb_output(fsq, z, clean)
    assert torch.equal(same.ids, clean.ids)
    digits = lambda i: torch.stack([i % 8, (i // 8) % 5, i // 40], -1)  # noqa: E731
    step = (digits(out.ids) - digits(clean.ids)).abs().sum(-1)
    assert int(step.max()) <= 1 and (step == 1).float().mean() > 0.5  # one level away on one channel
    torch.testing.assert_close(out.z_q, fsq.ids_to_latents(out.ids))

    # audio-like latents [B, C, T] from real speech frames, EMA codebook, eval-time perturbation
    wave = speech_clip(16000, 0.5)
    frames = wave[:, : 8 * (wave.shape[1] // 8)].view(1, -1, 8).transpose(1, 2) * 10  # [1, 8, T]
    ema = EMAVectorQuantizer(32, 8, kmeans_init=False, channel_dim=1).eval()
    pert = LatentPerturbation(1.0, 4, seed=0, always=True)
    handles = pert.attach(ema)
    out = ema(frames)
    assert pert.calls == 1 and out.ids.shape == (1, frames.shape[-1])
    torch.testing.assert_close(out.z_q, ema.ids_to_latents(out.ids))
    for h in handles:
        h.remove()
