"""Per-frame video fidelity on clips made from real photos vs skimage frame by frame."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.video import VideoFidelity, frames_of


def test_video_fidelity_matches_skimage_per_frame():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from zoo.data.video import PhotoClips

    ds = PhotoClips(frames=4, size=32, num_clips=3)
    clips = torch.stack([ds[i] for i in range(3)]).mul(255).round().div(255)     # [3, 3, 4, 32, 32]
    g = torch.Generator().manual_seed(0)
    recon = (clips + 0.03 * torch.randn(clips.shape, generator=g)).clamp(0, 1).mul(255).round().div(255)
    m = VideoFidelity(("psnr", "ssim"))
    m.update(recon[:2], clips[:2])
    m.update(recon[2:], clips[2:])
    out = m.compute()
    ref_p, ref_s = [], []
    for c in range(3):
        for t in range(4):
            a, b = clips[c, :, t].double().numpy(), recon[c, :, t].double().numpy()
            ref_p.append(peak_signal_noise_ratio(a, b, data_range=1.0))
            ref_s.append(structural_similarity(a, b, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                               sigma=1.5, use_sample_covariance=False))
    assert out["psnr"].item() == pytest.approx(np.mean(ref_p), rel=1e-5)
    assert out["ssim"].item() == pytest.approx(np.mean(ref_s), rel=1e-5)
    assert int(m.num_frames) == 12
    assert torch.equal(frames_of(clips)[5], clips[1, :, 1])
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        m.update(recon[:, :, 0], clips[:, :, 0])
