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
    def __init__(self, tok, shape: tuple[int, ...], data: str, num_samples: int | None, max_seconds: float):
        self.tok, self.shape, self.source, self.max_seconds = tok, tuple(shape), data, max_seconds
        total = self._open(data)
        self.n = min(total, num_samples) if num_samples else total

    def _open(self, data: str) -> int:
        """List the items of ``data``, set ``self.protocol``; returns the number of items."""
        raise NotImplementedError

    def input_record(self) -> dict[str, Any]:
        return {"size": list(self.shape)} | self.protocol

    def item_name(self, index: int) -> str:
        paths = getattr(self.ds, "paths", None)
        return str(paths[index]) if paths is not None else f"item {index}"

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.tok.modality.collate([self.ds[i] for i in indices])


def _registered_size(info) -> tuple[int, ...] | None:
    return getattr(info, "input_size", None) if info is not None else None


class ImageData(_Data):
    """Photos: short side resized to the input side (PIL bicubic), centre crop."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        size = _registered_size(info)
        side = image_size or (size[-1] if size else tok.config.get("image_size") or 256)
        return (int(side), int(side))

    def _open(self, data):
        from zoo.data.image import ImageFolder, list_images

        side = self.shape[-1]
        self.ds = ImageFolder(list_images(data), size=side, random_crop=False)
        self.protocol = {"preprocessing": f"short side resized to {side} (PIL bicubic, reducing_gap=3), "
                                          f"centre crop {side}x{side}, float in [0, 1]"}
        return len(self.ds)

    def figure(self, out: Path, examples, title: str) -> Path:
        from .report import recon_grid

        return recon_grid(out / "reconstructions.png", examples[0], examples[1], title=title)


class VideoData(_Data):
    """Clips: a centre clip of T consecutive frames, short side resized, centre crop."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        shape = _registered_size(info) or tok.config.get("input_size") or (16, 128, 128)
        return (int(num_frames or shape[0]), int(image_size or shape[-2]), int(image_size or shape[-1]))

    def _open(self, data):
        from zoo.data.video import video_dataset

        frames, side = self.shape[0], self.shape[-1]
        self.ds = video_dataset(data, frames=frames, size=side, **(
            {} if str(data).startswith("offline:") else {"random_crop": False}))
        self.protocol = {"preprocessing": f"{frames} consecutive frames (centre clip), short side resized to "
                                          f"{side}, centre crop"}
        return len(self.ds)

    def figure(self, out: Path, examples, title: str) -> Path:
        from .report import frame_strips

        return frame_strips(out / "frame_strips.png", examples[0], examples[1], title=title)


class AudioData(_Data):
    """Speech files: mono, resampled to the tokenizer's rate, the first ``max_seconds`` of each."""

    @staticmethod
    def input_shape(tok, info, image_size: int | None, num_frames: int | None) -> tuple[int, ...]:
        return ()

    def _open(self, data):
        from zoo.data.audio import list_audio

        self.paths = list_audio(data)
        self.rate = int(self.tok.sample_rate)
        self.protocol = {"preprocessing": f"mono, resampled to {self.rate} Hz (sinc), clipped to [-1, 1], "
                                          f"first {self.max_seconds:g} s of each file, zero-padded in a batch"}
        return len(self.paths)

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
