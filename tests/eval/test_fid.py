"""rFID: Fréchet arithmetic vs scipy and torchmetrics on real-photo features; Inception loading."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from eval.fid import FID, InceptionFeatures, frechet_distance, inception_weights_path, load_reference, to_uint8
from zoo.checkpoint import CheckpointMismatchError


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def photo_sets():
    """Two sets of real-photo crops: originals and a degraded (blurred + noisy) version."""
    from zoo.data.offline import photos

    imgs = photos(96, limit=16)                            # [16, 3, 96, 96]
    crops = torch.cat([imgs[..., :64, :64], imgs[..., 32:, 32:], imgs[..., 16:80, 16:80]])  # 48 crops
    g = torch.Generator().manual_seed(0)
    blurred = torch.nn.functional.avg_pool2d(crops, 3, 1, 1)
    degraded = (blurred + 0.03 * torch.randn(crops.shape, generator=g)).clamp(0, 1)
    return crops, degraded


@pytest.fixture(scope="module")
def net64():
    torch.manual_seed(0)
    net = InceptionFeatures(weights=False, feature="64")
    for name, buf in net.named_buffers():  # BN statistics that give O(1) features
        if name.endswith("running_var"):
            buf.fill_(0.02)
    return net


@pytest.fixture(scope="module")
def photo_features(photo_sets, net64):
    """Inception features of both sets (computed once: 96 passes at 299x299)."""
    real, fake = photo_sets
    return net64(to_uint8(real)).double(), net64(to_uint8(fake)).double()


def _sqrt_trace_tolerance(s1: torch.Tensor, s2: torch.Tensor, num_samples: int) -> float:
    """How far two correct float64 evaluations of the Fréchet distance may differ.

    Sample covariances of n samples in d > n - 1 dimensions are singular: d - (n - 1) eigenvalues of
    S1 S2 are zero in exact arithmetic but come out as +-eps * |S1| |S2| in float64, and the trace of the
    matrix square root takes their square roots. Each null direction can therefore move
    tr((S1 S2)^1/2) by sqrt(eps |S1| |S2|), and the distance takes that trace twice.
    """
    eps = torch.finfo(torch.float64).eps
    null = s1.shape[0] - min(num_samples - 1, s1.shape[0])
    norms = float(torch.linalg.matrix_norm(s1, 2) * torch.linalg.matrix_norm(s2, 2))
    return 2 * max(null, 1) * (eps * norms) ** 0.5


@pytest.mark.slow
def test_frechet_distance_matches_scipy_on_photo_features(photo_features):
    fr, ff = photo_features
    metric = FID(feature_extractor=torch.nn.Identity(), num_features=fr.shape[1])
    for i in range(0, len(fr), 16):  # streaming in batches
        metric.update_features(fr[i:i + 16], real=True)
        metric.update_features(ff[i:i + 16], real=False)
    ours = metric.compute().item()
    ref = _scipy_fid(fr.numpy(), ff.numpy())
    s1, s2 = torch.cov(fr.T), torch.cov(ff.T)
    tol = _sqrt_trace_tolerance(s1, s2, len(fr))  # 48 samples in 64 dims: 17 null directions
    assert ref > 0 and tol < 1e-3 * ref          # the bound is still tight enough to catch real errors
    assert ours == pytest.approx(ref, abs=tol)
    # the pure function on moments too
    assert frechet_distance(fr.mean(0), s1, ff.mean(0), s2).item() == pytest.approx(ref, abs=tol)
    # identical sets give 0 up to the same rounding
    assert abs(frechet_distance(fr.mean(0), s1, fr.mean(0), s1).item()) < _sqrt_trace_tolerance(s1, s1, len(fr))


class _Lookup(torch.nn.Module):
    """'Images' are row indices into precomputed features (lets torchmetrics reuse them)."""

    def __init__(self, feats):
        super().__init__()
        self.feats = feats
        self.num_features = feats.shape[1]

    def forward(self, idx):
        return self.feats[idx.long()].float()


@pytest.mark.slow
def test_fid_matches_torchmetrics(photo_features):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fr, ff = photo_features
    feats = torch.cat([fr, ff])
    tm = FrechetInceptionDistance(feature=_Lookup(feats), normalize=False)
    tm.update(torch.arange(len(fr)), real=True)
    tm.update(torch.arange(len(fr), len(feats)), real=False)
    ours = FID(feature_extractor=torch.nn.Identity(), num_features=fr.shape[1])
    ours.update_features(fr.float(), real=True)
    ours.update_features(ff.float(), real=False)
    tol = _sqrt_trace_tolerance(torch.cov(fr.T), torch.cov(ff.T), len(fr))  # see the scipy test
    assert ours.compute().item() == pytest.approx(tm.compute().item(), abs=tol)


def test_reference_npz_roundtrip(tmp_path, photo_sets, net64):
    real, fake = (x[:8] for x in photo_sets)  # the image path of update(), on 8 + 8 crops
    m = FID(feature_extractor=net64)
    m.update(real, real=True)
    m.update(fake, real=False)
    path = m.save_reference(tmp_path / "ref.npz", protocol={"dataset": "mate crops"})
    ref = load_reference(path)
    assert ref["num_samples"] == len(real) and ref["protocol"]["dataset"] == "mate crops"
    m2 = FID(feature_extractor=net64, reference=path)
    m2.update(fake, real=False)
    assert m2.compute().item() == pytest.approx(m.compute().item(), rel=1e-6)
    with pytest.raises(ValueError, match="features"):
        FID(feature_extractor=net64, reference={"mu": torch.zeros(3), "sigma": torch.eye(3)})


def _torch_fidelity_inception(monkeypatch):
    """torch-fidelity's own FeatureExtractorInceptionV3, randomly initialised (its loader disabled)."""
    from torch_fidelity import feature_extractor_inceptionv3 as tfi

    monkeypatch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
    torch.manual_seed(123)
    net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    monkeypatch.undo()
    # non-trivial BN statistics so that a wrong mapping would show
    for name, buf in net.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    return net


def test_inception_loads_torch_fidelity_state_dict_strictly(tmp_path, monkeypatch, photo_batch):
    ref_net = _torch_fidelity_inception(monkeypatch)
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(ref_net.state_dict(), path)
    ours = InceptionFeatures(weights=path)
    assert ours.weights_file == str(path)
    imgs = to_uint8(photo_batch[:2])
    with torch.no_grad():
        expected = ref_net(imgs)[0]
    torch.testing.assert_close(ours(imgs), expected, rtol=0, atol=0)
    # the env var is honoured too
    monkeypatch.setenv("ZOO_INCEPTION_WEIGHTS", str(path))
    assert inception_weights_path() == path
    # a state dict missing a key fails strictly, naming it
    sd = ref_net.state_dict()
    sd.pop("Mixed_7c.branch_pool.conv.weight")
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(CheckpointMismatchError, match="Mixed_7c.branch_pool.conv.weight"):
        InceptionFeatures(weights=bad)


def test_missing_inception_weights_error_says_how(tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        InceptionFeatures()
    msg = str(e.value)
    assert "--inception-weights" in msg and "ZOO_INCEPTION_WEIGHTS" in msg and "6726825d" in msg


def test_to_uint8_rounds():
    x = torch.tensor([0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.2, -0.1]).view(1, 1, 2, 3)
    assert to_uint8(x).flatten().tolist() == [0, 0, 1, 255, 255, 0]
    with pytest.raises(TypeError):
        to_uint8(torch.zeros(1, 3, 2, 2, dtype=torch.int32))
