"""LPIPS-style perceptual loss: refuses to run without real weights; behaves as a distance."""
import pytest
import torch

from zoo.losses.perceptual import PerceptualLoss, find_vgg16_weights


def test_missing_weights_raise_a_helpful_error(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_VGG16_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vgg_weights=.*weight=0"):
        PerceptualLoss()
    with pytest.raises(FileNotFoundError, match="not found"):
        find_vgg16_weights(tmp_path / "nope.pth")


def test_with_explicit_weights_file(tmp_path, photo_batch):
    # a torchvision vgg16 state dict written to disk stands in for the ImageNet file
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}, path)
    loss = PerceptualLoss(vgg_weights=path)
    assert not any(p.requires_grad for p in loss.parameters())
    x = photo_batch[:2, :, :32, :32] * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    d = loss(y, x, reduction="none")
    assert d.shape == (2,) and bool((d > 0).all())
    d.sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    loss.train()
    assert not loss.training
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.0.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ValueError, match="features"):
        PerceptualLoss(vgg_weights=bad)
