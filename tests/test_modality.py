"""Modality objects: reading any image mode, the tokenizers' input protocol, strict input, audio and video."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

import zoo
from zoo.data.offline import photo_paths, skimage_photos, speech_paths
from zoo.modality import AUDIO, IMAGE, VIDEO, InputProtocol, Modality


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_photos()["astronaut"]  # uint8 [512, 512, 3]


def test_tokenizer_modality_is_an_object_equal_to_its_name():
    for name in ("titok_tiny", "wavtokenizer_tiny_75", "video1d_tiny", "dmel.official", "fqgan_tiny"):
        tok = zoo.create_tokenizer(name)
        assert isinstance(tok.modality, Modality) and tok.modality == zoo.get_info(name).modality
        assert {tok.modality: 1}[zoo.get_info(name).modality] == 1  # same hash as the plain string
        assert pickle.loads(pickle.dumps(tok.modality)) is tok.modality


def test_every_pil_mode_becomes_the_expected_rgb(tmp_path, astronaut):
    rgb = PILImage.fromarray(astronaut)
    gray = np.array(rgb.convert("L"))
    protocol = InputProtocol("image")  # keep the file's size: compare pixel for pixel

    PILImage.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")  # 16-bit grayscale
    x, note = IMAGE.load(tmp_path / "gray16.png", protocol)
    assert "16-bit" in note
    # a plain convert("RGB") saturates 16-bit values at 255: the 8-bit gray must come back exactly
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(gray)[None].expand(3, -1, -1))

    rgb.convert("L").save(tmp_path / "gray.png")
    x, note = IMAGE.load(tmp_path / "gray.png", protocol)
    assert note.startswith("L -> RGB") and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])

    alpha = np.zeros(gray.shape, np.uint8)
    alpha[:, 256:] = 255  # left half transparent
    PILImage.fromarray(np.dstack([astronaut, alpha])).save(tmp_path / "rgba.png")
    x, note = IMAGE.load(tmp_path / "rgba.png", protocol)
    assert "alpha over white" in note
    assert bool((x[:, :, :256] == 1).all())
    opaque = torch.from_numpy(astronaut[:, 256:]).permute(2, 0, 1)
    assert torch.equal((x[:, :, 256:] * 255).round().to(torch.uint8), opaque)

    ref = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
    rgb.quantize(256).save(tmp_path / "palette.png")
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    for name, floor in (("palette.png", 25.0), ("cmyk.jpg", 25.0)):  # lossy re-encodings of the same photo
        x, note = IMAGE.load(tmp_path / name, protocol)
        assert x.shape == ref.shape and psnr(x, ref) > floor, (name, psnr(x, ref), note)


def test_protocol_resizes_the_short_side_and_crops_the_centre():
    tok = zoo.create_tokenizer("titok_demo64.demo", pretrained=True)
    protocol = tok.modality.protocol(tok)
    assert protocol.size == (64, 64) and protocol.multiple is None
    for path in photo_paths()[:4]:
        x, note = IMAGE.load(path, protocol)
        assert x.shape == (3, 64, 64) and "resized" in note and "centre-cropped to 64x64" in note
        # independent reference: the whole photo area-downsampled with torch, then its centre crop;
        # a misplaced crop or a stretched aspect ratio drops this to at most 21 dB (measured: 33-49 dB here)
        full = torch.from_numpy(np.array(PILImage.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255
        h, w = full.shape[-2:]
        rh, rw = (64, round(w * 64 / h)) if h < w else (round(h * 64 / w), 64)
        small = F.interpolate(full[None], size=(rh, rw), mode="area")[0]
        top, left = (rh - 64) // 2, (rw - 64) // 2
        assert psnr(x, small[:, top:top + 64, left:left + 64]) > 28.0, path


def test_strict_input_refuses_other_sizes_and_accepts_an_exact_file(tmp_path, astronaut):
    tok = zoo.create_tokenizer("titok_demo64.demo", pretrained=True)
    strict = tok.modality.protocol(tok, strict=True)
    with pytest.raises(ValueError, match=r"512x512 but the tokenizer takes 64x64"):
        PILImage.fromarray(astronaut).save(tmp_path / "big.png")
        IMAGE.load(tmp_path / "big.png", strict)
    small = PILImage.fromarray(astronaut).resize((64, 64), PILImage.BICUBIC)
    small.save(tmp_path / "small.png")
    x, note = IMAGE.load(tmp_path / "small.png", strict)
    assert "as is" in note and torch.equal((x * 255).round().byte().permute(1, 2, 0), torch.from_numpy(np.array(small)))


def test_a_tokenizer_taking_any_size_is_cropped_to_its_multiple_not_resized(tmp_path, astronaut):
    tok = zoo.create_tokenizer("fqgan_tiny", adapter_depth=0)
    assert tok.input_multiple == 4
    PILImage.fromarray(astronaut[:75, :101]).save(tmp_path / "odd.png")
    x, note = IMAGE.load(tmp_path / "odd.png", tok.modality.protocol(tok))
    assert x.shape == (3, 72, 100) and "centre-cropped 101x75 -> 100x72" in note
    assert torch.equal((x * 255).round().byte(), torch.from_numpy(astronaut[1:73, :100]).permute(2, 0, 1))
    assert tok.encode(x[None]).ids.shape == (1, 18 * 25, 2)
    x, _ = IMAGE.load(tmp_path / "odd.png", tok.modality.protocol(tok, size=32))  # asked for: resized
    assert x.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="takes 64x64 inputs only"):
        zoo.create_tokenizer("titok_tiny").modality.protocol(zoo.create_tokenizer("titok_tiny"), size=32)


def test_unreadable_images_raise_value_errors(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image at all\n")
    data = photo_paths()[0].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        with pytest.raises(ValueError, match="cannot read image"):
            IMAGE.load(tmp_path / name, InputProtocol("image", size=(64, 64)))


def test_audio_is_mixed_to_mono_and_resampled(tmp_path):
    import soundfile as sf

    from zoo.audio import read_audio, resample

    wave, rate = read_audio(speech_paths("alsa")[0])  # real speech, 48 kHz mono
    assert rate == 48000
    stereo = torch.stack([wave[0], 0.5 * wave[0].roll(480)])
    sf.write(tmp_path / "stereo.wav", stereo.T.numpy(), rate, subtype="FLOAT")
    tok = zoo.create_tokenizer("wavtokenizer_tiny_75")
    x, note = AUDIO.load(tmp_path / "stereo.wav", tok)
    assert "2 channels -> mono" in note and "48000 -> 24000 Hz" in note
    expected = resample(stereo.mean(0, keepdim=True), 48000, 24000)[0].clamp(-1, 1)
    assert x.shape == (-(-stereo.shape[1] // 2),) and torch.equal(x, expected)  # same ops on the same data
    with pytest.raises(ValueError, match="2 channel\\(s\\) at 48000 Hz"):
        AUDIO.load(tmp_path / "stereo.wav", tok.modality.protocol(tok, strict=True))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError):
        AUDIO.load(tmp_path / "empty.wav", tok)


def test_video_protocol_samples_frames_and_crops(tmp_path):
    from zoo.data.offline import load_photo
    from zoo.data.video import photo_clip, write_video

    clip = photo_clip(load_photo("astronaut", 128), frames=12, size=48, start=(-0.2, 0, 0.6), end=(0.2, 0, 0.6))
    clip = F.interpolate(clip.transpose(0, 1), size=(48, 64), mode="bilinear").transpose(0, 1)  # 64x48 frames
    write_video(tmp_path / "clip.mp4", clip, fps=8)
    tok = zoo.create_tokenizer("video1d_tiny")  # 8 frames of 32x32
    x, note = VIDEO.load(tmp_path / "clip.mp4", tok)
    assert x.shape == (3, 8, 32, 32) and "took 8 middle frames of 12" in note and "64x48 -> 43x32" in note
    # the middle 8 frames of the clip, resized and centre-cropped: equal up to the H.264 coding error
    ref = F.interpolate(clip[:, 2:10].transpose(0, 1), size=(32, 43), mode="bilinear", antialias=True)
    assert psnr(x, ref.transpose(0, 1)[..., 5:37]) > 28.0
    assert tok.encode(x[None]).ids.shape == (1, 32)


def test_every_registered_tokenizer_declares_the_advertised_input_size():
    """Registry-driven (parameters on the meta device: shapes only): the protocol of every image and
    video entry resizes to the registry's input size (or keeps the file's size for tokenizers that
    take any multiple), and audio entries resample to the registry's rate."""
    from zoo.checkpoint import parameters_on_meta

    for name in zoo.list_tokenizers():
        info = zoo.get_info(name)
        with parameters_on_meta():
            tok = info.builder(**info.kwargs)
        assert tok.modality == info.modality, name
        protocol = tok.modality.protocol(tok)
        if info.modality == "audio":
            assert protocol.sample_rate == info.sample_rate, name
            continue
        size = tuple(info.input_size[-2:])
        assert tuple(tok.input_size)[-2:] == size, name
        if tok.input_multiple is None:
            assert protocol.size == size, name
        else:
            assert protocol.size is None and all(s % tok.input_multiple == 0 for s in size), name
        if info.modality == "video":
            assert protocol.frames == info.input_size[0], name


def test_readme_encode_line_works_for_any_photo_size(tmp_path, capsys):
    """`python -m zoo encode TOKENIZER photo.jpg tokens.pt` (README) on photos that are not the
    tokenizer's size: the CLI applies the protocol, says so, and --strict-input refuses instead."""
    from zoo.cli import main
    from zoo.data.offline import MATE_DIR

    photo = MATE_DIR / "Dune.jpg"  # 1680x1050
    assert main(["encode", "titok_demo64.demo", str(photo), str(tmp_path / "tokens.pt"), "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "resized 1680x1050 -> 102x64, centre-cropped to 64x64" in out
    tok = zoo.create_tokenizer("titok_demo64.demo", pretrained=True)
    saved = torch.load(tmp_path / "tokens.pt", weights_only=True)
    assert torch.equal(saved["ids"], tok.encode(IMAGE.load(photo, tok)[0][None]).ids)  # same process, same batch
    with pytest.raises(ValueError, match="1680x1050 but the tokenizer takes 64x64"):
        main(["encode", "titok_demo64.demo", str(photo), str(tmp_path / "t2.pt"), "--pretrained", "--strict-input"])
