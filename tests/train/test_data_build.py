"""Recipe data sections -> train / held-out datasets (deterministic, disjoint splits)."""
import pytest
import torch

from zoo.train.data import build_datasets


def test_image_split_is_deterministic_and_disjoint():
    cfg = {"type": "image_folder", "root": "offline:photos", "size": 32, "resize": 48, "holdout_fraction": 0.25}
    train, held = build_datasets(cfg)
    train2, held2 = build_datasets(cfg)
    assert train.paths == train2.paths and held.paths == held2.paths
    assert set(train.paths).isdisjoint(held.paths) and len(held) >= 1
    assert held.random_crop is False and train[(0, 3)].shape == (3, 32, 32)
    capped, _ = build_datasets({**cfg, "max_files": 2})
    assert capped.paths == train.paths[:2]


def test_audio_takes_the_model_rate_and_video_clips_split():
    class Model:
        sample_rate = 8000

    train, held = build_datasets({"type": "audio_folder", "root": "offline:speech_alsa", "segment_seconds": 0.25,
                                  "max_files": 2, "holdout_fraction": 0.2}, Model())
    assert train.sample_rate == 8000 and train[(0, 1)].shape == (2000,) and len(held) >= 1
    with pytest.raises(ValueError, match="sample_rate"):
        build_datasets({"type": "audio_folder", "root": "offline:speech_alsa", "segment": 100})
    vtrain, vheld = build_datasets({"type": "video_folder", "root": "offline:photo_clips", "frames": 4, "size": 16,
                                    "num_clips": 4, "hflip": True, "val": {"num_clips": 1}})
    assert vtrain[(1, 5)].shape == (3, 4, 16, 16) and len(vheld) == 1
    assert torch.equal(vtrain[(1, 5)], vtrain[(1, 5)])
    with pytest.raises(ValueError, match="data.type"):
        build_datasets({"type": "text_folder"})
