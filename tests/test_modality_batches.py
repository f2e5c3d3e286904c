"""Modality objects as the one place for per-modality batch behaviour: collate, fit to the input,
network layout, quick training metrics, sample saving and declared facts (real photos and speech)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.modality import AUDIO, IMAGE, VIDEO


def _clip_from(photo: torch.Tensor, frames: int = 4) -> torch.Tensor:
    """A pan over a real photo: ``[3, T, 32, 32]``."""
    return torch.stack([photo[:, 4 * i:4 * i + 32, 4 * i:4 * i + 32] for i in range(frames)], dim=1)


def test_declared_facts():
    assert (IMAGE.spatial, VIDEO.spatial, AUDIO.spatial) == (True, True, False)
    assert (IMAGE.frames_in_item, VIDEO.frames_in_item, AUDIO.frames_in_item) == (False, True, False)
    assert IMAGE.value_range == VIDEO.value_range == (0.0, 1.0) and AUDIO.value_range == (-1.0, 1.0)
    assert (IMAGE.item_noun, VIDEO.item_noun, AUDIO.item_noun) == ("image", "clip", "clip")


def test_collate_and_fit(speech_clip):
    a = speech_clip(16000, 0.5)[0]
    b = speech_clip(16000, 0.3)[0]
    batch, lengths = AUDIO.collate([a, b])
    assert batch.shape == (2, a.numel()) and lengths.tolist() == [a.numel(), b.numel()]
    assert torch.equal(batch[1, : b.numel()], b) and not batch[1, b.numel():].any()
    # decoded audio one hop too long, with a channel dim and out of range: trimmed and clipped
    decoded = torch.cat([batch * 1.5, torch.ones(2, 7)], dim=1)[:, None]
    fitted = AUDIO.fit(decoded, batch)
    assert fitted.shape == batch.shape and torch.equal(fitted, (batch * 1.5).clamp(-1, 1))
    short = AUDIO.fit(batch[:, :100], batch)  # too short: zero-padded at the end
    assert short.shape == batch.shape and torch.equal(short[:, :100], batch[:, :100]) and not short[:, 100:].any()
    images, none = IMAGE.collate([torch.rand(3, 8, 8), torch.rand(3, 8, 8)])
    assert images.shape == (2, 3, 8, 8) and none is None
    assert torch.equal(IMAGE.fit(images * 2 - 0.5, images), (images * 2 - 0.5).clamp(0, 1))


def test_network_views(photo_batch, speech_clip):
    clips = torch.stack([_clip_from(photo_batch[i]) for i in range(2)])        # [2, 3, 4, 32, 32]
    frames = VIDEO.network_view(clips)
    assert frames.shape == (8, 3, 32, 32) and torch.equal(frames[5], clips[1, :, 1])
    assert IMAGE.network_view(photo_batch) is photo_batch
    wave = speech_clip(16000, 0.2)
    assert AUDIO.network_view(wave).shape == (1, 1, wave.shape[-1]) and AUDIO.network_view(wave[:, None]).dim() == 3
    # scaled to [-1, 1] from the input range; audio already is, and is passed through untouched
    assert torch.equal(IMAGE.network_input(photo_batch, (0.0, 1.0)), photo_batch * 2.0 - 1.0)
    assert torch.equal(AUDIO.network_input(wave, (-1.0, 1.0)), wave[:, None])


def test_quick_metrics_on_real_data(photo_batch, speech_clip):
    from zoo.fidelity import mel_distance, psnr, si_sdr

    g = torch.Generator().manual_seed(0)
    noisy = (photo_batch + 0.05 * torch.randn(photo_batch.shape, generator=g)).clamp(0, 1)
    m = IMAGE.quick_metrics(noisy, photo_batch)
    assert set(m) == {"psnr"} and torch.equal(m["psnr"], psnr(noisy, photo_batch))
    # sigma 0.05 noise (clipped at the range ends): PSNR about -20 log10(0.05) = 26 dB
    assert bool(((m["psnr"] > 24) & (m["psnr"] < 30)).all())
    clips = torch.stack([_clip_from(photo_batch[i]) for i in range(2)])
    recon = (clips + 0.05 * torch.randn(clips.shape, generator=g)).clamp(0, 1)
    per_clip = VIDEO.quick_metrics(recon, clips)["psnr"]
    frame_means = torch.stack([psnr(recon[i].transpose(0, 1), clips[i].transpose(0, 1)).double().mean()
                               for i in range(2)])
    # the same per-frame float64 PSNRs averaged in another grouping: equal to float32 rounding
    torch.testing.assert_close(per_clip.double(), frame_means, atol=1e-5, rtol=0)
    wave = speech_clip(16000, 0.5)
    degraded = 0.5 * wave + 0.01 * torch.randn(wave.shape, generator=g)
    a = AUDIO.quick_metrics(degraded, wave, 16000)
    assert torch.equal(a["si_sdr"], si_sdr(degraded, wave))
    assert torch.equal(a["mel_distance"], mel_distance(degraded, wave, 16000))
    assert set(AUDIO.quick_metrics(degraded, wave)) == {"si_sdr"}  # no rate: no mel distance
    # SI-SDR ignores the 0.5 gain: it is the SNR of speech against the added noise, up to the noise's
    # projection on the speech (relative size ~1/sqrt(8000 samples), far below 0.5 dB)
    snr = 10 * math.log10(float((0.5 * wave - (0.5 * wave).mean()).square().sum())
                          / float((degraded - 0.5 * wave).square().sum()))
    assert abs(float(a["si_sdr"][0]) - snr) < 0.5


def test_save_samples(tmp_path, photo_batch, speech_clip):
    from PIL import Image

    IMAGE.save_samples(tmp_path, "img", photo_batch[:3], photo_batch[:3].flip(-1))
    grid = np.asarray(Image.open(tmp_path / "img.png"))
    assert grid.shape[:2] == (2 * 64 + 3 * 2, 3 * 64 + 4 * 2)  # originals above reconstructions, 2 px padding
    clips = torch.stack([_clip_from(photo_batch[i], frames=3) for i in range(2)])
    VIDEO.save_samples(tmp_path, "vid", clips, clips)
    grid = np.asarray(Image.open(tmp_path / "vid.png"))
    assert grid.shape[:2] == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)  # one row per clip and per reconstruction
    wave = speech_clip(16000, 0.25)
    AUDIO.save_samples(tmp_path, "wav", wave, wave, sample_rate=16000)
    assert sorted(p.name for p in (tmp_path / "wav").iterdir()) == ["00_original.wav", "00_recon.wav"]
    AUDIO.save_samples(tmp_path, "none", wave, wave)  # no rate, nothing written
    assert not (tmp_path / "none").exists()


def test_seconds(speech_clip):
    class Tok:
        sample_rate = 16000

    assert AUDIO.seconds(speech_clip(16000, 0.5), Tok()) == pytest.approx(0.5)
    assert VIDEO.seconds(torch.zeros(1, 3, 16, 8, 8), Tok()) == 16 / VIDEO.fps
    assert IMAGE.seconds(torch.zeros(1, 3, 8, 8), Tok()) is None
