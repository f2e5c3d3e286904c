"""Audio metrics vs independent computations / the reference packages, on real speech (alsa-utils)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.audio import DNSMOS, PESQ, SISDR, STOI, MelDistance, mel_distance, si_sdr
from zoo.data.offline import load_speech, speech_paths

SR = 16000


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    """Two real utterances at 16 kHz, 1.25 s each: [2, 20000]."""
    paths = speech_paths("alsa")
    return torch.stack([load_speech(p, SR, max_seconds=1.25) for p in paths[:2]])


def _noisy(x: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g)
    scale = x.pow(2).mean(-1, keepdim=True).sqrt() / noise.pow(2).mean(-1, keepdim=True).sqrt() / 10 ** (snr_db / 20)
    return (x + scale * noise).clamp(-1, 1)


def _lowpass(x: torch.Tensor, cutoff: int = 2000) -> torch.Tensor:
    from zoo.audio import resample

    return resample(resample(x, SR, 2 * cutoff), 2 * cutoff, SR)[..., : x.shape[-1]]


def test_si_sdr_matches_numpy_formula(clean):
    deg = _noisy(clean, 5.0)
    ours = si_sdr(deg, clean)
    for i in range(2):
        s, t = deg[i].double().numpy(), clean[i].double().numpy()
        s, t = s - s.mean(), t - t.mean()
        proj = (s @ t) / (t @ t) * t
        ref = 10 * np.log10((proj @ proj) / ((s - proj) @ (s - proj)))
        assert abs(ours[i].item() - ref) < 1e-6
    assert abs(ours.mean().item() - 5.0) < 0.3  # SNR of added white noise ~ SI-SDR
    # scale invariance and identity
    assert torch.allclose(si_sdr(0.3 * deg, clean), ours, atol=1e-6)
    assert (si_sdr(clean, clean) > 100).all()


def test_sisdr_metric_streaming_and_merge(clean):
    deg = _noisy(clean, 10.0)
    full = SISDR(SR)
    full.update(deg, clean)
    a, b = SISDR(SR), SISDR(SR)
    a.update(deg[:1], clean[:1])
    b.update(deg[1:], clean[1:])
    a.merge_state(b)  # what the DDP all-reduce (sum of total and count) does
    assert torch.allclose(a.compute(), full.compute())
    assert torch.allclose(full.compute(), si_sdr(deg, clean).mean().float())


def test_lengths_trim_padding(clean):
    deg = _noisy(clean, 10.0)
    short = 16000
    padded_p = torch.cat([deg[:, :short], torch.zeros(2, 8000)], -1)
    padded_t = torch.cat([clean[:, :short], torch.zeros(2, 8000)], -1)
    m = SISDR(SR)
    m.update(padded_p, padded_t, lengths=torch.tensor([short, short]))
    assert torch.allclose(m.compute(), si_sdr(deg[:, :short], clean[:, :short]).mean().float())


def test_pesq_matches_package_and_orders(clean):
    from pesq import pesq

    deg = _noisy(clean, 10.0)
    m = PESQ(SR)
    m.update(deg, clean)
    ref = np.mean([pesq(SR, clean[i].double().numpy(), deg[i].double().numpy(), "wb") for i in range(2)])
    assert abs(m.compute().item() - ref) < 1e-5
    best = PESQ(SR)
    best.update(clean, clean)
    assert best.compute() > 4.4 > m.compute()


def test_pesq_resamples_other_rates(clean):
    from pesq import pesq

    from zoo.audio import resample

    deg = _lowpass(clean)
    c48, d48 = resample(clean, SR, 48000), resample(deg, SR, 48000)
    m = PESQ(48000)
    m.update(d48, c48)
    ref = np.mean([pesq(SR, resample(c48[i], 48000, SR).double().numpy(),
                        resample(d48[i], 48000, SR).double().numpy(), "wb") for i in range(2)])
    assert abs(m.compute().item() - ref) < 1e-5


def test_stoi_matches_package_and_orders(clean):
    from pystoi import stoi

    noisy, lowp = _noisy(clean, 0.0), _lowpass(clean, 1000)
    for deg in (noisy, lowp):
        m = STOI(SR)
        m.update(deg, clean)
        ref = np.mean([stoi(clean[i].double().numpy(), deg[i].double().numpy(), SR) for i in range(2)])
        assert abs(m.compute().item() - ref) < 1e-6
    ident, bad = STOI(SR), STOI(SR)
    ident.update(clean, clean)
    bad.update(_noisy(clean, -10.0), clean)
    assert ident.compute() > 0.99 and bad.compute() < ident.compute() - 0.2


def test_mel_distance_matches_librosa(clean):
    import librosa

    deg = _lowpass(clean)
    ours = mel_distance(deg, clean, SR)

    def logmel(x):
        s = np.abs(librosa.stft(x, n_fft=1024, hop_length=256, center=True, pad_mode="reflect", window="hann"))
        fb = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0.0, fmax=SR / 2, htk=True, norm=None)
        return np.log(np.maximum(fb @ s, 1e-5))

    ref = [np.abs(logmel(deg[i].double().numpy()) - logmel(clean[i].double().numpy())).mean() for i in range(2)]
    assert np.allclose(ours.numpy(), ref, rtol=1e-3, atol=1e-4)
    m = MelDistance(SR)
    m.update(deg, clean)
    assert abs(m.compute().item() - float(np.mean(ref))) < 1e-3
    assert mel_distance(clean, clean, SR).abs().max() == 0
    assert (mel_distance(_noisy(clean, 0.0), clean, SR) > ours).all()


def test_dnsmos_matches_speechmos_and_orders_clean_over_noisy(clean):
    from speechmos import dnsmos as ref_dnsmos

    m = DNSMOS(SR)
    m.update(clean[:1])
    got = m.compute()
    ref = ref_dnsmos.run(clean[0].numpy(), SR)
    for k, rk in (("sig", "sig_mos"), ("bak", "bak_mos"), ("ovrl", "ovrl_mos"), ("p808", "p808_mos")):
        assert abs(got[k].item() - float(ref[rk])) < 1e-4, k
    personal = DNSMOS(SR, personalized=True, p808=False)
    personal.update(clean[:1])
    ref_p = ref_dnsmos.run(clean[0].numpy(), SR, model_type="dnsmos_personalized")
    for k in ("sig", "bak", "ovrl"):
        assert abs(personal.compute()[k].item() - float(ref_p[f"{k}_mos"])) < 1e-4, k
    noisy = DNSMOS(SR, p808=False)
    noisy.update(_noisy(clean[:1], 0.0))
    bad = noisy.compute()
    assert bad["bak"] < got["bak"] - 0.5 and bad["ovrl"] < got["ovrl"]


def test_dnsmos_resamples_other_rates(clean):
    from eval.dnsmos import DNSMOS as Scorer
    from zoo.audio import resample

    scorer = Scorer(p808=False)
    x48 = resample(clean[:1], SR, 48000).clamp(-1, 1)
    got = scorer(x48, 48000)
    ref = scorer(resample(x48, 48000, SR))
    assert all(torch.allclose(got[k], ref[k]) for k in ("sig", "bak", "ovrl"))


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_bad_inputs(clean):
    m = SISDR(SR)
    with pytest.raises(ValueError, match="same shape"):
        m.update(clean[:, :100], clean)
    with pytest.raises(ValueError, match="target"):
        m.update(clean)
    with pytest.raises(TypeError):
        m.update((clean * 100).long(), clean)
    with pytest.raises(ValueError, match="mono"):
        m.update(clean[:, None].expand(2, 2, -1), clean[:, None].expand(2, 2, -1))
    with pytest.raises(ValueError, match="empty"):
        m.update(torch.zeros(1, 0), torch.zeros(1, 0))
    with pytest.raises(RuntimeError, match="before any update"):
        SISDR(SR).compute()
    with pytest.raises(ValueError, match="mode"):
        PESQ(SR, mode="xx")
