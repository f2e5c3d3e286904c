"""Image file reading: any mode PIL reads -> RGB, short-side resize + centre crop.

Pixels are float ``[3, H, W]`` in [0, 1]. Reading follows the EXIF orientation, converts every
PIL mode to 8-bit RGB (grayscale, palette, CMYK, 16-bit grayscale scaled to 8 bits; alpha is
composited over white) and says what it did, so that the CLI and ``zoo tokenize`` can report it.
"""
from __future__ import annotations

import os
from typing import IO

import numpy as np
import torch

__all__ = ["read_image", "resize_and_crop", "resized_size", "pil_to_tensor"]

_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that transpose width and height


def resized_size(width: int, height: int, target: tuple[int, int]) -> tuple[int, int]:
    """``(W, H)`` after scaling ``width x height`` so that it covers ``target = (H, W)`` (the short
    side, relative to the target's aspect, lands on the target; never below it)."""
    th, tw = target
    scale = max(th / height, tw / width)
    return max(tw, round(width * scale)), max(th, round(height * scale))


def _to_rgb(pil) -> tuple[object, str | None]:
    """Any PIL mode -> 8-bit RGB; returns the image and a note (None when it already was RGB)."""
    from PIL import Image

    mode = pil.mode
    if mode == "RGB":
        return pil, None
    if mode in _SIXTEEN_BIT:
        arr = np.asarray(pil).astype(np.int64)
        if arr.min() < 0 or arr.max() > 65535:
            raise ValueError(f"{mode} image values must lie in [0, 65535], got [{arr.min()}, {arr.max()}]")
        pil = Image.fromarray(((arr * 255 + 32767) // 65535).astype(np.uint8), mode="L")
        return pil.convert("RGB"), f"16-bit {mode} -> 8-bit RGB"
    if mode == "F":
        arr = np.asarray(pil, dtype=np.float32)
        if not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
            raise ValueError("float (mode F) images must hold values in [0, 1]")
        return Image.fromarray(np.round(arr * 255).astype(np.uint8), mode="L").convert("RGB"), "float F -> RGB"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info) or mode == "RGBa":
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), f"{mode} -> RGB (alpha over white)"
    return pil.convert("RGB"), f"{mode} -> RGB"


def read_image(source: str | os.PathLike | IO[bytes], draft_for: tuple[int, int] | None = None):
    """Open an image file (path or binary file object) as an 8-bit RGB PIL image.

    draft_for: ``(H, W)`` the image will be resized to cover: JPEGs are then decoded at the
        smallest power-of-two reduction (libjpeg DCT scaling) that keeps every side at least twice
        the resized size, which is several times faster for large photos.
    Returns ``(image, notes, (width, height))``: notes list what was done (mode conversion,
    orientation, draft); the size is the file's, after the EXIF orientation.
    Raises ``ValueError`` for files PIL cannot decode (truncated, not an image, empty).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
    try:
        pil = Image.open(source)
        orientation = pil.getexif().get(0x0112, 1) if hasattr(pil, "getexif") else 1
        size = pil.size
        if draft_for is not None and pil.format == "JPEG":
            w, h = size[::-1] if orientation in _SWAPS_AXES else size
            rw, rh = resized_size(w, h, draft_for)
            want = (2 * rh, 2 * rw) if orientation in _SWAPS_AXES else (2 * rw, 2 * rh)
            pil.draft("RGB", want)
            if pil.size != size:
                notes.append(f"JPEG decoded at 1/{round(size[0] / pil.size[0])} scale")
        pil.load()
        if pil.width == 0 or pil.height == 0:
            raise OSError("image has no pixels")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image {name}: {type(e).__name__}: {e}") from None
    if orientation != 1:
        pil = ImageOps.exif_transpose(pil)
        notes.append(f"EXIF orientation {orientation} applied")
    pil, converted = _to_rgb(pil)
    if converted:
        notes.insert(0, converted)
    return pil, notes, (size[::-1] if orientation in _SWAPS_AXES else size)


def resize_and_crop(pil, size: tuple[int, int]):
    """Resize so that the image covers ``size = (H, W)`` (bicubic, PIL's reducing gap 3), then crop
    its centre to exactly ``size``."""
    from PIL import Image

    h, w = size
    rw, rh = resized_size(pil.width, pil.height, size)
    if (rw, rh) != pil.size:
        pil = pil.resize((rw, rh), Image.BICUBIC, reducing_gap=3.0)
    left, top = (rw - w) // 2, (rh - h) // 2
    if (rw, rh) != (w, h):
        pil = pil.crop((left, top, left + w, top + h))
    return pil


def pil_to_tensor(pil) -> torch.Tensor:
    """8-bit RGB PIL image -> float ``[3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1).float().div(255.0)
