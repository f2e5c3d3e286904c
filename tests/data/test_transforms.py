"""Seeded crops, flips, segments and peak normalisation."""
import pytest
import torch

from zoo.data.transforms import (center_crop, center_segment, generator, peak_normalize, random_crop, random_hflip,
                                 random_segment)


def test_random_crop_is_seed_deterministic_and_in_bounds(photo_batch):
    img = photo_batch[0]
    a = random_crop(img, 24, generator(7))
    b = random_crop(img, 24, generator(7))
    assert a.shape == (3, 24, 24) and torch.equal(a, b)
    crops = {tuple(random_crop(img, 24, generator(s))[:, 0, 0].tolist()) for s in range(20)}
    assert len(crops) > 5  # different seeds, different windows
    assert torch.equal(center_crop(img, 64), img)
    with pytest.raises(ValueError, match="smaller"):
        random_crop(img, 65, generator(0))


def test_hflip_and_segments():
    img = torch.arange(6.0).view(1, 2, 3)
    flips = [torch.equal(random_hflip(img, generator(s)), img.flip(-1)) for s in range(40)]
    assert 5 < sum(flips) < 35
    wave = torch.arange(10.0)
    seg = random_segment(wave, 4, generator(1))
    assert seg.shape == (4,) and torch.equal(seg, torch.arange(seg[0], seg[0] + 4))
    assert torch.equal(random_segment(wave, 12, generator(1))[10:], torch.zeros(2))  # zero-padded
    assert torch.equal(center_segment(wave, 4), torch.tensor([3.0, 4, 5, 6]))


def test_peak_normalize(speech_clip):
    wave = speech_clip(16000, 0.5)[0] * 0.1
    out = peak_normalize(wave, 0.9)
    assert float(out.abs().max()) == pytest.approx(0.9, abs=1e-6)
    assert torch.equal(peak_normalize(torch.zeros(5)), torch.zeros(5))
    with pytest.raises(ValueError):
        peak_normalize(wave, 1.5)
