"""PSNR / SSIM / MS-SSIM / LPIPS on real photos vs skimage, pytorch-msssim and the lpips package."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.image import LPIPS, ImageFidelity, build_lpips_net, ms_ssim, psnr, ssim


def _degrade(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    return (y + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1).mul(255).round().div(255)


def test_psnr_ssim_match_skimage(photo_batch):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    target = photo_batch.mul(255).round().div(255)
    preds = _degrade(target)
    m = ImageFidelity(("psnr", "ssim"))
    m.update(preds[:2], target[:2])
    m.update(preds[2:], target[2:])
    per = m.per_image()
    ref_psnr, ref_ssim = [], []
    for p, t in zip(preds.double().numpy(), target.double().numpy()):
        ref_psnr.append(peak_signal_noise_ratio(t, p, data_range=1.0))
        ref_ssim.append(structural_similarity(t, p, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False))
    np.testing.assert_allclose(per["psnr"].numpy(), ref_psnr, rtol=1e-5)
    np.testing.assert_allclose(per["ssim"].numpy(), ref_ssim, rtol=1e-5)
    out = m.compute()
    assert out["psnr"].item() == pytest.approx(np.mean(ref_psnr), rel=1e-5)
    assert out["ssim"].item() == pytest.approx(np.mean(ref_ssim), rel=1e-5)
    assert 15 < out["psnr"].item() < 60 and 0 < out["ssim"].item() < 1


def test_ms_ssim_matches_pytorch_msssim(photo_256):
    from pytorch_msssim import ms_ssim as ref_ms_ssim

    target = torch.cat([photo_256, photo_256.flip(-1)]).mul(255).round().div(255)
    preds = _degrade(target, seed=1)
    ours = ms_ssim(preds, target)
    ref = ref_ms_ssim(preds, target, data_range=1.0, size_average=False, win_size=11, win_sigma=1.5)
    torch.testing.assert_close(ours, ref.float(), atol=1e-5, rtol=0)
    assert (ours < 1).all() and (ours > 0.5).all()
    with pytest.raises(ValueError, match="161"):
        ms_ssim(preds[..., :64, :64], target[..., :64, :64])


def test_functions_validate_inputs(photo_batch):
    with pytest.raises(ValueError, match="differ"):
        psnr(photo_batch, photo_batch[:, :, :32])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        ssim(photo_batch[:, 0], photo_batch[:, 0])
    with pytest.raises(ValueError, match="unknown"):
        ImageFidelity(("psnr", "fid"))
    assert torch.isinf(psnr(photo_batch, photo_batch)).all()


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A torchvision-format AlexNet state dict (random weights: the ImageNet file is not offline)."""
    import torchvision

    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("lpips") / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_lpips_matches_reference_package(photo_batch, alexnet_file):
    import lpips as lpips_pkg
    import torchvision

    target = photo_batch.mul(255).round().div(255)
    preds = _degrade(target, seed=2)
    metric = LPIPS("alex", backbone_weights=alexnet_file)
    metric.update(preds[:3], target[:3])
    metric.update(preds[3:], target[3:])
    ours = metric.per_image()

    ref = lpips_pkg.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    tv = torchvision.models.alexnet(weights=None)
    tv.load_state_dict(torch.load(alexnet_file, weights_only=True))
    for name, mod in ref.net.named_children():  # slices hold torchvision's features[i] layers
        for idx, layer in mod.named_children():
            layer.load_state_dict(tv.features[int(idx)].state_dict())
    with torch.no_grad():
        expected = ref(preds, target, normalize=True).reshape(-1)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)
    assert metric.compute().item() == pytest.approx(expected.mean().item(), rel=1e-4)
    assert (ours > 0).all()


def test_lpips_backbone_loading_is_strict(tmp_path, alexnet_file, monkeypatch):
    sd = torch.load(alexnet_file, weights_only=True)
    sd.pop("features.3.weight")
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match="features.3.weight"):
        build_lpips_net("alex", bad)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("ZOO_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="ZOO_LPIPS_WEIGHTS"):
        build_lpips_net("alex")
    monkeypatch.setenv("ZOO_LPIPS_WEIGHTS", str(alexnet_file))
    assert build_lpips_net("alex").backbone_file == str(alexnet_file)
