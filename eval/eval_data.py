"""The inputs of ``scripts/evaluate.py`` per modality: input shape, the items of ``--data``, the data
protocol written next to every number, and the example figure.

:func:`eval_data` picks the class for the tokenizer's modality (:data:`DATA`). Each gives
``n`` (items used), ``protocol`` (how files became inputs), ``input_record()`` (the report's
``input`` entry), ``item_name(i)``, ``batch(indices) -> (inputs, lengths or None)`` (audio:
zero-padded clips and their lengths, ``Modality.collate``) and ``figure(...)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["DATA", "eval_data", "ImageData", "VideoData", "AudioData"]


class _Data:
    def __init__(self, tok, shape: tuple[int, ...], data: str, num_samples: int | None, total: int):
        self.tok, self.shape, self.source = tok, tuple(shape), data
        self.n = min(total, num_samples) if num_samples else total

    def input_record(self) -> dict[str, Any]:
        return {"size": list(self.shape)} | self.protocol

    def item_name(self, index: int) -> str:
        paths = getattr(self.ds, "paths", None)
        return str(paths[index]) if paths is not None else f"item {index}"

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.tok.modality.collate([self.ds[i] for i in indices])


class ImageData(_Data):
    """Photos: short side resized to the input side (PIL bicubic), centre crop."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        size = getattr(info, "input_size", None) if info is not None else None
        side = image_size or (size[-1] if size else tok.config.get("image_size") or 256)
        return (int(side), int(side))

    def __init__(self, tok, shape, data, num_samples, max_seconds):
        from zoo.data.image import ImageFolder, list_images

        self.ds = ImageFolder(list_images(data), size=shape[-1], random_crop=False)
        self.protocol = {"preprocessing": f"short side resized to {shape[-1]} (PIL bicubic, reducing_gap=3), "
                                          f"centre crop {shape[-1]}x{shape[-1]}, float in [0, 1]"}
        super().__init__(tok, shape, data, num_samples, len(self.ds))

    def figure(self, out: Path, examples, title: str) -> Path:
        from .report import recon_grid

        xs, rs, _ = examples
        return recon_grid(out / "reconstructions.png", xs, rs, title=title)


class VideoData(_Data):
    """Clips: a centre clip of T consecutive frames, short side resized, centre crop."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        size = getattr(info, "input_size", None) if info is not None else None
        shape = size or tok.config.get("input_size") or (16, 128, 128)
        return (int(num_frames or shape[0]), int(image_size or shape[-2]), int(image_size or shape[-1]))

    def __init__(self, tok, shape, data, num_samples, max_seconds):
        from zoo.data.video import video_dataset

        self.ds = video_dataset(data, frames=shape[0], size=shape[-1], **(
            {} if str(data).startswith("offline:") else {"random_crop": False}))
        self.protocol = {"preprocessing": f"{shape[0]} consecutive frames (centre clip), short side resized to "
                                          f"{shape[-1]}, centre crop"}
        super().__init__(tok, shape, data, num_samples, len(self.ds))

    def figure(self, out: Path, examples, title: str) -> Path:
        from .report import frame_strips

        xs, rs, _ = examples
        return frame_strips(out / "frame_strips.png", xs, rs, title=title)


class AudioData(_Data):
    """Speech files: mono, resampled to the tokenizer's rate, the first ``max_seconds`` of each."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        return ()

    def __init__(self, tok, shape, data, num_samples, max_seconds):
        from zoo.data.audio import list_audio

        self.paths = list_audio(data)
        self.rate, self.max_seconds = int(tok.sample_rate), max_seconds
        self.protocol = {"preprocessing": f"mono, resampled to {self.rate} Hz (sinc), clipped to [-1, 1], "
                                          f"first {self.max_seconds:g} s of each file, zero-padded in a batch"}
        super().__init__(tok, shape, data, num_samples, len(self.paths))

    def input_record(self) -> dict[str, Any]:
        return {"sample_rate": self.rate, "max_seconds": self.max_seconds} | self.protocol

    def item_name(self, index: int) -> str:
        return str(self.paths[index])

    def batch(self, indices):
        from zoo.data.offline import load_speech

        return self.tok.modality.collate([load_speech(self.paths[i], self.rate, max_seconds=self.max_seconds)
                                          for i in indices])

    def figure(self, out: Path, examples, title: str) -> Path:
        from .report import audio_comparison

        xs, rs, ls = examples
        n = int(ls[0]) if ls is not None else xs.shape[-1]
        return audio_comparison(out / "audio_comparison.png", xs[0, :n], rs[0, :n], self.rate, title=title)


#: evaluation data class by modality name
DATA: dict[str, type[_Data]] = {"image": ImageData, "video": VideoData, "audio": AudioData}


def eval_data(tok, info, data: str, *, image_size=None, num_frames=None, num_samples=None, max_seconds=10.0):
    """The evaluation data of ``--data`` for ``tok`` (its input shape from the registry entry ``info``,
    the tokenizer's config or the flags)."""
    cls = DATA[tok.modality.name]
    shape = cls.input_shape(tok, info, image_size, num_frames)
    return cls(tok, shape, data, num_samples, max_seconds)
