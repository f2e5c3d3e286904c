"""ONNX export run with onnxruntime on real photos and speech, against the PyTorch tokenizer.

Bounds (onnxruntime and PyTorch run the same float32 graph with different kernels: summation
orders differ, so activations differ by a few float32 roundings, ~1e-7 relative per op):
- ids: an id can differ only where the latent sits on a decision boundary (nearest code, FSQ
  rounding, dMel threshold) within that rounding noise; measured: all ids equal on these inputs.
  Asserted: at least 99 % equal (near-ties only), so a wrong graph (gate order, padding, a
  dropped op), which changes most ids, fails.
- decode of the same ids: measured max |diff| 1.2e-6 (TiTok demo), 2.4e-5 (WavTokenizer demo:
  LSTM-free decoder but a 24 kHz ISTFT over 1 s frames), 6e-7 (dMel Vocos); asserted 1e-4 for images
  and dMel, 1e-3 for WavTokenizer (about 40x the measured values, far below the ~1e-2..1 errors
  of a broken graph).
Dynamic axes are exercised: the graphs are traced at batch 2 and 1 s, and run here at batch 1,
3 and 4 and at lengths that are not multiples of the hop.
"""
import json

import numpy as np
import pytest
import torch

import zoo
from zoo.api import Tokens
from zoo.export import ExportError, export_onnx, weights_sha256
from zoo.export.onnx import file_sha256

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export each tokenizer once per module: name -> (tokenizer, folder, metadata)."""
    cache = {}

    def get(name: str, parts=("encoder", "decoder")):
        if name not in cache:
            tok = zoo.create_tokenizer(name, pretrained=True).eval()
            out = tmp_path_factory.mktemp(name.replace(".", "_"))
            cache[name] = (tok, out, export_onnx(tok, out, name=name, parts=parts))
        return cache[name]

    return get


def _check_ids(got: np.ndarray, ref: torch.Tensor) -> None:
    assert got.dtype == np.int64 and got.shape == tuple(ref.shape)
    assert (got == ref.numpy()).mean() >= 0.99


def _speech(rate: int, seconds: list[float]) -> torch.Tensor:
    """Real utterances cut to the shortest of ``seconds`` per batch row (one length per batch)."""
    from zoo.data.offline import load_speech, speech_paths

    paths = speech_paths("alsa")
    n = int(min(seconds) * rate)
    return torch.stack([load_speech(paths[i], rate)[:n] for i in range(len(seconds))])


@pytest.mark.slow
def test_titok_demo_onnx_matches_pytorch_on_photos(exported, photo_batch):
    tok, out, meta = exported("titok_demo64.demo")
    enc, dec = _session(out / "encoder.onnx"), _session(out / "decoder.onnx")
    for x in (photo_batch, photo_batch[:1], torch.cat([photo_batch, photo_batch[:3].flip(-1)])):  # 4, 1, 7
        ref = tok.encode(x)
        _check_ids(enc.run(None, {"x": x.numpy()})[0], ref.ids)
        recon = dec.run(None, {"ids": ref.ids.numpy()})[0]
        assert recon.dtype == np.float32
        np.testing.assert_allclose(recon, tok.decode(ref).numpy(), rtol=0, atol=1e-4)
    assert meta["input_shape"] == ["batch", 3, 64, 64] and meta["codebook_size"] == tok.codebook_size
    # tracing derives same-named proxy subclasses of the model classes: configs still name the real class
    from zoo.api import tokenizer_class
    from zoo.models.titok import TiTok

    assert tokenizer_class("TiTok") is TiTok and type(zoo.create_tokenizer("titok_demo64.demo", pretrained=True)) is TiTok


@pytest.mark.slow
def test_wavtokenizer_demo_onnx_matches_pytorch_on_speech(exported):
    tok, out, meta = exported("wavtokenizer_demo75.demo")
    enc, dec = _session(out / "encoder.onnx"), _session(out / "decoder.onnx")
    for seconds in ([1.37], [0.9, 1.2, 1.1]):  # batch 1 and 3; 32880 and 21600 samples (not hop multiples)
        x = _speech(tok.sample_rate, seconds)
        x = x[:, : x.shape[1] - 7]  # off the hop grid: exercises the extra padding
        ref = tok.encode(x)
        ids = enc.run(None, {"x": x.numpy()})[0]
        _check_ids(ids, ref.ids)
        audio = dec.run(None, {"ids": ref.ids.numpy()})[0]
        assert audio.shape == (x.shape[0], ref.ids.shape[1] * tok.hop_length)
        # the graph returns every frame's samples; decode trims to Tokens.num_samples
        np.testing.assert_allclose(audio[:, : x.shape[1]], tok.decode(ref).numpy(), rtol=0, atol=1e-3)
    assert meta["sample_rate"] == 24000 and meta["hop_length"] == tok.hop_length


@pytest.mark.slow
def test_dmel_vocos_demo_onnx_matches_pytorch_on_speech(exported):
    tok, out, meta = exported("dmel_vocos_demo.demo")
    enc, dec = _session(out / "encoder.onnx"), _session(out / "decoder.onnx")
    for seconds in ([1.45], [0.8, 1.0, 0.9, 1.3]):  # batch 1 and 4
        x = _speech(tok.sample_rate, seconds)
        ref = tok.encode(x)
        _check_ids(enc.run(None, {"x": x.numpy()})[0], ref.ids)
        audio = dec.run(None, {"ids": ref.ids.numpy()})[0]
        np.testing.assert_allclose(audio, tok.decode(Tokens(ids=ref.ids)).numpy(), rtol=0, atol=1e-4)
    assert meta["ids_shape"][-1] == 80


@pytest.mark.slow
def test_mel_rvq_demo_onnx_matches_pytorch_on_speech(exported):
    tok, out, meta = exported("mel_rvq_demo.demo")
    enc, dec = _session(out / "encoder.onnx"), _session(out / "decoder.onnx")
    for seconds in ([1.43], [0.8, 1.0, 1.2]):  # batch 1 and 3; 115 and 65 frames: not multiples of the group of 4
        x = _speech(tok.sample_rate, seconds)
        ref = tok.encode(x)
        _check_ids(enc.run(None, {"x": x.numpy()})[0], ref.ids)
        audio = dec.run(None, {"ids": ref.ids.numpy()})[0]
        assert audio.shape == (x.shape[0], (ref.ids.shape[1] * tok.stack - 1) * tok.mel.hop_length)
        # the graph decodes whole groups of frames, as decode does without Tokens.num_samples (with it, decode
        # drops the repeated frames of the last group before the vocoder: the last ~50 ms differ slightly)
        np.testing.assert_allclose(audio, tok.decode(Tokens(ids=ref.ids)).numpy(), rtol=0, atol=1e-4)
    assert meta["ids_shape"][-1] == 15 and meta["family"] == "mel_rvq"


@pytest.mark.slow
def test_metadata_identifies_weights_and_files(exported):
    tok, out, meta = exported("dmel_vocos_demo.demo")
    on_disk = json.loads((out / "metadata.json").read_text())
    assert on_disk == meta
    assert meta["weights_sha256"] == weights_sha256(tok)
    for graph in meta["graphs"].values():
        assert graph["sha256"] == file_sha256(out / graph["file"])
    assert meta["opset"] == 18 and meta["zoo_version"] == zoo.__version__
    assert meta["family"] == "dmel" and meta["modality"] == "audio" and meta["sample_rate"] == 16000
    assert meta["inputs_checked"] is False and meta["config"] == tok.config


def test_weights_sha256_changes_with_any_weight():
    tok = zoo.create_tokenizer("titok_tiny.untrained")
    before = weights_sha256(tok)
    assert before == weights_sha256(tok)
    with torch.no_grad():
        next(tok.parameters()).view(-1)[0] += 1e-3
    assert weights_sha256(tok) != before


@pytest.mark.parametrize("name", ["flextok_tiny.untrained", "fqgan_tiny.untrained", "video1d_tiny.untrained"])
def test_unsupported_families_name_the_supported_ones(tmp_path, name):
    with pytest.raises(ExportError, match="titok, onedpiece, wavtokenizer, dmel"):
        export_onnx(zoo.create_tokenizer(name), tmp_path)
    assert not list(tmp_path.iterdir())


def test_griffin_lim_dmel_decoder_is_a_clear_error(tmp_path):
    tok = zoo.create_tokenizer("dmel.official", pretrained=True)
    with pytest.raises(ExportError, match="Griffin-Lim.*--parts encoder"):
        export_onnx(tok, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="parts must be"):
        export_onnx(tok, tmp_path, parts=("vocoder",))


@pytest.mark.slow
def test_cli_exports_one_d_piece_and_dmel_encoder(tmp_path, capsys, speech_clip):
    """The CLI path; One-D-Piece (TiTok's class) with seeded random weights; dMel's encoder alone."""
    from zoo.cli import main

    assert main(["export", "onedpiece_tiny.untrained", str(tmp_path / "odp"), "--format", "onnx"]) == 0
    assert "encoder.onnx, decoder.onnx" in capsys.readouterr().out
    torch.manual_seed(0)  # the CLI seeds random weights with --seed (default 0)
    tok = zoo.create_tokenizer("onedpiece_tiny.untrained").eval()
    meta = json.loads((tmp_path / "odp" / "metadata.json").read_text())
    assert meta["weights_sha256"] == weights_sha256(tok)
    from zoo.data.offline import photos

    x = photos(64, limit=2)
    _check_ids(_session(tmp_path / "odp" / "encoder.onnx").run(None, {"x": x.numpy()})[0], tok.encode(x).ids)

    assert main(["export", "dmel.official", str(tmp_path / "dmel"), "--parts", "encoder"]) == 0
    assert not (tmp_path / "dmel" / "decoder.onnx").exists()
    dmel = zoo.create_tokenizer("dmel.official", pretrained=True)
    wave = speech_clip(16000, 2.0)
    _check_ids(_session(tmp_path / "dmel" / "encoder.onnx").run(None, {"x": wave.numpy()})[0], dmel.encode(wave).ids)

    assert main(["export", "fqgan_tiny.untrained", str(tmp_path / "fq")]) == 2
    assert "supports titok, onedpiece" in capsys.readouterr().err
