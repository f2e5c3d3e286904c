"""Video data: photo clips (pans / zooms over real photos) and UCF-101-style folders of real
videos encoded here with PyAV."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from zoo.data.video import (PhotoClips, VideoFolder, list_videos, photo_clip, read_video, resize_short_side,
                            sample_frame_indices, video_dataset, write_video)


@pytest.fixture(scope="module")
def clips():
    return PhotoClips(frames=12, size=48)


def psnr(a, b):
    return 10 * math.log10(1.0 / F.mse_loss(a, b).item())


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory, clips):
    """UCF-101 layout: two classes, mp4 (H.264) and avi (MPEG-4) files of real photo clips."""
    root = tmp_path_factory.mktemp("ucf")
    source = PhotoClips(frames=20, size=64, photos=clips.photos)
    written = {}
    for i, (cls, ext) in enumerate([("ApplyEyeMakeup", ".mp4"), ("ApplyEyeMakeup", ".avi"), ("Archery", ".mp4")]):
        (root / cls).mkdir(exist_ok=True)
        path = root / cls / f"v_{cls}_g01_c0{i}{ext}"
        write_video(path, source[i], fps=10)
        written[path.name] = source[i]
    (root / "Archery" / "notes.txt").write_text("not a video")
    return root, written


def test_photo_clip_geometry(clips):
    photo = clips.photos[0]
    # a static window covering the whole photo is the (resized) photo itself
    full = photo_clip(photo, 3, 48, (0.0, 0.0, 1.0), (0.0, 0.0, 1.0))
    assert full.shape == (3, 3, 48, 48)
    ref = F.interpolate(photo[None], size=48, mode="bilinear", antialias=True, align_corners=False)[0]
    assert psnr(full[:, 0], ref) > 25
    torch.testing.assert_close(full[:, 0], full[:, 2])
    # a pan to the right: the last frame's left part is the first frame's right part
    pan = photo_clip(photo, 5, 48, (-0.25, 0.0, 0.5), (0.25, 0.0, 0.5))
    assert psnr(pan[:, -1, :, :24], pan[:, 0, :, 24:]) > 25
    assert psnr(pan[:, -1], pan[:, 0]) < psnr(pan[:, -1, :, :24], pan[:, 0, :, 24:]) - 3
    with pytest.raises(ValueError, match="leaves the photo"):
        photo_clip(photo, 4, 32, (0.8, 0.0, 0.5), (0.0, 0.0, 0.5))


def test_photo_clips_dataset(clips):
    assert len(clips) == 4 * clips.photos.shape[0]
    a = clips[0]
    assert a.shape == (3, 12, 48, 48) and a.dtype == torch.float32
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    torch.testing.assert_close(clips[0], a)               # deterministic
    torch.testing.assert_close(clips[(0, 7)], clips[(0, 7)])
    assert not torch.allclose(clips[(0, 7)], clips[(0, 8)])  # seeds change the motion
    motion = (a[:, 1:] - a[:, :-1]).abs().mean()
    assert motion > 1e-3                                   # the camera moves
    zoom = clips[1]                                        # odd items zoom
    assert zoom.shape == a.shape and (zoom[:, -1] - zoom[:, 0]).abs().mean() > 1e-3
    with pytest.raises(IndexError):
        clips[len(clips)]
    with pytest.raises(ValueError, match="motions"):
        PhotoClips(frames=4, size=16, photos=clips.photos, motions=("tilt",))


def test_write_read_roundtrip(tmp_path, clips):
    clip = clips[2]
    for ext in (".mp4", ".avi"):
        path = write_video(tmp_path / f"clip{ext}", clip, fps=8)
        frames = read_video(path)
        assert frames.shape == (12, 48, 48, 3) and frames.dtype == torch.uint8
        decoded = frames.permute(3, 0, 1, 2).float() / 255
        assert psnr(decoded, clip) > 25, ext  # yuv420p chroma subsampling of a detailed 48x48 photo
    assert read_video(tmp_path / "clip.mp4", max_frames=5).shape[0] == 5
    with pytest.raises(ValueError, match="even size"):
        write_video(tmp_path / "odd.mp4", torch.rand(3, 2, 15, 16))


def test_sample_frame_indices():
    assert sample_frame_indices(100, 4, 2).tolist() == [46, 48, 50, 52]
    assert sample_frame_indices(10, 4, 5).tolist() == [0, 3, 6, 9]       # stride shrinks to fit
    assert sample_frame_indices(3, 5, 1).tolist() == [0, 1, 2, 2, 2]     # short video: repeat last
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    r = sample_frame_indices(100, 8, 3, g1)
    assert r.tolist() == sample_frame_indices(100, 8, 3, g2).tolist()
    assert (r.diff() == 3).all() and 0 <= int(r[0]) and int(r[-1]) < 100
    with pytest.raises(ValueError):
        sample_frame_indices(0, 4)


def test_video_folder_ucf_layout(ucf_root):
    root, written = ucf_root
    paths = list_videos(root)
    assert [p.suffix for p in paths] == [".mp4", ".avi", ".mp4"]
    ds = VideoFolder(paths, frames=8, size=48, frame_stride=2, resize=56, hflip=True)
    assert len(ds) == 3 and ds.classes == ["ApplyEyeMakeup", "Archery"]
    assert [ds.label(i) for i in range(3)] == [0, 0, 1]
    clip = ds[1]
    assert clip.shape == (3, 8, 48, 48) and clip.dtype == torch.float32
    torch.testing.assert_close(ds[1], clip)
    # the centre clip is the source frames (centre indices, resized, centre-cropped), up to the codec
    src = written[paths[1].name][:, sample_frame_indices(20, 8, 2)]
    ref = resize_short_side(src.transpose(0, 1), 56)[..., 4:52, 4:52].transpose(0, 1)
    assert psnr(clip, ref) > 25
    aug = [ds[(1, s)] for s in range(4)]
    assert all(a.shape == clip.shape for a in aug)
    assert any(not torch.allclose(a, clip) for a in aug)
    torch.testing.assert_close(ds[(1, 3)], aug[3])


def test_video_dataset_factory_and_errors(tmp_path, ucf_root):
    root, _ = ucf_root
    assert isinstance(video_dataset(root, frames=4, size=32), VideoFolder)
    offline = video_dataset("offline:photo_clips", frames=4, size=16, num_clips=6)
    assert isinstance(offline, PhotoClips) and len(offline) == 6 and offline[5].shape == (3, 4, 16, 16)
    with pytest.raises(FileNotFoundError, match="no videos"):
        list_videos(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        list_videos(tmp_path / "missing")
    with pytest.raises(ValueError, match="resize"):
        VideoFolder(list_videos(root), size=64, resize=32)


def test_reading_only_the_first_frames_never_hangs(tmp_path, clips):
    """Leaving the decode loop early (max_frames) with FFmpeg frame threading could deadlock when the
    codec context was freed (it hung this suite once; 300 early exits with thread_type AUTO hang here).
    Run in a subprocess so that a hang fails the test after the timeout instead of stalling the suite."""
    import subprocess
    import sys

    path = write_video(tmp_path / "clip.mp4", clips[2], fps=8)
    code = ("import sys, torchvision.transforms.v2.functional\n"
            "from zoo.data.video import read_video\n"
            "for _ in range(300):\n"
            "    assert read_video(sys.argv[1], max_frames=5).shape[0] == 5\n")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr[-2000:]
