"""Recipe data options used by the demo recipes: ``data.split`` (the fixed offline splits),
random-scale image crops (``resize: [lo, hi]``), scikit-image photo names and empty audio files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.data.audio import AudioFolder
from zoo.data.image import ImageFolder
from zoo.data.offline import photo_split
from zoo.train.data import build_datasets


def test_photo_split_is_used_exactly():
    train, held = photo_split()
    tr, va = build_datasets({"type": "image_folder", "split": "photo_split", "size": 32, "resize": 32,
                             "val": {"resize": 32}})
    assert [str(p) for p in tr.paths] == train and [str(p) for p in va.paths] == held
    assert not set(train) & set(held)
    x = tr[(len(tr) - 1, 7)]  # a scikit-image photo given by name
    assert x.shape == (3, 32, 32) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_wallpaper_photos_only_join_the_training_split():
    from PIL import Image

    from zoo.data.offline import PLASMA_PHOTOS, wallpaper_photo_paths

    train, held = photo_split()
    more_train, same_held = photo_split(wallpapers=True)
    walls = [str(p) for p in wallpaper_photo_paths()]
    assert same_held == held and more_train == train + walls and len(walls) == len(PLASMA_PHOTOS) == 11
    assert not set(walls) & set(held)
    with Image.open(walls[0]) as im:
        assert im.size == (2560, 1600)
    tr, va = build_datasets({"type": "image_folder", "split": "photo_split", "split_options": {"wallpapers": True},
                             "size": 32, "resize": 32})
    assert [str(p) for p in tr.paths] == more_train and [str(p) for p in va.paths] == held


def test_unknown_named_split_is_refused():
    with pytest.raises(ValueError, match="data.split"):
        build_datasets({"type": "image_folder", "split": "photos", "size": 32})


def test_random_scale_crops():
    ds = ImageFolder(["astronaut"], size=32, resize=[32, 128], preload=True, hflip=False)
    assert ds.resize_range == (32, 128)
    whole = ds[0]  # unseeded: the smallest scale, centre crop
    assert whole.shape == (3, 32, 32)
    views = torch.stack([ds[(0, s)] for s in range(6)])
    assert views.shape == (6, 3, 32, 32)
    assert len({round(float(v.std()), 4) for v in views}) > 1  # scales / positions differ with the seed
    with pytest.raises(ValueError, match="resize range"):
        ImageFolder(["astronaut"], size=32, resize=[128, 32])
    with pytest.raises(ValueError, match="must be >= size"):
        ImageFolder(["astronaut"], size=64, resize=[32, 128])


def test_audio_folder_skips_empty_files(tmp_path):
    good, empty = tmp_path / "good.wav", tmp_path / "empty.wav"
    sf.write(good, (0.1 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 8000)
    sf.write(empty, np.zeros(0, dtype=np.float32), 8000)
    with pytest.warns(UserWarning, match="holding no samples"):
        ds = AudioFolder([good, empty], sample_rate=8000, segment=4000, preload=True)
    assert len(ds) == 1 and ds[0].shape == (4000,)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="every audio file is empty"):
        AudioFolder([empty], sample_rate=8000, segment=4000)
