"""dMel's no-grad tokenizer path works on blocks of STFT frames; its ids must equal the one-shot path
(and Apple's ``dmel`` package) for any length, including block boundaries and batches."""
import pytest
import torch

import zoo
from zoo.data.offline import load_speech, speech_paths


@pytest.fixture(scope="module")
def tok():
    return zoo.load_official("dmel", None, None).eval()


def _speech(batch: int, num_samples: int) -> torch.Tensor:
    clips = [load_speech(p, 16000) for p in speech_paths("alsa")[:2]]
    out = []
    for i in range(batch):
        c = clips[i % len(clips)]
        out.append(c.repeat(num_samples // c.numel() + 1)[i * 97:i * 97 + num_samples])
    return torch.stack(out)


# short inputs (<= 1024 frames over the batch) take one block, longer ones several: both sides covered
@pytest.mark.parametrize("batch,num_samples", [(1, 16000 * 6 + 123), (3, 200 * 128 - 1), (2, 200 * 384),
                                               (5, 700), (1, 16000 * 21 + 7), (3, 200 * 400), (8, 200 * 130 - 3)])
def test_blocked_ids_equal_one_shot_ids(tok, batch, num_samples):
    x = _speech(batch, num_samples)
    with torch.no_grad():
        blocked = tok.tokenize(x).ids
    one_shot = tok.tokenize(x.clone().requires_grad_()).ids  # autograd path: one STFT over everything
    assert blocked.shape == (batch, num_samples // 200 + 1, 80)
    assert torch.equal(blocked, one_shot)


def test_blocked_ids_equal_the_dmel_package(tok):
    dmel = pytest.importorskip("dmel")
    ref = dmel.DiscretizedLogMelFbank(
        logmelfbank=dmel.LogMelFbank(sampling_freq=16000, n_fft=1024, frame_size_ms=50, frame_stride_ms=12.5,
                                     n_filterbank=80), n_bits=4, quantize_min_value=-7, quantize_max_value=2)
    x = _speech(2, 16000 * 7 + 1)
    lengths = torch.full((2,), x.shape[-1])
    with torch.inference_mode():
        expected, _ = ref(x, lengths)
        got = tok.encode(x, bos_eos=True, lengths=lengths).ids
    assert torch.equal(got, expected)
