"""LSUV initialisation: every rescaled layer's output is standardised on the calibration batch."""
import pytest
import torch
from torch import nn

from zoo.layers.seanet import WNConv1d
from zoo.train.lsuv import lsuv_init_


def test_outputs_become_zero_mean_unit_variance(speech_clip):
    torch.manual_seed(0)
    net = nn.Sequential(WNConv1d(1, 8, 7), nn.ELU(), nn.Conv1d(8, 4, 5, stride=2, padding=2),
                        nn.ELU(), nn.Conv1d(4, 4, 3, padding=1, bias=False))
    x = speech_clip(16000, 1.0)[0, :16000].reshape(4, 1, 4000)
    layers = [net[0], net[2], net[4]]
    before = lsuv_init_(layers, lambda: net(x))
    assert all(s > 0 for s in before) and abs(before[0] - 1.0) > 0.1  # the default init is not standardised
    outs = []
    hooks = [m.register_forward_hook(lambda mod, a, out: outs.append(out)) for m in layers]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    for layer, y in zip(layers, outs):
        std = y.std(dim=(0, 2))
        torch.testing.assert_close(std, torch.ones_like(std), rtol=1e-4, atol=1e-4)
        if layer.bias is not None:
            mean = y.mean(dim=(0, 2))
            torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=1e-4)
    assert lsuv_init_(layers[:1], lambda: net(x))[0] == pytest.approx(1.0, abs=1e-4)  # idempotent


def test_bad_layers_raise():
    with pytest.raises(ValueError, match="at least one"):
        lsuv_init_([], lambda: None)
    with pytest.raises(TypeError, match="weight"):
        lsuv_init_([nn.ReLU()], lambda: None)
    lin = nn.Linear(3, 3)
    with pytest.raises(RuntimeError, match="never ran"):
        lsuv_init_([lin], lambda: None)
