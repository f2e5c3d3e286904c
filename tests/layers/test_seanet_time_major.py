"""The time-major inference path of the SEANet encoder computes what its channels-first layers do."""
import pytest
import torch

from zoo.layers.seanet import SEANetEncoder
from zoo.layers.seanet_time_major import encode_time_major, pad_time, time_major_supported


def _encoder(**kw):
    torch.manual_seed(0)
    args = dict(channels=1, dimension=16, n_filters=4, ratios=(4, 3, 2), lstm=1)
    args.update(kw)
    enc = SEANetEncoder(**args).eval()
    with torch.no_grad():  # weight_g != ||v|| so the weight-norm scaling matters
        for name, p in enc.named_parameters():
            if name.endswith("weight_g"):
                p.uniform_(0.8, 1.6)
    return enc


@pytest.fixture(scope="module")
def speech(speech_clip):
    return speech_clip(24000, 0.5)


@pytest.mark.parametrize("kw", [{}, {"causal": True}, {"pad_mode": "constant"}, {"true_skip": True},
                                {"n_residual_layers": 2}, {"norm": "none"}, {"lstm": 0}])
@pytest.mark.parametrize("length", [5, 1001])
def test_matches_the_channels_first_layers_on_real_speech(speech, kw, length):
    enc = _encoder(**kw)
    assert time_major_supported(enc)
    x = speech[:, :length][:, None].repeat(2, 1, 1)
    x[1] *= 0.5  # two different rows
    with torch.no_grad():
        ref = enc.model(x)
        out = encode_time_major(enc, x)
        via_forward = enc(x)
    assert out.shape == ref.shape
    # same products summed in another order (matmul / channels-last convolution vs conv1d):
    # float32 rounding of sums of at most ~100 terms per layer, through ~10 layers
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    assert torch.equal(via_forward, out)  # inference goes through the time-major path


def test_training_keeps_the_channels_first_layers():
    enc = _encoder()
    x = torch.randn(1, 1, 100, requires_grad=True)
    enc(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_pad_time_reflects_and_applies_elu():
    x = torch.arange(1.0, 6.0).view(1, 5, 1) - 3  # [-2, -1, 0, 1, 2] over time
    out = pad_time(x, 2, 3, "reflect")
    assert out[0, :, 0].tolist() == [0, -1, -2, -1, 0, 1, 2, 1, 0, -1]
    elu = pad_time(x, 1, 1, "constant", elu=True)
    torch.testing.assert_close(elu[0, :, 0], torch.cat([torch.zeros(1), torch.nn.functional.elu(x[0, :, 0]),
                                                        torch.zeros(1)]))
    short = pad_time(x[:, :2], 3, 3, "reflect")  # shorter than the padding: the channels-first helper
    assert short.shape == (1, 8, 1)


def test_autocast_inference_uses_the_channels_first_layers():
    enc = _encoder()
    x = torch.randn(1, 1, 200)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
        ref = enc.model(x)
    assert torch.equal(out, ref)


def test_forward_hooks_and_export_see_the_layers_run(speech):
    """The fast path bypasses the sub-modules' forward, so it is skipped whenever that could be
    observed: a forward hook on a layer (LSUV init relies on it) or graph export/tracing."""
    from zoo.layers.inference_path import fast_inference_path

    enc = _encoder()
    x = speech[:, :1001][:, None]
    with torch.inference_mode():
        assert fast_inference_path(enc)
    seen = []
    handle = enc.model[0].register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    try:
        with torch.inference_mode():
            assert not fast_inference_path(enc)
            enc(x)
    finally:
        handle.remove()
    assert seen == [torch.Size([1, 4, 1001])]
    # export: tests/export/test_onnx.py exports the WavTokenizer demo and runs it at other lengths
