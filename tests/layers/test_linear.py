"""The oneDNN fast path of zoo.layers.linear computes F.linear / 1x1 conv1d (up to summation order)
and stays out of the way of autograd, autocast and non-fp32 inputs."""
import pytest
import torch
import torch.nn.functional as F

from zoo.layers import linear as lin
from zoo.layers.linear import Linear, conv1x1, linear


def _calls(monkeypatch):
    """Count calls of the oneDNN op through the module's reference to torch.ops.mkldnn."""
    seen = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        def __call__(self, *a, **k):
            seen.append(a[0].shape)
            return real(*a, **k)

    class Ops:
        _linear_pointwise = Spy()

    class Torch:
        def __getattr__(self, name):
            return getattr(torch, name)

    t = Torch()
    t.ops = type("O", (), {"mkldnn": Ops()})()
    monkeypatch.setattr(lin, "torch", t)
    return seen


@pytest.mark.parametrize("shape", [(289, 1024), (2, 77, 512), (3, 5, 40, 256)])
def test_matches_f_linear_in_inference(shape):
    torch.manual_seed(0)
    x, w, b = torch.randn(*shape), torch.randn(384, shape[-1]) / shape[-1] ** 0.5, torch.randn(384)
    with torch.inference_mode():
        torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(linear(x, w), F.linear(x, w), atol=1e-5, rtol=1e-5)


def test_fast_path_taken_only_when_safe(monkeypatch):
    if not lin.fast_linear_enabled():
        pytest.skip("oneDNN matmul not available in this PyTorch build")
    seen = _calls(monkeypatch)
    x, w = torch.randn(64, 512), torch.randn(512, 512)
    with torch.no_grad():
        linear(x, w)
    assert len(seen) == 1
    linear(x, w.requires_grad_())              # autograd needs F.linear
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        linear(x, w)                            # autocast decides dtypes: F.linear
    with torch.no_grad():
        linear(x.double(), w.double())          # fp32 only
        linear(torch.randn(2, 8), torch.randn(4, 8))  # too small to pay
    monkeypatch.setenv("ZOO_FAST_LINEAR", "0")
    with torch.no_grad():
        linear(x, w)
    assert len(seen) == 1


def test_linear_module_is_a_drop_in_nn_linear():
    torch.manual_seed(0)
    ref = torch.nn.Linear(256, 128)
    m = Linear(256, 128)
    m.load_state_dict(ref.state_dict())
    assert isinstance(m, torch.nn.Linear) and list(m.state_dict()) == ["weight", "bias"]
    x = torch.randn(4, 100, 256, requires_grad=True)
    m(x).sum().backward()  # training path: autograd works
    assert x.grad is not None
    with torch.inference_mode():
        torch.testing.assert_close(m(x.detach()), ref(x.detach()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cin,cout,t", [(768, 768, 50), (64, 128, 300), (32, 32, 1000)])
def test_conv1x1_matches_conv1d(cin, cout, t):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, cin, t), torch.randn(cout, cin, 1) / cin ** 0.5, torch.randn(cout)
    with torch.inference_mode():
        out = conv1x1(x, w, b)
        assert out.is_contiguous() and out.shape == (2, cout, t)
        torch.testing.assert_close(out, F.conv1d(x, w, b), atol=1e-5, rtol=1e-5)
