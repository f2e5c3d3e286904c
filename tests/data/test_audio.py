"""Audio folders: resampling, peak normalisation, random segments on real speech."""
import shutil

import pytest
import torch

from zoo.audio import load_audio
from zoo.data.audio import AudioFolder, list_audio


def test_offline_speech_resampled_and_normalised():
    paths = list_audio("offline:speech_alsa")
    assert len(paths) >= 2
    ds = AudioFolder(paths[:2], sample_rate=16000, segment_seconds=0.5, peak=0.9, preload=True)
    x = ds[0]
    assert x.shape == (8000,) and x.dtype == torch.float32
    full = ds._cache[0]
    raw, rate = load_audio(paths[0])
    assert rate == 48000 and abs(full.shape[0] - raw.shape[-1] / 3) <= 2  # resampled 48 kHz -> 16 kHz
    assert float(full.abs().max()) == pytest.approx(0.9, abs=1e-5)
    a, b = ds[(1, 3)], ds[(1, 4)]
    assert torch.equal(a, ds[(1, 3)]) and not torch.equal(a, b)


def test_folder_listing_and_errors(tmp_path):
    src = list_audio("offline:speech_nl")[:3]
    for p in src:
        shutil.copy(p, tmp_path / p.name)
    paths = list_audio(tmp_path)
    assert len(paths) == 3
    ds = AudioFolder(paths, sample_rate=8000, segment=4000, peak=None)
    assert ds[(2, 0)].shape == (4000,)
    with pytest.raises(ValueError, match="exactly one"):
        AudioFolder(paths, sample_rate=8000)
    with pytest.raises(FileNotFoundError, match="not found"):
        list_audio(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio"):
        list_audio(tmp_path / "empty")
