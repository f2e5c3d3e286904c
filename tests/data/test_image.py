"""Image folders: flat and ImageNet layout, seeded augmentation, preload, errors."""
import shutil

import pytest
import torch

from zoo.data.image import ImageFolder, list_images
from zoo.data.offline import photo_paths


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet") / "train"
    for i, p in enumerate(photo_paths()[:4]):
        d = root / f"n0000{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, d / f"img{i}.JPEG")
    (root / "n00000" / "notes.txt").write_text("not an image")
    return root


def test_imagenet_layout(imagenet_like):
    paths = list_images(imagenet_like)
    assert len(paths) == 4 and all(p.suffix == ".JPEG" for p in paths)
    ds = ImageFolder(paths, size=48, resize=64, hflip=True)
    assert ds.classes == ["n00000", "n00001"] and [ds.label(i) for i in range(4)] == [0, 0, 1, 1]
    x = ds[0]
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(ds[(1, 5)], ds[(1, 5)])
    assert not torch.equal(ds[(1, 5)], ds[(1, 6)])
    assert torch.equal(ds[2], ds[2])


def test_offline_photos_and_preload():
    ds = ImageFolder(list_images("offline:photos")[:2], size=32, resize=40, preload=True)
    assert len(ds) == 2 and ds[(0, 1)].shape == (3, 32, 32)
    lazy = ImageFolder(list_images("offline:photos")[:2], size=32, resize=40)
    assert torch.allclose(ds[1], lazy[1])


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")
    with pytest.raises(ValueError, match="resize"):
        ImageFolder(photo_paths()[:1], size=64, resize=32)
    with pytest.raises(ValueError):
        ImageFolder([], size=32)
