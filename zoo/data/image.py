"""Image folders (flat, nested, or ImageNet ``root/<class>/*.JPEG`` layout) as training datasets.

Items are float ``[3, size, size]`` in [0, 1]: the short side is resized to ``resize``
(default ``size``), then a crop (random or centre) and an optional random horizontal flip.
``dataset[i]`` gives the deterministic centre crop; ``dataset[(i, seed)]`` the augmented
view for that seed (see ``zoo.train.sampling``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .transforms import center_crop, generator, random_crop, random_hflip

__all__ = ["IMAGE_EXTENSIONS", "list_images", "ImageFolder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(root: str | os.PathLike) -> list[Path]:
    """Sorted image files under ``root`` (recursive); ``"offline:photos"`` = the offline photo corpus."""
    if str(root) == "offline:photos":
        from .offline import photo_paths

        return photo_paths()
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    return paths


class ImageFolder(torch.utils.data.Dataset):
    """paths: image files (or scikit-image photo names, see ``zoo.data.offline.load_photo``); size:
    crop side; resize: short side before cropping (>= size), or ``[lo, hi]``: seeded items are
    rescaled to a random short side in [lo, hi] (random-scale crops; unseeded items use ``lo``);
    random_crop / hflip: augmentations for seeded items; preload: decode and resize every
    image once into memory (small corpora)."""

    def __init__(self, paths: list[str | os.PathLike], size: int = 256, resize: int | list[int] | None = None,
                 random_crop: bool = True, hflip: bool = False, preload: bool = False):
        if not paths:
            raise ValueError("ImageFolder needs at least one image path")
        self.paths = [Path(p) for p in paths]
        self.size = int(size)
        if isinstance(resize, (list, tuple)):
            if len(resize) != 2 or int(resize[0]) > int(resize[1]):
                raise ValueError(f"resize range must be [lo, hi] with lo <= hi, got {resize!r}")
            self.resize_range = (int(resize[0]), int(resize[1]))
        else:
            self.resize_range = (int(resize or size),) * 2
        self.resize = self.resize_range[1]
        if self.resize_range[0] < self.size:
            raise ValueError(f"resize ({self.resize_range[0]}) must be >= size ({self.size})")
        self.random_crop, self.hflip = bool(random_crop), bool(hflip)
        self.classes = sorted({p.parent.name for p in self.paths})
        self._cache = [self._load(p) for p in self.paths] if preload else None

    def label(self, index: int) -> int:
        """Class index of item ``index`` from its parent folder name (ImageNet layout)."""
        return self.classes.index(self.paths[index].parent.name)

    def _load(self, path: Path) -> torch.Tensor:
        from .offline import load_photo
        from PIL import Image

        if not path.exists():  # a scikit-image photo name
            full = load_photo(str(path), size=None)
            h, w = full.shape[-2:]
        else:
            with Image.open(path) as im:
                w, h = im.size
        scale = self.resize / min(w, h)
        size = (max(self.resize, round(h * scale)), max(self.resize, round(w * scale)))
        return load_photo(path if path.exists() else str(path), size=size)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """Item ``index``; augmented with ``gen`` when given, centre crop otherwise."""
        img = self._cache[index] if self._cache is not None else self._load(self.paths[index])
        lo, hi = self.resize_range
        if lo != hi:
            side = lo if gen is None else int(torch.randint(lo, hi + 1, (1,), generator=gen))
            if side != min(img.shape[-2:]):
                scale = side / min(img.shape[-2:])
                hw = (max(side, round(img.shape[-2] * scale)), max(side, round(img.shape[-1] * scale)))
                img = torch.nn.functional.interpolate(img[None], size=hw, mode="bilinear", antialias=True,
                                                      align_corners=False)[0].clamp(0.0, 1.0)
        if gen is None:
            return center_crop(img, self.size).contiguous()
        img = random_crop(img, self.size, gen) if self.random_crop else center_crop(img, self.size)
        if self.hflip:
            img = random_hflip(img, gen)
        return img.contiguous()

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, seed = item
            return self.get(int(index), generator(seed))
        return self.get(int(item))
