"""Classic image codecs as baselines at equal bits: bicubic thumbnails, JPEG and WebP (PIL encoders).

Every function takes images float ``[N, 3, H, W]`` in [0, 1] (rounded to 8-bit first, as the
reports do) and returns a :class:`CodedImages`: the decoded images ``[N, 3, H, W]`` in [0, 1] and
the bits each image costs.

- :func:`thumbnail`: bicubic downsampling to ``side x side`` (PIL, antialiased), stored as 8-bit
  RGB (``side * side * 3 * 8`` bits, no header counted: the side is fixed by the protocol), and
  bicubic upsampling back.
- :func:`jpeg`, :func:`webp`: the whole file PIL writes (headers included), at the lowest quality
  setting by default: the smallest file the encoder produces. A JPEG file cannot get near 1,000
  bits (its quantisation and Huffman tables alone take ~600 bytes), and the reports say so.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CodedImages", "thumbnail", "thumbnail_bits", "bracketing_sides", "jpeg", "webp", "to_uint8"]

#: bits of one thumbnail pixel: 3 channels x 8 bits
BITS_PER_PIXEL = 24


@dataclass
class CodedImages:
    """Decoded images ``images`` ``[N, 3, H, W]`` in [0, 1] and ``bits`` ``[N]`` (int bits per image)."""

    images: torch.Tensor
    bits: list[int]

    @property
    def mean_bits(self) -> float:
        return float(np.mean(self.bits))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images ``[N, 3, H, W]`` float in [0, 1] (or uint8) -> uint8 ``[N, H, W, 3]``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be a tensor [N, 3, H, W], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.permute(0, 2, 3, 1).cpu().numpy()
    if not x.is_floating_point():
        raise TypeError(f"images must be float in [0, 1] or uint8, got {x.dtype}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"images must lie in [0, 1], got values in [{lo:.3f}, {hi:.3f}]")
    return x.detach().float().cpu().mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def thumbnail_bits(side: int) -> int:
    """Bits of a ``side x side`` 8-bit RGB thumbnail."""
    return side * side * BITS_PER_PIXEL


def bracketing_sides(bits: float) -> tuple[int, int]:
    """The thumbnail sides around a bit budget: the largest whose bits are <= ``bits`` and the next.

    >>> bracketing_sides(1022)  # 6x6 = 864 bits <= 1022 < 7x7 = 1176 bits
    (6, 7)
    """
    if bits < BITS_PER_PIXEL:
        raise ValueError(f"a 1x1 thumbnail already takes {BITS_PER_PIXEL} bits, more than {bits}")
    side = math.isqrt(int(bits // BITS_PER_PIXEL))
    return side, side + 1


def thumbnail(x: torch.Tensor, side: int) -> CodedImages:
    """Bicubic ``side x side`` thumbnails (PIL, antialiased), 8-bit, upsampled back (PIL bicubic)."""
    from PIL import Image

    if int(side) < 1:
        raise ValueError(f"thumbnail side must be >= 1, got {side}")
    u8 = to_uint8(x)
    h, w = u8.shape[1:3]
    out = [np.asarray(Image.fromarray(im).resize((side, side), Image.BICUBIC).resize((w, h), Image.BICUBIC))
           for im in u8]
    return CodedImages(_to_tensor(out), [thumbnail_bits(side)] * len(out))


def _pil_codec(x: torch.Tensor, fmt: str, **save_kwargs) -> CodedImages:
    from PIL import Image

    images, bits = [], []
    for im in to_uint8(x):
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format=fmt, **save_kwargs)
        bits.append(8 * buf.tell())
        buf.seek(0)
        with Image.open(buf) as decoded:
            images.append(np.asarray(decoded.convert("RGB")))
    return CodedImages(_to_tensor(images), bits)


def jpeg(x: torch.Tensor, quality: int = 1) -> CodedImages:
    """Baseline JPEG (PIL / libjpeg, 4:2:0 chroma, optimised Huffman tables); bits = whole file."""
    if not 1 <= int(quality) <= 95:
        raise ValueError(f"JPEG quality must be in [1, 95], got {quality}")
    return _pil_codec(x, "JPEG", quality=int(quality), optimize=True, subsampling=2)


def webp(x: torch.Tensor, quality: int = 0) -> CodedImages:
    """Lossy WebP (PIL / libwebp, slowest and best method 6); bits = whole file (RIFF header included)."""
    if not 0 <= int(quality) <= 100:
        raise ValueError(f"WebP quality must be in [0, 100], got {quality}")
    return _pil_codec(x, "WEBP", quality=int(quality), method=6, lossless=False)
