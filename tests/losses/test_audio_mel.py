"""Log-mel spectrogram and mel L1 losses (WavTokenizer / Vocos training objective)."""
import pytest
import torch

from zoo.losses.mel import MelL1Loss, MelSpectrogram, MultiScaleMelL1Loss


def test_matches_torchaudio_melspectrogram(speech_clip):
    import torchaudio

    x = speech_clip(24000, 0.5)
    ref = torchaudio.transforms.MelSpectrogram(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100,
                                               center=True, power=1)(x).clamp_min(1e-7).log()
    ours = MelSpectrogram()(x)
    assert ours.shape == (1, 100, x.shape[-1] // 256 + 1)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_mel_l1_properties(speech_clip):
    x = speech_clip(24000, 0.4)
    loss = MelL1Loss()
    assert loss(x, x) == 0
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
    louder = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    assert 0 < loss(noisy, x) < loss(louder, x)
    y = noisy.clone().requires_grad_(True)
    loss(y, x).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert MultiScaleMelL1Loss()(noisy, x) > 0
    assert not MelL1Loss().state_dict()  # buffers are non-persistent
    with pytest.raises(ValueError, match="shape"):
        loss(x, x[:, :-1])
