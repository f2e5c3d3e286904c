"""scripts/evaluate.py with perturbed metrics (p_<metric>, RobusTok's latent perturbation) end to
end on CPU: real speech through a WavTokenizer whose codebook is k-means-initialised on real
speech, and photo clips through a tiny FSQ video tokenizer. alpha=0 reproduces the clean numbers
exactly, every perturbed number carries (alpha, delta, seed), a seed reproduces its numbers."""
from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "evaluate.py"


def _evaluate(args: list[str], monkeypatch) -> dict:
    """Run ``scripts/evaluate.py ARGS`` in this process; returns report.json."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args, "--no-progress", "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 0
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def wavtok_dir(tmp_path_factory):
    """wavtokenizer_tiny_75.scratch, codebook k-means-initialised on real speech, saved in zoo format."""
    import zoo
    from zoo.data.offline import load_speech, speech_paths

    torch.manual_seed(0)
    tok = zoo.create_tokenizer("wavtokenizer_tiny_75.scratch")
    seg = int(1.28 * tok.sample_rate)
    chunks = []
    for p in speech_paths("alsa") + speech_paths("en")[:3]:
        w = load_speech(p, tok.sample_rate)
        chunks += [w[s: s + seg] for s in range(0, w.numel() - seg + 1, seg)]
    tok.train()
    with torch.no_grad():
        tok(torch.stack(chunks))  # k-means initialisation of the EMA codebook
    tok.eval()
    d = tmp_path_factory.mktemp("wavtok") / "kmeans_init"
    tok.save_pretrained(d)
    return d


AUDIO = ("stoi", "pesq", "mel_distance")


def _audio_args(tok_dir, out, alpha, *extra):
    return ["--tokenizer", f"local-dir:{tok_dir}", "--data", "offline:speech_alsa", "--num-samples", "2", "--batch-size", "1",
            "--max-seconds", "1.3", "--metrics", ",".join(AUDIO + tuple("p_" + m for m in AUDIO)),
            "--perturb-alpha", str(alpha), "--perturb-delta", "100", "--perturb-seed", "0", "--out", str(out), *extra]


def test_audio_alpha_zero_gives_the_clean_numbers(wavtok_dir, tmp_path, monkeypatch):
    report = _evaluate(_audio_args(wavtok_dir, tmp_path / "a0", 0.0, "--no-figures"), monkeypatch)
    m = report["metrics"]
    for name in AUDIO:
        assert math.isfinite(m[name]["value"])
        assert m["p_" + name]["value"] == m[name]["value"], name
        assert m["p_" + name]["protocol"]["measured_changed_fraction"] == 0.0


def test_audio_perturbed_entries_carry_their_protocol(wavtok_dir, tmp_path, monkeypatch):
    r1 = _evaluate(_audio_args(wavtok_dir, tmp_path / "a5", 0.5), monkeypatch)
    m = r1["metrics"]
    md = (tmp_path / "a5" / "report.md").read_text()
    for name in AUDIO:
        entry = m["p_" + name]
        proto = entry["protocol"]
        assert (proto["alpha"], proto["delta"], proto["seed"]) == (0.5, 100, 0)
        assert proto["expected_changed_fraction"] == pytest.approx(0.495)
        assert proto["num_samples"] == 2 and "original input" in proto["compared_with"]
        assert entry["label"] == f"p_{name}(alpha=0.5, delta=100, seed=0)"
        assert entry["label"] in md
        assert math.isfinite(entry["value"])
        assert "perturbation" not in m[name]["protocol"] and "label" not in m[name]  # clean entries untouched
    n_tokens = 2 * 98  # about 1.3 s x 75 tokens/s per clip
    frac = m["p_stoi"]["protocol"]["measured_changed_fraction"]
    assert abs(frac - 0.495) < 4 * math.sqrt(0.25 / n_tokens)
    assert m["p_pesq"]["value"] != m["pesq"]["value"]
    assert (tmp_path / "a5" / "audio_comparison.png").is_file()
    r2 = _evaluate(_audio_args(wavtok_dir, tmp_path / "again", 0.5, "--no-figures"), monkeypatch)
    assert {k: v["value"] for k, v in r2["metrics"].items()} == {k: v["value"] for k, v in m.items()}


def test_perturbed_metric_refused_for_unsupported_or_foreign_names(tmp_path, monkeypatch):
    from eval.run import main

    with pytest.raises(ValueError, match="not available"):  # p_pesq is an audio metric
        main(["--tokenizer", "causal3d_tiny.untrained", "--data", "offline:photo_clips", "--metrics", "p_pesq",
              "--num-samples", "1", "--out", str(tmp_path / "x"), "--no-progress", "--device", "cpu"])
    with pytest.raises(ValueError, match="perturb-alpha"):
        main(["--tokenizer", "causal3d_tiny.untrained", "--data", "offline:photo_clips", "--metrics", "p_psnr",
              "--perturb-alpha", "2", "--num-samples", "1", "--out", str(tmp_path / "y"), "--no-progress",
              "--device", "cpu"])


def _video_args(name, out, alpha, metrics="psnr,ssim,p_psnr,p_ssim", *extra):
    return ["--tokenizer", name, "--data", "offline:photo_clips", "--num-samples", "2", "--batch-size", "2",
            "--metrics", metrics, "--perturb-alpha", str(alpha), "--perturb-delta", "4", "--perturb-seed", "1",
            "--no-figures", "--out", str(out), *extra]


def test_video_fsq_perturbed_psnr_ssim(tmp_path, monkeypatch):
    import zoo
    from eval.pfid import supports_pfid
    from zoo.quant.perturb import is_supported, leaf_quantizers

    name = "causal3d_tiny.untrained"
    tok = zoo.create_tokenizer(name)
    assert [type(q).__name__ for q in leaf_quantizers(tok)] == ["FSQ"] and supports_pfid(tok)[0]
    assert all(is_supported(q) for q in leaf_quantizers(tok))
    m0 = _evaluate(_video_args(name, tmp_path / "v0", 0.0), monkeypatch)["metrics"]
    for n in ("psnr", "ssim"):
        assert m0["p_" + n]["value"] == m0[n]["value"]
    m1 = _evaluate(_video_args(name, tmp_path / "v1", 1.0), monkeypatch)["metrics"]
    proto = m1["p_psnr"]["protocol"]
    assert (proto["alpha"], proto["delta"], proto["seed"]) == (1.0, 4, 1) and "frames" in proto
    assert abs(proto["measured_changed_fraction"] - 0.75) < 0.1
    assert m1["p_psnr"]["value"] != m1["psnr"]["value"] and m1["psnr"]["value"] == m0["psnr"]["value"]
    assert m1["p_psnr"]["label"] == "p_psnr(alpha=1, delta=4, seed=1)"


@pytest.mark.slow
def test_video_perturbed_fvd(tmp_path, monkeypatch):
    from eval.fvd import I3DFeatures

    i3d = tmp_path / "i3d.pt"
    torch.manual_seed(0)
    torch.save(I3DFeatures(weights=False).net.state_dict(), i3d)  # random: the Kinetics file is not offline
    name = "causal3d_tiny.untrained"
    args = _video_args(name, tmp_path / "f0", 0.0, "fvd,p_fvd", "--i3d-weights", str(i3d))
    m0 = _evaluate(args, monkeypatch)["metrics"]
    assert m0["p_fvd"]["value"] == pytest.approx(m0["fvd"]["value"], rel=1e-6, abs=1e-6)
    m1 = _evaluate(_video_args(name, tmp_path / "f1", 1.0, "fvd,p_fvd", "--i3d-weights", str(i3d)),
                   monkeypatch)["metrics"]
    assert math.isfinite(m1["p_fvd"]["value"]) and m1["p_fvd"]["value"] != m1["fvd"]["value"]
    assert m1["p_fvd"]["label"] == "p_fvd(alpha=1, delta=4, seed=1)"


@pytest.mark.slow
def test_image_perturbed_fidelity(tmp_path, monkeypatch):
    name = "titok_tiny.untrained"
    args = ["--tokenizer", name, "--data", "offline:photos", "--num-samples", "2", "--batch-size", "2",
            "--metrics", "psnr,ssim,p_psnr,p_ssim", "--perturb-delta", "8", "--no-figures", "--sweep", "none"]
    m0 = _evaluate(args + ["--perturb-alpha", "0", "--out", str(tmp_path / "i0")], monkeypatch)["metrics"]
    assert m0["p_psnr"]["value"] == m0["psnr"]["value"] and m0["p_ssim"]["value"] == m0["ssim"]["value"]
    m1 = _evaluate(args + ["--perturb-alpha", "1", "--out", str(tmp_path / "i1")], monkeypatch)["metrics"]
    assert m1["p_psnr"]["value"] != m1["psnr"]["value"]
    assert m1["p_psnr"]["label"] == "p_psnr(alpha=1, delta=8, seed=0)"


@pytest.mark.slow
@pytest.mark.multiproc
def test_audio_perturbed_two_processes_match_one(wavtok_dir, tmp_path):
    import os
    import subprocess

    common = ["--tokenizer", f"local-dir:{wavtok_dir}", "--data", "offline:speech_alsa", "--num-samples", "4", "--batch-size",
              "1", "--max-seconds", "1.0", "--metrics", "stoi,mel_distance,p_stoi,p_mel_distance",
              "--perturb-alpha", "0.5", "--perturb-delta", "16", "--perturb-seed", "3", "--device", "cpu",
              "--no-progress", "--no-figures"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, str(SCRIPT), *common, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "--main_process_port", "29523", str(SCRIPT), *common, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "two"))
    assert r2["world_size"] == 2
    for key in ("stoi", "mel_distance", "p_stoi", "p_mel_distance"):
        assert r2["metrics"][key]["value"] == pytest.approx(r1["metrics"][key]["value"], rel=1e-5), key
    f1 = r1["metrics"]["p_stoi"]["protocol"]["measured_changed_fraction"]
    assert r2["metrics"]["p_stoi"]["protocol"]["measured_changed_fraction"] == pytest.approx(f1, rel=1e-6)
