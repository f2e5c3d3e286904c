"""GAN objectives, feature matching, LeCam, PatchGAN."""
import pytest
import torch
import torch.nn.functional as F

from zoo.losses.gan import discriminator_loss, feature_matching_loss, generator_loss
from zoo.losses.lecam import LeCamEMA, lecam_regularizer
from zoo.losses.patchgan import PatchGAN


def test_objectives_match_their_definitions():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    assert discriminator_loss("hinge", real, fake) == pytest.approx(
        float(F.relu(1 - real).mean() + F.relu(1 + fake).mean()))
    assert generator_loss("hinge", fake) == pytest.approx(float(-fake.mean()))
    assert discriminator_loss("lsgan", real, fake) == pytest.approx(float(((real - 1) ** 2).mean() + (fake ** 2).mean()))
    assert generator_loss("lsgan", fake) == pytest.approx(float(((fake - 1) ** 2).mean()))
    bce = F.binary_cross_entropy_with_logits
    assert discriminator_loss("non_saturating", real, fake) == pytest.approx(
        float(bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))), rel=1e-6)
    assert generator_loss("vanilla", fake) == pytest.approx(float(bce(fake, torch.ones(3))), rel=1e-6)
    assert discriminator_loss("clamped_hinge", real, fake) == discriminator_loss("hinge", real, fake)
    assert generator_loss("clamped_hinge", fake) == pytest.approx(float(F.relu(1 - fake).mean()))
    # lists (multi-scale discriminators) sum their terms
    assert discriminator_loss("hinge", [real, real], [fake, fake]) == pytest.approx(
        2 * float(discriminator_loss("hinge", real, fake)))
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss("wgan", fake)
    with pytest.raises(TypeError):
        generator_loss("hinge", [])


def test_feature_matching():
    real = [torch.ones(2, 3), [torch.zeros(4)]]
    fake = [torch.full((2, 3), 3.0, requires_grad=True), [torch.ones(4, requires_grad=True)]]
    loss = feature_matching_loss(real, fake)
    assert float(loss.detach()) == pytest.approx(2.0 + 1.0)
    loss.backward()
    assert fake[0].grad is not None
    with pytest.raises(ValueError, match="length"):
        feature_matching_loss(real, fake[:1])


def test_lecam():
    ema = LeCamEMA(decay=0.5)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -3.0])
    assert float(lecam_regularizer(real, fake, ema)) == pytest.approx(5.0 + 5.0)  # ema starts at 0
    ema.update(real.mean(), fake.mean())  # 0.5 * 0 + 0.5 * mean
    assert float(ema.real) == 1.0 and float(ema.fake) == -1.0
    # penalty: relu(real - ema_fake)^2 + relu(ema_real - fake)^2
    assert float(lecam_regularizer(real, fake, ema)) == pytest.approx((4 + 16) / 2 + (4 + 16) / 2)
    assert set(ema.state_dict()) == {"real", "fake"}
    with pytest.raises(ValueError):
        LeCamEMA(decay=1.0)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_patchgan_shapes_and_learning(norm, photo_batch):
    torch.manual_seed(0)
    d = PatchGAN(ndf=8, n_layers=3, norm=norm)
    x = photo_batch * 2 - 1
    out = d(x)
    assert out.shape == (4, 1, 6, 6)
    feats = PatchGAN(ndf=8, n_layers=2, norm=norm, return_features=True)(x)[1]
    assert len(feats) == 3 and feats[0].shape == (4, 8, 32, 32)
    # a few hinge steps separate real photos from noise
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    noise = torch.rand_like(x) * 2 - 1
    for _ in range(15):
        loss = discriminator_loss("hinge", d(x), d(noise))
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    with torch.no_grad():
        assert float(d(x).mean()) > float(d(noise).mean())
    with pytest.raises(ValueError):
        PatchGAN(norm="layer")
    with pytest.raises(ValueError):
        d(x[0])
