"""Discriminator outputs of every shape are unpacked; generator terms never train the discriminator."""
import pytest
import torch

from zoo.train.adversarial import Adversary, split_output


def test_split_output_forms():
    t = torch.zeros(2, 1, 3, 3)
    f1, f2 = torch.ones(2, 4), torch.ones(2, 5)
    assert split_output(t) == ([t], [])
    lg, ft = split_output((t, [f1, f2]))  # PatchGAN(return_features=True)
    assert lg == [t] and ft == [f1, f2]
    lg, ft = split_output(([t, t], [[f1], [f2, f1]]))  # audio: per sub-discriminator lists
    assert len(lg) == 2 and len(ft) == 3
    lg, ft = split_output({"logits": [t], "features": [f1]})
    assert lg == [t] and ft == [f1]
    assert split_output([t, t]) == ([t, t], [])
    with pytest.raises(TypeError):
        split_output("logits")


def test_generator_terms_leave_discriminator_grads_empty(photo_batch):
    cfg = {"weight": 0.5, "loss": "hinge", "feature_matching_weight": 1.0, "lecam_weight": 0.1,
           "discriminators": [{"name": "patchgan", "kwargs": {"ndf": 8, "n_layers": 2, "norm": "none",
                                                             "return_features": True}}]}
    adv = Adversary(cfg, "image")
    real = adv.prepare(photo_batch[:2, :, :32, :32], (0.0, 1.0))
    assert float(real.min()) >= -1 and float(real.max()) <= 1
    fake = (real + 0.1 * torch.randn_like(real)).requires_grad_(True)
    g = adv.generator_terms(real, fake)
    sum(g.values()).backward()
    assert fake.grad is not None and all(p.grad is None for p in adv.discriminators.parameters())
    assert all(p.requires_grad for p in adv.discriminators.parameters())  # restored
    d, stats = adv.discriminator_terms(adv.discriminators, real, fake)
    sum(d.values()).backward()
    assert all(p.grad is not None for p in adv.discriminators.parameters())
    assert {"gan_d", "lecam"} == set(d) and "d0_logits_real" in stats
    assert float(adv.lecam[0].real) != 0.0
    with pytest.raises(ValueError, match="unknown discriminator"):
        Adversary({**cfg, "discriminators": [{"name": "stylegan"}]}, "image")
    video = Adversary(cfg, "video").prepare(torch.rand(2, 3, 4, 8, 8), (0.0, 1.0))
    assert video.shape == (8, 3, 8, 8)
