"""Data-dependent init of the demo TiTok's linear transform path (recipe ``model.setup``): PCA of
random-scale crops of the TRAINING photos (:func:`zoo.train.pca_init.pca_init_linear_path_`).

Why: the small ViT learns a global linear code slowly (in 6500 CPU steps the earlier demo stayed
below a 6x6 thumbnail), while the PCA code of the same 1024 bits is already ~2 dB above a 7x7 one
on held-out photos. Starting from it, training only has to learn what a linear code misses.
"""
from __future__ import annotations

import torch

__all__ = ["pca_init"]


def pca_init(model, samples: int = 3000, seed: int = 0, resize: tuple[int, int] = (64, 160)) -> None:
    """PCA-initialise ``model.linear_path`` on ``samples`` seeded random-scale crops (short side in
    ``resize``, horizontal flips) of the training photos of ``photo_split(wallpapers=True)``."""
    from zoo.data.image import ImageFolder
    from zoo.data.offline import photo_split
    from zoo.train.pca_init import pca_init_linear_path_

    train, _ = photo_split(wallpapers=True)
    data = ImageFolder(train, size=model.image_size, resize=list(resize), hflip=True, preload=True)
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randint(len(data), (int(samples),), generator=gen).tolist()
    images = torch.stack([data.get(i, gen) for i in order])
    info = pca_init_linear_path_(model, images)
    print(f"pca_init: {info['directions']} directions, quantized linear code {info['psnr']:.2f} dB "
          f"on {len(images)} training crops", flush=True)
