"""Modality objects: what a tokenizer takes, how files are read into it and written back.

``Tokenizer.modality`` is one of :data:`IMAGE`, :data:`VIDEO`, :data:`AUDIO`: a ``str`` equal to
``"image"`` / ``"video"`` / ``"audio"`` (so comparisons, dict keys and JSON keep working;
``str(tok.modality)`` is a plain ``str`` for strict serialisers such as ``yaml.safe_dump`` or
``torch.load(weights_only=True)``) that also owns

- input checking (``validate``: ``zoo.validate``),
- the tokenizer's input protocol (``protocol(tok)``: a picklable :class:`InputProtocol`),
- reading a file into one item that follows the protocol, with a note saying what was done
  (``load``: images ``[3, H, W]`` / video ``[3, T, H, W]`` in [0, 1], audio ``[T]`` in [-1, 1]),
- writing a decoded signal to a file (``write``).

The protocol: images of any PIL mode become RGB, are resized on the short side (bicubic) and
centre-cropped to the tokenizer's ``input_size``; a tokenizer that takes any size whose sides
divide by ``input_multiple`` keeps the file's size, centre-cropped to the nearest multiple
(unless a size is asked for). Video takes ``input_size[0]`` frames from the middle of the file,
then the image rule per frame (bilinear, antialiased). Audio is mixed to mono (channel mean),
resampled to ``tok.sample_rate`` with ``torchaudio.functional.resample`` defaults and clipped to
[-1, 1]. ``strict=True`` refuses any file that does not already match.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import torch

from . import validate as _validate

__all__ = ["InputProtocol", "Modality", "Image", "Video", "Audio", "IMAGE", "VIDEO", "AUDIO", "modality_named"]

Source = str | os.PathLike | IO[bytes]


@dataclass(frozen=True)
class InputProtocol:
    """How files are brought to what one tokenizer takes (no model inside: DataLoader workers get it).

    modality: ``"image"`` | ``"video"`` | ``"audio"``.
    size: ``(H, W)`` every image / video frame is resized and centre-cropped to; None keeps the
        file's size (cropped to sides divisible by ``multiple`` when that is set).
    frames: video clip length T (frames taken from the middle of the file).
    sample_rate: audio rate in Hz.
    strict: raise ``ValueError`` for a file that does not already match instead of converting it.
    """

    modality: str
    size: tuple[int, int] | None = None
    multiple: int | None = None
    frames: int | None = None
    sample_rate: int | None = None
    strict: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON description (for manifests), with the methods spelled out."""
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}
        d["method"] = _METHODS[self.modality]
        return d


_METHODS = {
    "image": "PIL RGB (16-bit scaled to 8, alpha over white, EXIF orientation applied); short-side bicubic resize "
             "(JPEG DCT draft down to >= 2x the target first) + centre crop to size",
    "video": "PyAV RGB frames, centre clip of `frames` frames; short-side bilinear antialiased resize + centre crop",
    "audio": "soundfile float32; mono = channel mean; torchaudio.functional.resample defaults "
             "(sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99); clipped to [-1, 1]",
}


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = (int(v) for v in size)
    return (h, w)


