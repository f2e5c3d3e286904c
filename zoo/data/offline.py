"""Real data available with no network (DESIGN.md section 7).

Photos: scikit-image's bundled images, Debian ``mate-backgrounds`` and the photographs among
Debian ``plasma-workspace-wallpapers`` (extra training photos only); speech: Debian
``alsa-utils`` clips and the ``fillets-ng`` recorded utterances (Dutch ``nl``, English ``en``).
Every function raises ``FileNotFoundError`` naming the Debian package when a corpus is absent.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

__all__ = ["photo_paths", "wallpaper_photo_paths", "skimage_photos", "load_photo", "photos", "speech_paths", "load_speech",
           "split_paths", "photo_split", "speech_split", "MATE_DIR", "PLASMA_DIR", "ALSA_DIR",
           "FILLETS_DIR", "PLASMA_PHOTOS"]

MATE_DIR = Path("/usr/share/backgrounds/mate/nature")
PLASMA_DIR = Path("/usr/share/wallpapers")
ALSA_DIR = Path("/usr/share/sounds/alsa")
FILLETS_DIR = Path("/usr/share/games/fillets-ng/sound")

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "retina", "motorcycle_left", "cat")


#: the photographs among the plasma-workspace-wallpapers (the other wallpapers are renders and drawings);
#: each is read from its largest size, ``<name>/contents/images/2560x1600.jpg``. (gnome-backgrounds 43 holds
#: no photographs: its wallpapers are all rendered or drawn.)
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "Kite", "OneStandsOut", "Path", "summer_1am")


def _missing(what: str, package: str, where: Path) -> FileNotFoundError:
    return FileNotFoundError(f"no {what} under {where}: install the Debian package '{package}' "
                             f"(apt-get install {package}; `make test` does it)")


def photo_paths() -> list[Path]:
    """Sorted JPEG photos of ``mate-backgrounds`` (12 nature photos, ~1-4 Mpx)."""
    paths = sorted(MATE_DIR.glob("*.jpg"))
    if not paths:
        raise _missing("photos", "mate-backgrounds", MATE_DIR)
    return paths


def wallpaper_photo_paths() -> list[Path]:
    """The 11 photographs of ``plasma-workspace-wallpapers`` (2560x1600 JPEG), in :data:`PLASMA_PHOTOS` order."""
    paths = [PLASMA_DIR / name / "contents" / "images" / "2560x1600.jpg" for name in PLASMA_PHOTOS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _missing(f"wallpaper photographs ({', '.join(p.parts[4] for p in missing)})",
                       "plasma-workspace-wallpapers", PLASMA_DIR)
    return paths


def skimage_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled RGB photos as uint8 ``[H, W, 3]`` arrays (by name)."""
    from skimage import data

    out = {}
    for name in SKIMAGE_PHOTOS:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            img = fn()
        except Exception:  # some images are fetched by pooch on demand: not available offline
            continue
        if img.ndim == 3 and img.shape[-1] >= 3:
            out[name] = np.ascontiguousarray(img[..., :3])
    return out


def load_photo(source: str | Path, size: int | tuple[int, int] | None = 256, crop: str = "center") -> torch.Tensor:
    """One photo as float ``[3, H, W]`` in [0, 1]: resize the short side, then centre crop.

    source: a file path, or the name of a scikit-image photo (``"astronaut"``).
    size: output side (int) or (H, W); None keeps the original size.
    """
    from PIL import Image

    from ..image_file import pil_to_tensor, read_image, resize_and_crop

    if isinstance(source, str) and not Path(source).exists():
        imgs = skimage_photos()
        if source not in imgs:
            raise FileNotFoundError(f"{source!r} is neither a file nor a scikit-image photo ({sorted(imgs)})")
        pil = Image.fromarray(imgs[source])
    else:
        if not Path(source).is_file():
            raise FileNotFoundError(f"image file not found: {source}")
        pil, _, _ = read_image(source)
    if size is not None:
        pil = resize_and_crop(pil, (size, size) if isinstance(size, int) else tuple(size))
    return pil_to_tensor(pil)


def photos(size: int = 256, limit: int | None = None, include_skimage: bool = True) -> torch.Tensor:
    """A batch ``[N, 3, size, size]`` of real photos (mate-backgrounds, then scikit-image)."""
    items = [load_photo(p, size) for p in photo_paths()[:limit]]
    if include_skimage and (limit is None or len(items) < limit):
        for name in skimage_photos():
            if limit is not None and len(items) >= limit:
                break
            items.append(load_photo(name, size))
    return torch.stack(items)


def speech_paths(corpus: str = "nl") -> list[Path]:
    """Sorted speech files: ``"alsa"`` (9 wav clips, 48 kHz), ``"nl"`` / ``"en"`` (fillets-ng ogg)."""
    if corpus == "alsa":
        paths = sorted(ALSA_DIR.glob("*.wav"))
        if not paths:
            raise _missing("alsa-utils clips", "alsa-utils", ALSA_DIR)
        return paths
    if corpus not in ("nl", "en"):
        raise ValueError(f"speech corpus must be 'alsa', 'nl' or 'en', got {corpus!r}")
    paths = sorted(FILLETS_DIR.glob(f"**/{corpus}/*.ogg"))
    if not paths:
        raise _missing(f"fillets-ng {corpus} utterances", "fillets-ng-data-nl" if corpus == "nl"
                       else "fillets-ng-data", FILLETS_DIR)
    return paths


def load_speech(path: str | Path, sample_rate: int, max_seconds: float | None = None) -> torch.Tensor:
    """One clip as mono float ``[T]`` in [-1, 1] at ``sample_rate`` (optionally truncated)."""
    from ..audio import load_audio

    wave, _ = load_audio(path, sample_rate=sample_rate)
    wave = wave[0]
    if max_seconds is not None:
        wave = wave[: int(max_seconds * sample_rate)]
    return wave.clamp(-1, 1)


def split_paths(paths: list[Path], holdout_fraction: float = 0.1, salt: str = "zoo") -> tuple[list[Path], list[Path]]:
    """Deterministic train / held-out split by a hash of the file name (stable across machines)."""
    train, held = [], []
    for p in paths:
        h = int(hashlib.sha256(f"{salt}:{Path(p).parent.name}/{Path(p).name}".encode()).hexdigest()[:8], 16)
        (held if h / 0xFFFFFFFF < holdout_fraction else train).append(p)
    return train, held


def photo_split(wallpapers: bool = False) -> tuple[list[str], list[str]]:
    """Train / held-out photo sources used by the demo tokenizers and their recipes.

    Sources are mate-backgrounds file paths and scikit-image photo names (both accepted by
    :func:`load_photo`); every 4th source in sorted order (starting with the 4th) is held out.
    wallpapers: also train on the plasma-workspace-wallpapers photographs
    (:func:`wallpaper_photo_paths`); the held-out sources stay the same.
    """
    sources = [str(p) for p in photo_paths()] + sorted(skimage_photos())
    held = sources[3::4]
    train = [s for s in sources if s not in held]
    if wallpapers:
        train += [str(p) for p in wallpaper_photo_paths()]
    return train, held


def speech_split(corpora: tuple[str, ...] = ("nl", "en"), holdout_fraction: float = 0.05
                 ) -> tuple[list[Path], list[Path]]:
    """Train / held-out fillets-ng utterances (hash split, see :func:`split_paths`)."""
    paths = [p for c in corpora for p in speech_paths(c)]
    return split_paths(paths, holdout_fraction=holdout_fraction)
