"""Video datasets: real video folders (UCF-101 layout) and clips made from real photos.

Clips are float ``[3, T, size, size]`` in [0, 1]. As for images and audio, ``dataset[i]``
is deterministic (centre clip, centre crop) and ``dataset[(i, seed)]`` the augmented view for
that seed (random clip start, random crop, optional flip; see ``zoo.train.sampling``).

- :class:`VideoFolder`: ``root/<class>/<video>.avi|.mp4|...`` decoded with PyAV; ``T``
  frames every ``frame_stride`` frames; short side resized to ``resize``; square crop.
- :class:`PhotoClips`: pans and zooms over the offline photos (``zoo.data.offline``): real
  image content with known, smooth motion, for tests and CPU benchmarks without a video corpus.
- :func:`write_video` encodes a clip with PyAV (mp4/H.264, avi/MPEG-4, ...);
  :func:`read_video` decodes one to uint8 ``[T, H, W, 3]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .transforms import generator

__all__ = ["VIDEO_EXTENSIONS", "list_videos", "read_video", "write_video", "sample_frame_indices",
           "resize_short_side", "photo_clip", "VideoFolder", "PhotoClips", "video_dataset"]

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v")
OFFLINE_CLIPS = "offline:photo_clips"


def list_videos(root: str | os.PathLike) -> list[Path]:
    """Sorted video files under ``root`` (recursive; UCF-101: ``root/<class>/*.avi``)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) under {root}")
    return paths


def read_video(path, max_frames: int | None = None) -> torch.Tensor:
    """Decode the first video stream of ``path`` (a path or a binary file object) -> uint8
    ``[T, H, W, 3]`` (RGB)."""
    import av

    frames = []
    with av.open(str(path) if isinstance(path, (str, os.PathLike)) else path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        # slice threading only: with frame threading ("AUTO" / "FRAME"), leaving the decode loop
        # early (max_frames) can deadlock FFmpeg's frame-thread teardown when the codec context is
        # freed (PyAV issues 1849 / 1861; seen here as a hang in avcodec_free_context)
        stream.thread_type = "SLICE"
        for frame in container.decode(stream):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: no frames could be decoded")
    return torch.stack(frames)


def write_video(path: str | os.PathLike, clip: torch.Tensor, fps: int = 8, codec: str | None = None,
                crf: int = 18) -> Path:
    """Encode ``clip`` (float ``[3, T, H, W]`` in [0, 1] or uint8 ``[T, H, W, 3]``) with PyAV.

    codec: default ``libx264`` (yuv420p, ``crf`` quality) for .mp4/.mkv/.mov, ``mpeg4`` for .avi.
    H and W must be even for yuv420p.
    """
    import av

    path = Path(path)
    if clip.dtype != torch.uint8:
        if clip.dim() != 4 or clip.shape[0] != 3:
            raise ValueError(f"expected a float clip [3, T, H, W], got shape {tuple(clip.shape)}")
        clip = (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0)
    t, h, w, c = clip.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"need RGB frames of even size, got [T, H, W, C] = {tuple(clip.shape)}")
    codec = codec or ("mpeg4" if path.suffix.lower() == ".avi" else "libx264")
    frames = clip.cpu().numpy()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf)}
        else:
            stream.bit_rate = 4_000_000
        for arr in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        container.mux(stream.encode())
    return path


def sample_frame_indices(num_frames: int, frames: int, stride: int = 1,
                         gen: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``frames`` frames ``stride`` apart in a ``num_frames`` video: centred when
    ``gen`` is None, else a uniformly random start. Videos too short for the stride use the
    largest stride that fits, and repeat their last frame when even stride 1 does not."""
    if num_frames < 1 or frames < 1:
        raise ValueError(f"need positive frame counts, got video {num_frames}, clip {frames}")
    stride = max(1, min(stride, (num_frames - 1) // max(frames - 1, 1))) if frames > 1 else 1
    span = (frames - 1) * stride + 1
    slack = max(num_frames - span, 0)
    start = slack // 2 if gen is None else int(torch.randint(slack + 1, (1,), generator=gen))
    return (start + torch.arange(frames) * stride).clamp(max=num_frames - 1)


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """float ``[T, 3, H, W]`` -> short side ``size`` (bilinear, antialiased)."""
    h, w = frames.shape[-2:]
    scale = size / min(h, w)
    out = (max(size, round(h * scale)), max(size, round(w * scale)))
    if out == (h, w):
        return frames
    return F.interpolate(frames, size=out, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _crop(frames: torch.Tensor, size: int, gen: torch.Generator | None) -> torch.Tensor:
    h, w = frames.shape[-2:]
    if gen is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
    return frames[..., top:top + size, left:left + size]


class VideoFolder(torch.utils.data.Dataset):
    """paths: video files (see :func:`list_videos`); frames: clip length T; size: square crop;
    frame_stride: frames between sampled frames; resize: short side before cropping (>= size);
    random_crop / hflip: augmentations of seeded items. Labels come from parent folder names."""

    def __init__(self, paths: list[str | os.PathLike], frames: int = 16, size: int = 128, frame_stride: int = 1,
                 resize: int | None = None, random_crop: bool = True, hflip: bool = False):
        if not paths:
            raise ValueError("VideoFolder needs at least one video path")
        self.paths = [Path(p) for p in paths]
        self.frames, self.size, self.frame_stride = int(frames), int(size), int(frame_stride)
        self.resize = int(resize or size)
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be >= size ({self.size})")
        self.random_crop, self.hflip = bool(random_crop), bool(hflip)
        self.classes = sorted({p.parent.name for p in self.paths})

    def label(self, index: int) -> int:
        """Class index of item ``index`` (UCF-101: the action folder)."""
        return self.classes.index(self.paths[index].parent.name)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """Clip ``[3, T, size, size]`` of video ``index``; augmented with ``gen`` when given."""
        video = read_video(self.paths[index])
        idx = sample_frame_indices(video.shape[0], self.frames, self.frame_stride, gen)
        clip = video[idx].permute(0, 3, 1, 2).float().div(255.0)
        clip = _crop(resize_short_side(clip, self.resize), self.size, gen if self.random_crop else None)
        if gen is not None and self.hflip and float(torch.rand((), generator=gen)) < 0.5:
            clip = clip.flip(-1)
        return clip.permute(1, 0, 2, 3).contiguous()

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, seed = item
            return self.get(int(index), generator(seed))
        return self.get(int(item))


def photo_clip(photo: torch.Tensor, frames: int, size: int, start: tuple[float, float, float],
               end: tuple[float, float, float]) -> torch.Tensor:
    """A virtual camera moving over ``photo`` ``[3, H, W]`` -> clip ``[3, frames, size, size]``.

    start / end: ``(cx, cy, scale)``: window centre in [-1, 1] photo coordinates and the
    window's side as a fraction of the photo's short side; interpolated linearly over time
    (a pan when the centre moves, a zoom when the scale changes). Windows must stay inside.
    """
    h, w = photo.shape[-2:]
    s = torch.linspace(0, 1, frames, dtype=torch.float32)[:, None]
    p = torch.tensor(start, dtype=torch.float32) * (1 - s) + torch.tensor(end, dtype=torch.float32) * s
    cx, cy, scale = p.unbind(1)
    sx, sy = scale * min(h, w) / w, scale * min(h, w) / h
    if bool(((cx.abs() + sx) > 1 + 1e-6).any() | ((cy.abs() + sy) > 1 + 1e-6).any()):
        raise ValueError(f"camera window leaves the photo: start {start}, end {end}")
    theta = torch.zeros(frames, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, sy, cy
    grid = F.affine_grid(theta, [frames, 3, size, size], align_corners=False)
    src = photo[None].float().expand(frames, -1, -1, -1)
    # downscale once so that bilinear sampling does not alias (window ~ scale * short side -> size)
    factor = size / (float(scale.min()) * min(h, w))
    if factor < 0.5:
        src = F.interpolate(src[:1], scale_factor=factor * 2, mode="bilinear", antialias=True,
                            align_corners=False).expand(frames, -1, -1, -1)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp(0, 1).permute(1, 0, 2, 3).contiguous()


def _motion(gen: torch.Generator, kind: str, speed: float) -> tuple[tuple, tuple]:
    u = torch.rand(4, generator=gen).tolist()
    if kind == "zoom":
        s0, s1 = 0.55 + 0.35 * u[0], 0.55 + 0.35 * u[0] - speed * 0.5
        if u[1] < 0.5:
            s0, s1 = s1, s0
        room = 1 - max(s0, s1)
        c = ((2 * u[2] - 1) * room * 0.8, (2 * u[3] - 1) * room * 0.8)
        return (*c, s0), (*c, s1)
    scale = 0.45 + 0.25 * u[0]
    room = 1 - scale
    angle = 2 * torch.pi * u[1]
    dx, dy = speed * room * float(torch.cos(torch.tensor(angle))), speed * room * float(torch.sin(torch.tensor(angle)))
    cx, cy = (2 * u[2] - 1) * (room - abs(dx)), (2 * u[3] - 1) * (room - abs(dy))
    return (cx - dx, cy - dy, scale), (cx + dx, cy + dy, scale)


class PhotoClips(torch.utils.data.Dataset):
    """Clips ``[3, frames, size, size]`` panning / zooming over real offline photos.

    photos: ``[N, 3, S, S]`` source photos (default: ``zoo.data.offline.photos(2*size)``);
    num_clips: dataset length (default ``4 N``); motions: kinds cycled over items;
    speed: in (0, 1], fraction of the available room covered by the motion.
    Item ``i`` uses photo ``i % N``; its motion is fixed by ``i`` (or by the seed when seeded).
    """

    def __init__(self, frames: int = 16, size: int = 128, photos: torch.Tensor | None = None,
                 num_clips: int | None = None, motions: tuple[str, ...] = ("pan", "zoom"), speed: float = 0.6):
        if photos is None:
            from .offline import photos as offline_photos

            photos = offline_photos(2 * size)
        if photos.dim() != 4 or photos.shape[1] != 3:
            raise ValueError(f"photos must be [N, 3, H, W], got {tuple(photos.shape)}")
        bad = [m for m in motions if m not in ("pan", "zoom")]
        if bad or not motions:
            raise ValueError(f"motions must be 'pan' and/or 'zoom', got {motions}")
        if not 0 < speed <= 1:
            raise ValueError(f"speed must lie in (0, 1], got {speed}")
        self.photos, self.frames, self.size = photos, int(frames), int(size)
        self.motions, self.speed = tuple(motions), float(speed)
        self.num_clips = int(num_clips or 4 * len(photos))

    def __len__(self) -> int:
        return self.num_clips

    def get(self, index: int, gen: torch.Generator | None = None) -> torch.Tensor:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range ({self.num_clips})")
        kind = self.motions[index % len(self.motions)]
        start, end = _motion(gen if gen is not None else generator(index), kind, self.speed)
        return photo_clip(self.photos[index % len(self.photos)], self.frames, self.size, start, end)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, seed = item
            return self.get(int(index), generator(seed))
        return self.get(int(item))


def video_dataset(root: str | os.PathLike, frames: int = 16, size: int = 128, **kwargs) -> torch.utils.data.Dataset:
    """``root == "offline:photo_clips"`` -> :class:`PhotoClips` (kwargs: num_clips, motions, speed);
    otherwise :class:`VideoFolder` over :func:`list_videos` (kwargs: frame_stride, resize, random_crop, hflip)."""
    if str(root) == OFFLINE_CLIPS:
        return PhotoClips(frames=frames, size=size, **kwargs)
    return VideoFolder(list_videos(root), frames=frames, size=size, **kwargs)
