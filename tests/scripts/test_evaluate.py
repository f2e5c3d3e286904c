"""scripts/evaluate.py end to end on CPU: offline photos, speech and photo clips, one tiny
untrained tokenizer per modality (whichever are registered), report + figures; 2 processes
give the same numbers as 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def _tiny(modality: str, prefer: tuple[str, ...] = ()) -> str:
    """A small registered tokenizer of ``modality`` (preferred names first, then any '*tiny*')."""
    import zoo

    names = zoo.list_tokenizers(modality=modality)
    for name in list(prefer) + sorted(n for n in names if "tiny" in n):
        if name in names:
            return name
    pytest.skip(f"no tiny {modality} tokenizer is registered (have: {names[:10]})")


@pytest.fixture(scope="module")
def feature_weights(tmp_path_factory):
    """Inception (torch-fidelity format) and AlexNet (torchvision format) state dicts with
    random weights: the standard files cannot be downloaded here."""
    import torchvision

    from eval.fid import InceptionFeatures

    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    inc = InceptionFeatures(weights=False)
    for name, buf in inc.named_buffers():  # O(1) activations so that FIDs are not ~0
        if name.endswith("running_var"):
            buf.fill_(0.16)
    torch.save(inc.state_dict(), d / "pt_inception-2015-12-05-6726825d.pth")
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), d / "alexnet-owt-7be5be79.pth")
    return d / "pt_inception-2015-12-05-6726825d.pth", d / "alexnet-owt-7be5be79.pth"


def _run(args: list[str]) -> dict:
    from eval.run import main

    assert main(args + ["--no-progress", "--device", "cpu"]) == 0
    out = Path(args[args.index("--out") + 1])
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# Evaluation of")
    for fig in report["figures"]:
        assert Path(fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report


@pytest.mark.slow
def test_evaluate_images_end_to_end(tmp_path, feature_weights):
    from skimage.metrics import peak_signal_noise_ratio

    import zoo
    from zoo.data.image import ImageFolder, list_images

    inception, alexnet = feature_weights
    name = _tiny("image", prefer=("onedpiece_tiny.untrained", "titok_tiny.untrained"))
    out = tmp_path / "img"
    report = _run(["--tokenizer", name, "--data", "offline:photos", "--num-samples", "3", "--batch-size", "2",
                   "--metrics", "psnr,ssim,lpips,rfid,pfid,usage", "--inception-weights", str(inception),
                   "--lpips-weights", str(alexnet), "--pfid-alpha", "1.0", "--pfid-delta", "8",
                   "--sweep", "4", "--out", str(out)])
    m = report["metrics"]
    assert report["num_samples"] == 3 and report["modality"] == "image"
    for key in ("psnr", "ssim", "lpips", "rfid", "pfid"):
        assert np.isfinite(m[key]["value"]) and m[key]["protocol"], key
    assert m["pfid"]["label"] == "pFID(alpha=1, delta=8, seed=0)"
    assert m["pfid"]["protocol"]["alpha"] == 1.0 and m["pfid"]["protocol"]["delta"] == 8
    assert "pFID(alpha=1, delta=8, seed=0)" in (out / "report.md").read_text()
    assert m["rfid"]["value"] > 0 and m["pfid"]["value"] > 0
    assert 0 < m["usage"]["value"]["usage"] <= 1 and m["usage"]["value"]["perplexity"] >= 1
    assert (out / "reconstructions.png").is_file()

    # PSNR recomputed independently (same seed -> same untrained weights) with skimage
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name).eval()
    size = report["input"]["size"][-1]
    ds = ImageFolder(list_images("offline:photos"), size=size, random_crop=False)
    x = torch.stack([ds[i] for i in range(3)])
    r = tok.reconstruct(x).clamp(0, 1)
    q = lambda t: t.mul(255).round().div(255).double().numpy()  # noqa: E731
    ref = np.mean([peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(q(x), q(r))])
    assert m["psnr"]["value"] == pytest.approx(ref, rel=1e-4)

    if report.get("curve"):  # variable-length tokenizer: quality vs tokens
        assert report["curve"]["tokens"] == [4] and len(report["curve"]["psnr"]) == 1
        assert len(report["curve"]["rfid"]) == 1
        assert (out / "quality_vs_tokens.png").is_file()


@pytest.mark.slow
def test_evaluate_speech_end_to_end(tmp_path):
    name = _tiny("audio", prefer=("wavtokenizer_tiny_75.scratch",))
    out = tmp_path / "aud"
    report = _run(["--tokenizer", name, "--data", "offline:speech_alsa", "--num-samples", "3", "--batch-size", "2",
                   "--max-seconds", "1.5", "--metrics", "si_sdr,mel_distance,stoi,usage", "--out", str(out)])
    m = report["metrics"]
    assert report["modality"] == "audio" and report["num_samples"] == 3
    for key in ("si_sdr", "mel_distance", "stoi"):
        assert np.isfinite(m[key]["value"]), key
    assert m["mel_distance"]["value"] > 0
    assert (out / "audio_comparison.png").is_file()


@pytest.mark.slow
def test_evaluate_packaged_dmel_on_speech(tmp_path):
    """A pretrained tokenizer that ships with the package (no download): real numbers."""
    import zoo

    if "dmel.official" not in zoo.list_tokenizers(pretrained=True):
        pytest.skip("dmel.official is not registered")
    out = tmp_path / "dmel"
    report = _run(["--tokenizer", "dmel.official", "--pretrained", "--data", "offline:speech_alsa", "--num-samples",
                   "2", "--batch-size", "2", "--max-seconds", "1.5", "--metrics", "stoi,mel_distance,usage",
                   "--out", str(out)])
    m = report["metrics"]
    assert 0 < m["stoi"]["value"] <= 1 and m["mel_distance"]["value"] > 0
    usage = m["usage"]["value"]
    assert len(usage["usage_per_group"]) == 80 and 0 < usage["usage"] <= 1  # dMel: 80 channels x 16 bins


@pytest.mark.slow
def test_evaluate_video_end_to_end(tmp_path, feature_weights):
    from eval.fvd import I3DFeatures

    _, alexnet = feature_weights
    torch.manual_seed(0)
    i3d = tmp_path / "rgb_imagenet.pt"
    torch.save(I3DFeatures(weights=False).net.state_dict(), i3d)  # random: the Kinetics file is not offline
    name = _tiny("video", prefer=("video1d_tiny.untrained",))
    out = tmp_path / "vid"
    report = _run(["--tokenizer", name, "--data", "offline:photo_clips", "--num-samples", "3", "--batch-size", "2",
                   "--metrics", "psnr,ssim,lpips,fvd,usage", "--i3d-weights", str(i3d), "--lpips-weights",
                   str(alexnet), "--out", str(out)])
    m = report["metrics"]
    assert report["modality"] == "video"
    assert np.isfinite(m["psnr"]["value"]) and "frames" in m["psnr"]["protocol"]
    assert np.isfinite(m["lpips"]["value"]) and m["fvd"]["value"] >= 0
    assert "I3D" in m["fvd"]["protocol"]["feature_network"]
    assert (out / "frame_strips.png").is_file()


@pytest.mark.slow
def test_fid_reference_cache_roundtrip(tmp_path, feature_weights):
    inception, _ = feature_weights
    name = _tiny("image", prefer=("titok_tiny.untrained",))
    common = ["--tokenizer", name, "--data", "offline:photos", "--num-samples", "3", "--batch-size", "3",
              "--metrics", "rfid", "--inception-weights", str(inception), "--sweep", "none", "--no-figures"]
    ref = tmp_path / "ref.npz"
    first = _run(common + ["--out", str(tmp_path / "a"), "--save-fid-reference", str(ref)])
    data = np.load(ref)
    assert data["mu"].shape == (2048,) and int(data["num_samples"]) == 3
    second = _run(common + ["--out", str(tmp_path / "b"), "--fid-reference", str(ref)])
    assert second["metrics"]["rfid"]["protocol"]["reference"] == str(ref)
    assert second["metrics"]["rfid"]["value"] == pytest.approx(first["metrics"]["rfid"]["value"], rel=1e-6)


def test_evaluate_rejects_bad_metrics(tmp_path):
    from eval.run import main

    name = _tiny("image", prefer=("titok_tiny.untrained",))
    with pytest.raises(ValueError, match="not available for image"):
        main(["--tokenizer", name, "--data", "offline:photos", "--metrics", "pesq", "--num-samples", "1",
              "--out", str(tmp_path), "--device", "cpu", "--no-progress"])


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_processes_match_one(tmp_path, feature_weights):
    inception, _ = feature_weights
    name = _tiny("image", prefer=("titok_tiny.untrained", "onedpiece_tiny.untrained"))
    common = ["--tokenizer", name, "--data", "offline:photos", "--num-samples", "5", "--batch-size", "1",
              "--metrics", "psnr,ssim,rfid,usage", "--inception-weights", str(inception), "--sweep", "none",
              "--device", "cpu", "--no-progress", "--no-figures"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    single = subprocess.run([PY, str(ROOT / "scripts/evaluate.py"), *common, "--out", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    multi = subprocess.run([PY, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                            "--main_process_port", "29517", str(ROOT / "scripts/evaluate.py"), *common,
                            "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=900)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    for key in ("psnr", "ssim", "rfid"):
        assert two["metrics"][key]["value"] == pytest.approx(one["metrics"][key]["value"], rel=1e-5, abs=1e-6), key
    p1, p2 = (json.loads((tmp_path / d / "per_item.json").read_text()) for d in ("one", "two"))
    assert p1["item"] == p2["item"] and len(p1["item"]) == 5       # dataset order restored after the gather
    np.testing.assert_allclose(p2["psnr"], p1["psnr"], rtol=1e-6)
    u1, u2 = one["metrics"]["usage"]["value"], two["metrics"]["usage"]["value"]
    assert set(u1) == set(u2)
    for key in u1:
        np.testing.assert_allclose(u2[key], u1[key], rtol=1e-6, err_msg=key)
