"""LR schedules and the EMA of weights."""
import math

import pytest
import torch

from zoo.train.ema import EMA
from zoo.train.schedules import build_scheduler, lr_factor


def test_warmup_then_cosine():
    f = [lr_factor(s, name="cosine", total_steps=110, warmup_steps=10, min_lr_ratio=0.1) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # monotone decay after warm-up
    assert lr_factor(10_000, name="cosine", total_steps=110, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(50, name="linear", total_steps=100) == pytest.approx(0.5)
    assert lr_factor(50, name="constant", total_steps=100, warmup_steps=10) == 1.0


def test_scheduler_drives_optimizer_and_validates():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, {"name": "linear", "warmup_steps": 2, "min_lr_ratio": 0.0}, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    with pytest.raises(ValueError, match="unknown schedule"):
        build_scheduler(opt, {"name": "step"}, 10)
    with pytest.raises(ValueError, match="unknown schedule options"):
        build_scheduler(opt, {"name": "cosine", "warmup": 3}, 10)


def test_ema_tracks_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    ema = EMA(model, decay=0.5, start_step=1)
    w0 = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model, step=1)  # before start_step is passed: exact copy
    assert torch.equal(ema.shadow[0].weight, model[0].weight)
    with torch.no_grad():
        model[0].weight.add_(2.0)
    model[1].num_batches_tracked += 5
    ema.update(model, step=2)
    assert torch.allclose(ema.shadow[0].weight, w0 + 1.0 + 1.0)  # halfway between w0+1 and w0+3
    assert int(ema.shadow[1].num_batches_tracked) == 5  # integer buffers are copied
    assert not any(p.requires_grad for p in ema.shadow.parameters())
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_ema_warmup_follows_diffusers_schedule():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.999, warmup=True)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model, step=1)  # n = 0: d = min(0.999, 1/10)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=2)  # n = 1: d = 2 / 11
    assert float(ema.shadow.weight) == pytest.approx(1 - 2 / 11)
