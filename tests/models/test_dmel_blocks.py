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


@pytest.mark.parametrize("n_bits,lo,hi", [(4, -7.0, 2.0), (1, -7.0, 2.0), (8, -11.5, 3.25), (6, -5.0, 0.5)])
def test_uniform_binner_equals_bucketize_at_every_decision_point(n_bits, lo, hi):
    """The no-grad path's binner (estimate from the uniform step, then one exact comparison on each
    side) gives bucketize's ids on values a few ulps around every decision point and far outside."""
    from zoo.models.dmel import _UniformBins

    tok = zoo.models.dmel.DMel(n_bits=n_bits, min_value=lo, max_value=hi)
    t = tok.thresholds
    binner = _UniformBins(t)
    assert binner.applies
    near = [t]
    for direction in (float("-inf"), float("inf")):
        v = t
        for _ in range(3):
            v = torch.nextafter(v, torch.full_like(v, direction))
            near.append(v)
    x = torch.cat(near + [tok.centers, torch.linspace(lo - 40, hi + 40, 20001), torch.tensor([-3e38, 3e38])])
    assert torch.equal(binner(x, t), torch.bucketize(x, t, right=True))


def test_uniform_binner_falls_back_on_uneven_thresholds():
    from zoo.models.dmel import _UniformBins

    t = torch.tensor([0.0, 0.1, 5.0, 5.1])
    binner = _UniformBins(t)
    assert not binner.applies
    x = torch.linspace(-1, 6, 701)
    assert torch.equal(binner(x, t), torch.bucketize(x, t, right=True))


@pytest.mark.parametrize("shape,pad", [((1, 1025), 512), ((3, 700), 512), ((2, 9), 8)])
def test_reflect_pad_equals_torch(shape, pad):
    from zoo.models.dmel import _reflect_pad

    x = torch.randn(shape)
    assert torch.equal(_reflect_pad(x, pad), torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0])
