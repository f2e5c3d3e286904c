"""Build the training and held-out datasets of a recipe's ``data`` section.

``data.type``: ``image_folder`` (:class:`zoo.data.image.ImageFolder`), ``audio_folder``
(:class:`zoo.data.audio.AudioFolder`) or ``video_folder`` (``zoo.data.video``). Files are
split deterministically into train / held-out by ``zoo.data.offline.split_paths`` (or taken
from ``val_root`` when given, or by ``split: photo_split | speech_split``, the fixed offline
splits of ``zoo.data.offline`` used by the demo tokenizers, called with the ``split_options``
mapping, e.g. ``{wallpapers: true}``; ``root`` is then unused);
``data.val`` overrides dataset options for the held-out set (which never uses random crops);
``max_files`` / ``max_val_files`` cap the training / held-out files (after the split).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["build_datasets", "collate"]

_SPLIT_KEYS = {"type", "split", "split_options", "root", "val_root", "holdout_fraction", "split_salt", "val", "max_files",
               "max_val_files"}


def _split(paths: list[Path], cfg: dict) -> tuple[list[Path], list[Path]]:
    from zoo.data.offline import split_paths

    train, held = split_paths(paths, holdout_fraction=float(cfg.get("holdout_fraction", 0.1)),
                              salt=str(cfg.get("split_salt", "zoo")))
    if not held and len(train) > 1:  # tiny corpora: keep at least one held-out file
        held = [train.pop()]
    return train, held


_NAMED_SPLITS = ("photo_split", "speech_split")


def _files(lister, cfg: dict) -> tuple[list[Path], list[Path]]:
    if cfg.get("split") is not None:
        if cfg["split"] not in _NAMED_SPLITS:
            raise ValueError(f"data.split must be one of {_NAMED_SPLITS}, got {cfg['split']!r}")
        from zoo.data import offline

        train, held = getattr(offline, cfg["split"])(**(cfg.get("split_options") or {}))
        return _cap(list(train), list(held), cfg)
    if cfg.get("root") is None:
        raise ValueError("data.root is missing (a folder, or offline:photos / offline:speech_nl / ...)")
    if cfg.get("val_root"):
        train, held = lister(cfg["root"]), lister(cfg["val_root"])
    else:
        train, held = _split(lister(cfg["root"]), cfg)
    return _cap(train, held, cfg)


def _cap(train: list, held: list, cfg: dict) -> tuple[list, list]:
    if cfg.get("max_files"):
        train = train[: int(cfg["max_files"])]
    if cfg.get("max_val_files"):
        held = held[: int(cfg["max_val_files"])]
    if not train:
        raise ValueError(f"no training files under {cfg.get('root') or cfg.get('split')} after the held-out split")
    return train, held


def _options(cfg: dict) -> tuple[dict, dict]:
    opts = {k: v for k, v in cfg.items() if k not in _SPLIT_KEYS}
    val = {**opts, **(cfg.get("val") or {})}
    return opts, val


def build_datasets(cfg: dict, model: Any | None = None) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """``(train, held_out)`` datasets for the ``data`` section; ``model`` supplies defaults
    (the audio sample rate)."""
    kind = cfg.get("type")
    opts, val_opts = _options(cfg)
    if kind == "image_folder":
        from zoo.data.image import ImageFolder, list_images

        train, held = _files(list_images, cfg)
        val_opts.pop("random_crop", None), val_opts.pop("hflip", None)
        return ImageFolder(train, **opts), ImageFolder(held or train[:1], random_crop=False, **val_opts)
    if kind == "audio_folder":
        from zoo.data.audio import AudioFolder, list_audio

        rate = getattr(model, "sample_rate", None)
        for o in (opts, val_opts):
            if o.get("sample_rate") is None:
                if rate is None:
                    raise ValueError("data.sample_rate is required (the model has no sample_rate)")
                o["sample_rate"] = rate
        train, held = _files(list_audio, cfg)
        val_opts.pop("random_crop", None)
        return AudioFolder(train, **opts), AudioFolder(held or train[:1], random_crop=False, **val_opts)
    if kind == "video_folder":
        from zoo.data import video

        if str(cfg.get("root")) == video.OFFLINE_CLIPS:
            from zoo.data.offline import load_photo, photo_paths

            train, held = _split(photo_paths(), cfg)
            size = int(opts.get("size", 128))

            def clips(paths, o):  # synthetic camera motion: crop / flip / stride options do not apply
                o = {k: v for k, v in o.items() if k not in ("resize", "random_crop", "hflip", "frame_stride")}
                photos = torch.stack([load_photo(p, 2 * size) for p in paths])
                return video.PhotoClips(photos=photos, **o)

            return clips(train, opts), clips(held or train[:1], val_opts)
        train, held = _files(video.list_videos, cfg)
        val_opts.pop("random_crop", None), val_opts.pop("hflip", None)
        return (video.VideoFolder(train, **opts),
                video.VideoFolder(held or train[:1], random_crop=False, **val_opts))
    raise ValueError(f"unknown data.type {kind!r}; choose image_folder, audio_folder or video_folder")


def collate(items: list[torch.Tensor]) -> torch.Tensor:
    """Stack equally shaped items into a batch."""
    return torch.stack(items)
