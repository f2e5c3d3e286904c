"""``python -m zoo`` subcommands on real files."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_list_and_info(capsys):
    assert main(["list", "--modality", "audio"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names == zoo.list_tokenizers(modality="audio")
    assert main(["info", "titok_tiny"]) == 0
    assert "titok_tiny.untrained" in capsys.readouterr().out


def test_image_encode_decode_reconstruct(tmp_path):
    from zoo.data.offline import load_photo
    from torchvision.utils import save_image

    src = tmp_path / "photo.png"
    save_image(load_photo("astronaut", 64), str(src))
    torch.manual_seed(0)
    zoo.create_tokenizer("titok_tiny").save_pretrained(tmp_path / "tok")
    weights = f"local-dir:{tmp_path / 'tok'}"
    assert main(["encode", weights, str(src), str(tmp_path / "t.pt")]) == 0
    assert main(["encode", weights, str(src), str(tmp_path / "t.npy")]) == 0
    ids = np.load(tmp_path / "t.npy")
    state = torch.load(tmp_path / "t.pt", weights_only=True)
    assert ids.shape == (1, 16) and np.array_equal(state["ids"].numpy(), ids)
    assert main(["decode", weights, str(tmp_path / "t.pt"), str(tmp_path / "out.png")]) == 0
    assert main(["reconstruct", weights, str(src), str(tmp_path / "rec.png")]) == 0
    from PIL import Image

    a, b = np.asarray(Image.open(tmp_path / "out.png")), np.asarray(Image.open(tmp_path / "rec.png"))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)


def test_audio_reconstruct_keeps_length(tmp_path):
    from zoo.audio import load_audio, save_audio
    from zoo.data.offline import load_speech, speech_paths

    wav = save_audio(tmp_path / "in.wav", load_speech(speech_paths("alsa")[0], 24000, 0.7), 24000)
    torch.manual_seed(0)
    zoo.create_tokenizer("wavtokenizer_tiny_75").save_pretrained(tmp_path / "codec")
    assert main(["reconstruct", f"local-dir:{tmp_path / 'codec'}", str(wav), str(tmp_path / "out.wav")]) == 0
    out, rate = load_audio(tmp_path / "out.wav")
    assert rate == 24000 and out.shape[-1] == int(0.7 * 24000)


def test_convert_official_checkpoint(tmp_path):
    from tests.conftest import load_golden

    case = load_golden("titok", "vq_direct")
    assert main(["convert", "titok", "--state-dict", str(case.state_dict_path), "--config", str(case.config_path),
                 "--out", str(tmp_path / "conv")]) == 0
    tok = zoo.from_pretrained(tmp_path / "conv")
    ref = zoo.load_official("titok", case.state_dict_path, case.config_path)
    x = case.inputs["image"]
    assert torch.equal(tok.encode(x).ids, ref.encode(x).ids)
    assert json.loads((tmp_path / "conv" / "config.json").read_text())["tokenizer_class"] == "TiTok"


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "zoo", "list", "titok_tiny*"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "titok_tiny.untrained" in r.stdout


def test_bad_input_file_gives_clear_error(tmp_path):
    torch.manual_seed(0)
    zoo.create_tokenizer("titok_tiny").save_pretrained(tmp_path / "tok")
    with pytest.raises(FileNotFoundError):
        main(["encode", f"local-dir:{tmp_path / 'tok'}", str(tmp_path / "missing.png"), str(tmp_path / "t.pt")])
