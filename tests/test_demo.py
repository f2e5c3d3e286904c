"""The packaged demo tokenizers (zoo/weights/, registry tag ``demo``) and the main job ``python -m zoo demo``.

Quality floors sit just under the held-out metrics measured when the checkpoints were packaged
(recorded in each registry entry's ``metrics``): a checkpoint or a code change that makes the
held-out reconstructions worse fails here.
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zoo
from zoo.config_names import constructor_kwargs

ROOT = Path(__file__).resolve().parents[1]
DEMO = ("titok_demo64.demo", "wavtokenizer_demo75.demo", "dmel_vocos_demo.demo", "mel_rvq_demo.demo")
#: every packaged demo weight together (issue 16: under 40 MB)
MAX_TOTAL_BYTES = 40_000_000
#: allowed drop below the recorded metric (run-to-run noise of CPU kernels is far smaller)
MARGIN = {"psnr": 0.25, "ssim": 0.01, "psnr_crops": 0.25, "stoi": 0.015, "pesq": 0.05, "pesq_nb": 0.05}
#: registry ``metrics`` key of each report column
METRIC_KEYS = {"psnr": "psnr_heldout", "ssim": "ssim_heldout", "psnr_crops": "psnr_heldout_crops",
               "stoi": "stoi_heldout", "pesq": "pesq_heldout", "pesq_nb": "pesq_nb_heldout"}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _weights_dir(name: str) -> Path:
    info = zoo.get_info(name)
    return ROOT / "zoo" / info.source.packaged


def test_demo_entries_are_registered_with_packaged_weights():
    assert set(DEMO) <= set(zoo.list_tokenizers(filter="*.demo"))
    total = 0
    for name in DEMO:
        info = zoo.get_info(name)
        assert info.pretrained and info.source.converter is None and info.source.hf_repo is None
        assert info.source.packaged == f"weights/{info.arch}"
        assert info.source.files == {"weights": "model.safetensors", "config": "config.json"}
        folder = _weights_dir(name)
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "training_log.csv"]
        total += sum(p.stat().st_size for p in folder.iterdir())
        config = json.loads((folder / "config.json").read_text())
        stored = constructor_kwargs(config, str(folder))  # migrated to the current names (docs/config_names.md)
        assert stored == json.loads(json.dumps(info.kwargs)), f"{name}: registry kwargs differ from config.json"
        # the metadata names the recipe, which exists and records the command that produced the weights
        recipe = ROOT / "recipes" / "demo" / f"{info.arch}.yaml"
        assert f"recipes/demo/{info.arch}.yaml" in info.notes and recipe.is_file()
        header = recipe.read_text()
        assert f"scripts/train.py recipes/demo/{info.arch}.yaml" in header
        assert f"scripts/train.py recipes/demo/{info.arch}.yaml" in info.notes
        assert f"python -m zoo package {info.arch}=" in header and f"python -m zoo package {info.arch}=" in info.notes
        assert any(k in info.metrics for k in ("psnr_heldout", "stoi_heldout"))
    # the other folders initialise a demo recipe (model.init_from): shipped, so the recipes retrain anywhere
    from zoo.train.recipe import load_recipe

    inits = {Path(load_recipe(r)["model"]["init_from"] or "-").name for r in (ROOT / "recipes" / "demo").glob("*.yaml")}
    registered = {zoo.get_info(n).arch for n in DEMO}
    for folder in (ROOT / "zoo" / "weights").iterdir():
        assert folder.name in registered | inits, f"zoo/weights/{folder.name} is neither a demo tokenizer nor an init"
        if folder.name not in registered:
            assert (folder / "training_log.csv").is_file() and (ROOT / "recipes" / "demo" / f"{folder.name}.yaml").is_file()
            total += sum(p.stat().st_size for p in folder.iterdir())
    assert total <= MAX_TOTAL_BYTES, f"packaged demo weights take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", DEMO)
def test_create_tokenizer_loads_packaged_weights_offline(name, no_network):
    from eval.demo import held_out_photos, held_out_speech

    tok = zoo.create_tokenizer(name, pretrained=True)
    untrained = zoo.create_tokenizer(name)
    assert not tok.training
    assert all(p.dtype == torch.float32 for p in tok.parameters())
    trained_sd, init_sd = tok.state_dict(), untrained.state_dict()
    assert any(not torch.equal(trained_sd[k], init_sd[k]) for k in trained_sd if trained_sd[k].is_floating_point())
    if tok.modality == "image":
        _, x = held_out_photos(64)
        tokens = tok.encode(x[:2])
        assert tokens.ids.shape == (2, 64) and int(tokens.ids.max()) < tok.codebook_size
        assert tok.decode(tokens).shape == (2, 3, 64, 64)
    else:
        _, clips = held_out_speech(tok.sample_rate)
        x = clips[0][None, : tok.sample_rate]
        y = tok.decode(tok.encode(x))
        assert abs(y.shape[-1] - x.shape[-1]) <= getattr(tok, "hop_length", 1)
        assert torch.isfinite(y).all()


def test_torch_hub_local_loads_packaged_weights(no_network):
    for name in DEMO:
        arch = zoo.get_info(name).arch
        hub = torch.hub.load(str(ROOT), arch, source="local")  # pretrained=True is the default
        ref = zoo.create_tokenizer(name, pretrained=True)
        hub_sd, ref_sd = hub.state_dict(), ref.state_dict()
        assert hub_sd.keys() == ref_sd.keys()
        assert all(torch.equal(hub_sd[k], ref_sd[k]) for k in ref_sd)


# ----------------------------------------------------------------------------- retraining
#: steps of the recorded recipe retrained by the reproduction test (every recipe logs every 20 steps)
REPRO_STEPS = 40
#: Training is chaotic: kernels that round differently (another CPU's ISA, another thread count) change
#: a VQ assignment or an EMA update somewhere, and the difference grows with the steps. Largest relative
#: deviation of any logged loss at steps 20 / 40 from the shipped logs, measured with the shipped recipes:
#: Intel AMX 1 thread 0.14 %, 2 threads 1.6 %; oneDNN/MKL limited to AVX2 1 thread 0.33 %, 2 threads
#: 1.8 %; an AMD AVX2 machine 0.47 % at step 20 (issue 15); TiTok reproduced exactly in every case.
#: The bound is 2.8x the largest of these. Another seed moves at least one logged loss of every recipe
#: by more (seed=1, largest deviation: TiTok 36 %, WavTokenizer 11 %, dMel vocoder 8.9 %), so a changed
#: seed, data order, initialisation or recipe still fails here.
REPRO_REL = 0.05


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """Run the recorded command of every demo recipe (``OMP_NUM_THREADS=1 python scripts/train.py
    RECIPE``, stopped at step REPRO_STEPS) from the repository root, two one-thread runs at a time
    (they share nothing, and each keeps the kernels and summation order of the recorded command).
    Returns ``{name: (output_dir, returncode, stderr tail)}``."""
    root = tmp_path_factory.mktemp("reproduce")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    pending, running, done, start = list(DEMO), [], {}, time.monotonic()
    while pending or running:
        while pending and len(running) < 2:
            name = pending.pop(0)
            out = root / zoo.get_info(name).arch
            cmd = [sys.executable, "scripts/train.py", f"recipes/demo/{zoo.get_info(name).arch}.yaml",
                   f"output_dir={out}", f"stop_at_step={REPRO_STEPS}", "checkpoint_every=0"]
            log = open(root / f"{out.name}.log", "w")
            running.append((name, out, log, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                                             stderr=subprocess.STDOUT)))
        finished = [r for r in running if r[3].poll() is not None]
        if not finished:
            if time.monotonic() - start > 1800:
                for *_, proc in running:
                    proc.kill()
                raise TimeoutError(f"reproduction runs still going after 30 min: {[r[0] for r in running]}")
            time.sleep(0.5)
            continue
        for name, out, log, proc in finished:
            running.remove((name, out, log, proc))
            log.close()
            done[name] = (out, proc.returncode, (root / f"{out.name}.log").read_text()[-3000:])
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", DEMO)
def test_recorded_recipe_reproduces_the_shipped_training_run(name, reproduced):
    """Retrain the first steps with the recipe and command recorded for the packaged checkpoint and
    compare every logged loss with the training log shipped next to the weights (same seed, data
    order, augmentations and initialisation give the same numbers)."""
    from zoo.train.logging import read_metrics
    from zoo.train.recipe import load_recipe

    arch = zoo.get_info(name).arch
    assert int(load_recipe(ROOT / "recipes" / "demo" / f"{arch}.yaml")["log_every"]) == 20
    out, returncode, tail = reproduced[name]
    assert returncode == 0, tail
    shipped = read_metrics(_weights_dir(name) / "training_log.csv")
    again = read_metrics(out / "metrics.csv")
    losses = sorted(k for k in again if k.startswith("loss/"))
    assert losses and set(losses) <= set(shipped)
    for key in losses:
        ours = dict(again[key])
        assert sorted(ours) == [20, 40], key
        for step, value in ours.items():
            recorded = dict(shipped[key])[step]
            assert value == pytest.approx(recorded, rel=REPRO_REL, abs=1e-7), f"{name} {key} at step {step}"


# ----------------------------------------------------------------------------- the main job
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``python -m zoo demo --out DIR`` in a subprocess with the hub forced offline."""
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run([sys.executable, "-m", "zoo", "demo", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout, json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_demo_writes_report_grid_wavs_and_spectrograms(demo_run):
    import soundfile as sf

    out, stdout, rows = demo_run
    names = [r["tokenizer"] for r in rows]
    assert set(DEMO) <= set(names) and "dmel.official" in names
    assert "| tokenizer / codec |" in stdout and all(n in stdout for n in DEMO)  # the tables are printed
    report = (out / "report.md").read_text()
    assert all(n in report for n in DEMO) and "image_grid.png" in report
    for png in ("image_grid.png", "spectrograms.png", "rate_distortion.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    wavs = sorted((out / "audio").glob("*.wav"))
    originals = [w for w in wavs if w.stem.endswith("__original")]
    assert len(originals) == 6
    for arch in ("wavtokenizer_demo75", "dmel_vocos_demo", "mel_rvq_demo", "dmel"):
        recon = [w for w in wavs if w.stem.endswith(f"__{arch}")]
        assert len(recon) == 6
        info = sf.info(str(recon[0]))
        assert info.samplerate == zoo.get_info(f"{arch}.demo" if arch != "dmel" else "dmel.official").sample_rate
        assert 1.9 < info.duration <= 4.01
    image = next(r for r in rows if r["tokenizer"] == "titok_demo64.demo")
    image_bits = 64 * math.log2(zoo.get_info("titok_demo64.demo").codebook_size)
    assert image["tokens"] == 64 and image["bits"] == pytest.approx(image_bits) and image["items"] == 5
    speech = next(r for r in rows if r["tokenizer"] == "wavtokenizer_demo75.demo")
    speech_bits = 75 * math.log2(zoo.get_info("wavtokenizer_demo75.demo").codebook_size)
    assert speech["tokens_per_s"] == 75 and speech["bits_per_s"] == pytest.approx(speech_bits)
    assert all(r.get("dnsmos_ovrl", 1.0) > 1.0 for r in rows if r["modality"] == "audio")
    assert all(0 < r["pesq_nb"] <= 4.6 for r in rows if "stoi" in r)


@pytest.mark.slow
def test_demo_compares_with_classic_codecs_at_equal_bits(demo_run):
    out, stdout, rows = demo_run
    classic = {r["tokenizer"]: r for r in rows if r.get("classic")}
    # thumbnails bracketing the 64-token tokenizer's 1022 bits, the smallest JPEG / WebP files
    assert classic["bicubic thumbnail 6x6"]["bits"] == 864 and classic["bicubic thumbnail 7x7"]["bits"] == 1176
    assert classic["bicubic thumbnail 7x7"]["psnr"] > classic["bicubic thumbnail 6x6"]["psnr"]
    assert classic["JPEG quality 1 (smallest file)"]["bits"] > 8 * 300  # a JPEG file's tables alone
    assert "WebP quality 0 (smallest file)" in classic
    for mode, rate in (("700C", 700), ("1200", 1200), ("1600", 1600), ("2400", 2400), ("3200", 3200)):
        row = classic[f"Codec2 {mode}"]
        assert row["rate_bits_per_s"] == rate and abs(row["bits_per_s"] - rate) < 120 and row["input"] == "8000 Hz"
    for kbps in (6, 8, 12):
        assert classic[f"Opus {kbps} kbit/s"]["bits_per_s"] > 1000 * kbps * 0.8
    # more bits, better speech, within each codec family (held-out speech: a sanity bound)
    assert classic["Codec2 3200"]["stoi"] > classic["Codec2 700C"]["stoi"]
    assert classic["Opus 12 kbit/s"]["pesq"] > classic["Opus 6 kbit/s"]["pesq"]
    # the quality-vs-token-count curve of the 1D image tokenizer
    image = next(r for r in rows if r["tokenizer"] == "titok_demo64.demo")
    curve = image["curve"]
    assert curve["tokens"] == [8, 16, 32, 64] and curve["psnr"][-1] == pytest.approx(image["psnr"], abs=1e-6)
    # the residual codec decoded from its first k codebooks: one rate per k, each with its verdict
    codec = next(r for r in rows if r["tokenizer"] == "mel_rvq_demo.demo")
    levels = codec["curve"]
    assert levels["n_q"] == list(range(1, 16)) and levels["bits_per_s"] == [200.0 * k for k in range(1, 16)]
    assert levels["stoi"][-1] == pytest.approx(codec["stoi"], abs=1e-6) and levels["stoi"][0] < levels["stoi"][-1]
    assert "`mel_rvq_demo.demo` from 4 codebooks (800 bit/s) pesq_nb" in stdout
    report = (out / "report.md").read_text()
    assert "rate_distortion.png" in report and "no more bits" in report and "Codec2 1200" in report
    assert "titok_demo64.demo` psnr" in stdout  # the margin over the best classic codec is printed
    assert len(list((out / "audio").glob("*__codec2_1200.wav"))) == 6


@pytest.mark.slow
def test_demo_checkpoints_keep_their_held_out_quality(demo_run):
    _, _, rows = demo_run
    checked = 0
    for row in rows:
        if row["tokenizer"] not in DEMO:
            continue
        recorded = zoo.get_info(row["tokenizer"]).metrics
        for column, key in METRIC_KEYS.items():
            if column in row:
                assert key in recorded, f"{row['tokenizer']}: no recorded {key}"
                floor = recorded[key] - MARGIN[column]
                assert row[column] >= floor, f"{row['tokenizer']} {column} {row[column]:.3f} < floor {floor:.3f}"
                checked += 1
        for i, k in enumerate(row.get("curve", {}).get("n_q", [])):  # residual codecs: the recorded lower rates
            for column in ("stoi", "pesq", "pesq_nb"):
                key = f"{METRIC_KEYS[column]}_{k}cb"
                if key in recorded:
                    floor = recorded[key] - MARGIN[column]
                    assert row["curve"][column][i] >= floor, f"{row['tokenizer']} {key} {row['curve'][column][i]:.3f}"
                    checked += 1
    assert checked == 3 + 3 * sum(zoo.get_info(n).modality == "audio" for n in DEMO) + 3  # + mel_rvq at 4 codebooks
