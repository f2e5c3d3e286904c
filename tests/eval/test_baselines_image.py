"""Classic image baselines (eval.baselines.image) on real held-out photos: bits and PSNR as stated."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from eval.baselines.image import bracketing_sides, jpeg, thumbnail, thumbnail_bits, to_uint8, webp
from eval.image import psnr


@pytest.fixture(scope="module")
def photos():
    from eval.demo import held_out_photos

    return held_out_photos(64)[1]


def test_bracketing_sides():
    assert bracketing_sides(1022) == (6, 7)  # 864 <= 1022 < 1176
    assert bracketing_sides(1176) == (7, 8)  # a budget equal to a thumbnail's bits keeps that thumbnail
    assert bracketing_sides(24) == (1, 2)
    with pytest.raises(ValueError, match="1x1 thumbnail"):
        bracketing_sides(23)


def test_seven_by_seven_thumbnail_bits_and_psnr(photos):
    coded = thumbnail(photos, 7)
    assert coded.bits == [7 * 7 * 3 * 8] * len(photos) == [thumbnail_bits(7)] * len(photos)
    assert coded.images.shape == photos.shape and coded.images.dtype == torch.float32
    # the decoded image is exactly PIL's bicubic 7x7 thumbnail of the 8-bit photo, upsampled bicubically
    first = Image.fromarray(to_uint8(photos[:1])[0])
    expected = np.asarray(first.resize((7, 7), Image.BICUBIC).resize((64, 64), Image.BICUBIC))
    assert np.array_equal(to_uint8(coded.images[:1])[0], expected)
    # PSNR as stated: 8-bit MSE over C, H, W (integer arithmetic: exact up to float64 rounding)
    ref = to_uint8(photos).astype(np.int64)
    mse = ((to_uint8(coded.images).astype(np.int64) - ref) ** 2).reshape(len(ref), -1).mean(1) / 255 ** 2
    assert psnr(coded.images, photos).double().numpy() == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)
    # more pixels, better thumbnail (on every held-out photo: a sanity bound on real images)
    assert (psnr(thumbnail(photos, 16).images, photos) > psnr(coded.images, photos)).all()


@pytest.mark.parametrize("codec, fmt, low, high", [(jpeg, "JPEG", 1, 30), (webp, "WEBP", 0, 30)])
def test_pil_codecs_count_the_whole_file(photos, codec, fmt, low, high):
    smallest, better = codec(photos, low), codec(photos, high)
    for coded in (smallest, better):
        assert coded.images.shape == photos.shape and len(coded.bits) == len(photos)
    # bits are the file PIL writes: re-decode the same bytes and compare sizes
    buf = io.BytesIO()
    options = dict(quality=low, optimize=True, subsampling=2) if fmt == "JPEG" else dict(quality=low, method=6)
    Image.fromarray(to_uint8(photos[:1])[0]).save(buf, format=fmt, **options)
    assert smallest.bits[0] == 8 * len(buf.getvalue())
    assert smallest.mean_bits < better.mean_bits
    assert float(psnr(smallest.images, photos).mean()) < float(psnr(better.images, photos).mean())


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thumbnail(torch.full((1, 3, 8, 8), 1.5), 2)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        jpeg(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="quality"):
        webp(torch.rand(1, 3, 8, 8), quality=101)
    with pytest.raises(ValueError, match="side"):
        thumbnail(torch.rand(1, 3, 8, 8), 0)
