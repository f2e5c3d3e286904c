"""Audio discriminators (MPD, MRD, MS-STFT) with the GAN objectives of zoo.losses.gan."""
import pytest
import torch

from zoo.losses.audio_discriminators import (AudioDiscriminators, MultiPeriodDiscriminator,
                                             MultiResolutionDiscriminator, MultiScaleSTFTDiscriminator,
                                             clamped_hinge_generator_loss)
from zoo.losses.gan import discriminator_loss, feature_matching_loss, generator_loss

SMALL = dict(kinds=("mpd", "mrd", "msstft"), num_embeddings=4,
             mpd={"channels": (4, 8, 8, 16, 16)}, mrd={"channels": 8}, msstft={"filters": 4, "max_filters": 16})


def test_output_structure_on_speech(speech_clip):
    torch.manual_seed(0)
    x = speech_clip(24000, 0.5)
    mpd = MultiPeriodDiscriminator(channels=(4, 8, 8, 16, 16))
    logits, feats = mpd(x)
    assert len(logits) == len(feats) == 5 and all(lg.shape[0] == 1 for lg in logits)
    assert all(len(f) == 5 for f in feats)  # 4 inner maps (first conv skipped) + the logit map
    mrd = MultiResolutionDiscriminator(channels=8)
    logits, feats = mrd(x[:, None])  # [B, 1, T] accepted too
    assert len(logits) == 3 and all(len(f) == 6 for f in feats)
    ms = MultiScaleSTFTDiscriminator(filters=4, max_filters=16)
    logits, feats = ms(x)
    assert len(logits) == 3 and all(len(f) == 5 for f in feats)
    assert all(torch.isfinite(lg).all() for lg in logits)


def test_conditioning_starts_neutral_and_then_matters():
    torch.manual_seed(0)
    d = MultiPeriodDiscriminator(periods=(2, 3), channels=(4, 8, 8, 16, 16), num_embeddings=4)
    x = 0.1 * torch.randn(2, 2000)
    plain, _ = d(x)
    cond, _ = d(x, torch.tensor([1]))
    torch.testing.assert_close(plain, cond)  # zero-initialised embeddings
    with torch.no_grad():
        for sub in d.discriminators:
            sub.emb.weight.normal_()
    cond1, _ = d(x, torch.tensor([1]))
    cond2, _ = d(x, torch.tensor([2]))
    assert not torch.allclose(cond1[0], cond2[0])


def test_gan_step_trains_discriminator_and_generator(speech_clip):
    torch.manual_seed(0)
    disc = AudioDiscriminators(**SMALL)
    real = speech_clip(24000, 0.3).repeat(2, 1)
    fake = (real + 0.05 * torch.randn_like(real)).clamp(-1, 1).requires_grad_(True)
    bw = torch.tensor([0])
    real_logits, real_feats = disc(real, bw)
    fake_logits, _ = disc(fake.detach(), bw)
    d_loss = discriminator_loss("hinge", real_logits, fake_logits)
    d_loss.backward()
    assert all(p.grad is not None for n, p in disc.named_parameters() if "emb" not in n)
    disc.zero_grad()
    fake_logits, fake_feats = disc(fake, bw)
    g_loss = (generator_loss("lsgan", fake_logits) + clamped_hinge_generator_loss(fake_logits)
              + feature_matching_loss(real_feats, fake_feats))
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0 and torch.isfinite(g_loss)


def test_clamped_hinge_matches_definition():
    f = [torch.tensor([[0.5, 2.0]]), torch.tensor([[-1.0]])]
    torch.testing.assert_close(clamped_hinge_generator_loss(f), torch.tensor(0.25 + 2.0))


def test_errors():
    with pytest.raises(ValueError, match="kinds"):
        AudioDiscriminators(kinds=("patchgan",))
    with pytest.raises(ValueError, match="mono"):
        MultiPeriodDiscriminator(channels=(4, 4, 4, 4, 4))(torch.randn(1, 2, 100))