def _name(source: Source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", "<stream>"))


def _spatial_target(tok, size, fixed: tuple[int, ...] | None) -> tuple[tuple[int, int] | None, int | None]:
    """(target (H, W) or None, multiple) for a tokenizer whose fixed spatial size is ``fixed``."""
    multiple = getattr(tok, "input_multiple", None)
    if size is not None:
        target = _pair(size)
        if multiple is None and fixed is not None and target != tuple(fixed):
            raise ValueError(f"{type(tok).__name__} takes {fixed[1]}x{fixed[0]} inputs only; size {target[1]}x"
                             f"{target[0]} is not accepted")
        if multiple is not None and (target[0] % multiple or target[1] % multiple):
            raise ValueError(f"{type(tok).__name__} needs sides divisible by {multiple}, got size {target}")
        return target, multiple
    if multiple is None and fixed is not None:
        return tuple(int(v) for v in fixed), None
    return None, multiple


def _crop_to_multiple(h: int, w: int, m: int | None) -> tuple[int, int]:
    return (h, w) if not m else (h - h % m, w - w % m)


class Modality(str):
    """Base of the modality objects (a ``str`` subclass equal to its name)."""

    name = ""
    #: file suffixes (lower case) searched for by ``zoo tokenize``
    extensions: tuple[str, ...] = ()

    def __new__(cls):
        return super().__new__(cls, cls.name)

    def __reduce__(self):  # unpickles (DataLoader workers, spawn) to the module's object
        return (modality_named, (self.name,))

    def validate(self, x: torch.Tensor) -> torch.Tensor:
        """Check and normalise an input batch (``zoo.validate``); raises ``ValueError`` / ``TypeError``."""
        raise NotImplementedError

    def protocol(self, tok, size=None, strict: bool = False) -> InputProtocol:
        """The input protocol of tokenizer ``tok`` (``size`` overrides the spatial size where allowed)."""
        raise NotImplementedError

    def load(self, source: Source, protocol) -> tuple[torch.Tensor, str]:
        """Read one file (path or binary file object) and apply ``protocol`` (an
        :class:`InputProtocol` or a tokenizer) -> ``(item without batch dimension, note)``."""
        raise NotImplementedError

    def write(self, path: str | os.PathLike, x: torch.Tensor, tok) -> Path:
        """Write a decoded batch of one (``[1, ...]``) to ``path``."""
        raise NotImplementedError

    def matches(self, path: str | os.PathLike) -> bool:
        """Whether the file name has one of this modality's suffixes."""
        return Path(path).suffix.lower() in self.extensions

    def _as_protocol(self, protocol) -> InputProtocol:
        return protocol if isinstance(protocol, InputProtocol) else self.protocol(protocol)


class Image(Modality):
    """Images: float ``[B, 3, H, W]`` in [0, 1]."""

    name = "image"
    extensions = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")

    def validate(self, x):
        return _validate.validate_image(x)

    def protocol(self, tok, size=None, strict=False):
        target, multiple = _spatial_target(tok, size, getattr(tok, "input_size", None))
        return InputProtocol("image", size=target, multiple=multiple, strict=bool(strict))

    def load(self, source, protocol):
        from .image_file import pil_to_tensor, read_image, resize_and_crop, resized_size

        p = self._as_protocol(protocol)
        pil, notes, (w0, h0) = read_image(source, draft_for=None if p.strict else p.size)
        want = p.size or _crop_to_multiple(pil.height, pil.width, p.multiple)
        if (h0, w0) != want:
            if p.strict:
                raise ValueError(f"{_name(source)}: image is {w0}x{h0} but the tokenizer takes {want[1]}x{want[0]}"
                                 + ("" if p.size else f" (sides divisible by {p.multiple})")
                                 + "; without strict input checking it is resized and centre-cropped")
            if p.size is not None:
                rw, rh = resized_size(pil.width, pil.height, want)
                pil = resize_and_crop(pil, want)
                notes.append(f"resized {w0}x{h0} -> {rw}x{rh}" + (f", centre-cropped to {want[1]}x{want[0]}"
                                                                  if (rh, rw) != want else ""))
            else:
                left, top = (pil.width - want[1]) // 2, (pil.height - want[0]) // 2
                pil = pil.crop((left, top, left + want[1], top + want[0]))
                notes.append(f"centre-cropped {w0}x{h0} -> {want[1]}x{want[0]} (sides divisible by {p.multiple})")
        return pil_to_tensor(pil), "; ".join(notes) or f"{w0}x{h0} RGB, used as is"

    def write(self, path, x, tok):
        from torchvision.utils import save_image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(x.float().clamp(0, 1), str(path))
        return path


class Video(Modality):
    """Video: float ``[B, 3, T, H, W]`` in [0, 1]."""

    name = "video"
    extensions = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v")

    def validate(self, x):
        return _validate.validate_video(x)

    def protocol(self, tok, size=None, strict=False):
        thw = getattr(tok, "input_size", None)
        if thw is None:
            raise ValueError(f"{type(tok).__name__} declares no input_size (T, H, W)")
        target, multiple = _spatial_target(tok, size, tuple(thw)[1:])
        return InputProtocol("video", size=target, multiple=multiple, frames=int(thw[0]), strict=bool(strict))

    def load(self, source, protocol):
        import torch.nn.functional as F

        from .data.video import read_video, sample_frame_indices
        from .image_file import resized_size

        p = self._as_protocol(protocol)
        video = read_video(source)                       # uint8 [T, H, W, 3]
        t0, h0, w0 = video.shape[:3]
        want = p.size or _crop_to_multiple(h0, w0, p.multiple)
        if p.strict and (t0 != p.frames or (h0, w0) != want):
            raise ValueError(f"{_name(source)}: clip is {t0}x{w0}x{h0} (frames x W x H) but the tokenizer takes "
                             f"{p.frames}x{want[1]}x{want[0]}; without strict input checking frames are sampled, "
                             "resized and centre-cropped")
        notes = []
        if t0 != p.frames:
            idx = sample_frame_indices(t0, p.frames)
            video = video[idx]
            notes.append(f"took {p.frames} middle frames of {t0}" + (" (last frame repeated)" if t0 < p.frames else ""))
        clip = video.permute(0, 3, 1, 2).float().div(255.0)   # [T, 3, H, W]
        if (h0, w0) != want:
            if p.size is not None:
                rw, rh = resized_size(w0, h0, want)
                if (rh, rw) != (h0, w0):
                    clip = F.interpolate(clip, size=(rh, rw), mode="bilinear", antialias=True,
                                         align_corners=False).clamp(0, 1)
                notes.append(f"resized {w0}x{h0} -> {rw}x{rh}" + (f", centre-cropped to {want[1]}x{want[0]}"
                                                                  if (rh, rw) != want else ""))
            else:
                rh, rw = h0, w0
                notes.append(f"centre-cropped {w0}x{h0} -> {want[1]}x{want[0]} (sides divisible by {p.multiple})")
            top, left = (rh - want[0]) // 2, (rw - want[1]) // 2
            clip = clip[..., top:top + want[0], left:left + want[1]]
        return clip.permute(1, 0, 2, 3).contiguous(), "; ".join(notes) or f"{t0} frames {w0}x{h0}, used as is"

    def write(self, path, x, tok):
        from .data.video import write_video

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_video(path, x[0].float().cpu(), fps=8)


class Audio(Modality):
    """Audio: mono float ``[B, T]`` (or ``[B, 1, T]``) in [-1, 1] at ``tok.sample_rate``."""

    name = "audio"
    extensions = (".wav", ".flac", ".ogg", ".mp3", ".opus")

    def validate(self, x):
        return _validate.validate_audio(x)

    def protocol(self, tok, size=None, strict=False):
        if size is not None:
            raise ValueError("audio has no size to choose (it is resampled to the tokenizer's rate)")
        return InputProtocol("audio", sample_rate=int(tok.sample_rate), strict=bool(strict))

    def load(self, source, protocol):
        from .audio import read_audio, resample, to_mono

        p = self._as_protocol(protocol)
        wave, rate = read_audio(source)                  # [C, T]
        channels = wave.shape[0]
        if p.strict and (channels != 1 or rate != p.sample_rate):
            raise ValueError(f"{_name(source)}: audio has {channels} channel(s) at {rate} Hz but the tokenizer takes "
                             f"mono at {p.sample_rate} Hz; without strict input checking it is mixed down and "
                             "resampled")
        notes = []
        if channels > 1:
            wave = to_mono(wave)
            notes.append(f"{channels} channels -> mono (channel mean)")
        if rate != p.sample_rate:
            wave = resample(wave, rate, p.sample_rate)
            notes.append(f"resampled {rate} -> {p.sample_rate} Hz")
        wave = wave[0]
        if not p.strict and bool((wave.abs() > 1).any()):
            wave = wave.clamp(-1, 1)
            notes.append("clipped to [-1, 1]")
        seconds = wave.shape[-1] / p.sample_rate
        note = "; ".join(notes + [f"{seconds:.2f} s"]) if notes else f"mono {rate} Hz, {seconds:.2f} s, used as is"
        return wave, note

    def write(self, path, x, tok):
        from .audio import save_audio

        return save_audio(path, x.reshape(-1), tok.sample_rate)


IMAGE, VIDEO, AUDIO = Image(), Video(), Audio()
_BY_NAME = {m.name: m for m in (IMAGE, VIDEO, AUDIO)}


def modality_named(name: str) -> Modality:
    """The modality object for ``"image"`` / ``"video"`` / ``"audio"``."""
    if name not in _BY_NAME:
        raise ValueError(f"modality must be one of {sorted(_BY_NAME)}, got {name!r}")
    return _BY_NAME[name]
