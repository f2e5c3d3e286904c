"""ISTFT ("same" / "center" padding) and the Vocos ISTFT head."""
import pytest
import torch
import torch.nn.functional as F

from zoo.layers.istft import ISTFT, ISTFTHead


def _same_stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Analysis matching ISTFT(padding='same'): zero-pad (n_fft - hop) / 2 per side, no centring."""
    pad = (n_fft - hop) // 2
    window = torch.hann_window(n_fft).to(x.dtype)  # the float32 window the ISTFT buffer holds
    return torch.stft(F.pad(x, (pad, pad)), n_fft, hop, n_fft, window, center=False, return_complex=True)


@pytest.mark.parametrize("n_fft,hop", [(1280, 320), (2400, 600), (64, 16)])
def test_same_padding_inverts_matching_stft_on_speech(speech_clip, n_fft, hop):
    x = speech_clip(24000, 0.5).double()
    frames = x.shape[-1] // hop
    x = x[:, : frames * hop]
    spec = _same_stft(x, n_fft, hop)
    assert spec.shape[-1] == frames
    istft = ISTFT(n_fft, hop, padding="same").double()
    y = istft(spec)
    assert y.shape == x.shape == (1, istft.output_length(frames))
    torch.testing.assert_close(y, x, atol=1e-9, rtol=0)


def test_center_padding_matches_torch_istft(speech_clip):
    x = speech_clip(16000, 0.3)
    window = torch.hann_window(256)
    spec = torch.stft(x, 256, 64, 256, window, center=True, return_complex=True)
    y = ISTFT(256, 64, padding="center")(spec)
    assert y.shape[-1] == (spec.shape[-1] - 1) * 64
    torch.testing.assert_close(y, torch.istft(spec, 256, 64, 256, window, center=True))


def test_head_output_length_and_magnitude_clip():
    torch.manual_seed(0)
    head = ISTFTHead(dim=16, n_fft=128, hop_length=32)
    x = torch.randn(2, 10, 16)
    assert head(x).shape == (2, 10 * 32)
    spec = head.spectrogram(x * 1e4)  # huge log-magnitudes are clipped to 100
    assert spec.abs().max() <= 100.0 * (1 + 1e-5)
    assert torch.isfinite(head(x * 1e4)).all()
    assert head.hop_length == 32


def test_head_gradients_flow():
    head = ISTFTHead(dim=8, n_fft=64, hop_length=16)
    x = torch.randn(1, 5, 8, requires_grad=True)
    head(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        ISTFT(64, 16, padding="valid")
    with pytest.raises(ValueError, match="even"):
        ISTFT(64, 15)
    with pytest.raises(ValueError, match="hop_length"):
        ISTFT(64, 128)
    with pytest.raises(ValueError, match="complex"):
        ISTFT(64, 16)(torch.randn(1, 33, 4))
