"""Atomic checkpoint folders, pruning, RNG state round trip, batch order."""
import json
import random

import numpy as np
import pytest
import torch

from zoo.train.checkpointing import (begin_checkpoint, commit_checkpoint, latest_checkpoint, list_checkpoints,
                                     load_torch, prune_checkpoints, rng_state, save_torch, set_rng_state)
from zoo.train.sampling import StepBatchSampler


def _write(out, step):
    tmp = begin_checkpoint(out, step)
    save_torch({"w": torch.full((2,), float(step))}, tmp / "x.pt")
    return commit_checkpoint(out, step, {"step": step})


def test_commit_is_atomic_and_latest_ignores_partial(tmp_path):
    for s in (10, 20):
        _write(tmp_path, s)
    partial = begin_checkpoint(tmp_path, 30)  # a run killed while writing step 30
    save_torch({"w": torch.zeros(1)}, partial / "x.pt")
    (tmp_path / "step_00000040").mkdir()  # a folder without trainer_state.json is not complete
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 20]
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step_00000020"
    assert json.loads((latest / "trainer_state.json").read_text())["step"] == 20
    assert torch.equal(load_torch(latest / "x.pt")["w"], torch.full((2,), 20.0))
    _write(tmp_path, 20)  # rewriting a step replaces it
    assert latest_checkpoint(tmp_path).name == "step_00000020"


def test_prune_keeps_last(tmp_path):
    for s in (1, 2, 3, 4):
        _write(tmp_path, s)
    removed = prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in removed] == ["step_00000001", "step_00000002"]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
    with pytest.raises(FileNotFoundError):
        load_torch(tmp_path / "step_00000003" / "missing.pt")


def test_rng_round_trip(tmp_path):
    save_torch(rng_state(), tmp_path / "rng.pt")
    a = (torch.rand(3), np.random.rand(2), random.random())
    set_rng_state(load_torch(tmp_path / "rng.pt"))  # weights_only load
    b = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_batch_order_is_independent_of_processes_and_resumable():
    single = StepBatchSampler(10, 8, seed=3, max_steps=5)
    batches = [single.micro_batches(s)[0] for s in range(5)]
    # two processes x two accumulation steps cover exactly the same items per step
    for step in range(5):
        parts = []
        for m in range(2):
            for r in range(2):
                parts += StepBatchSampler(10, 8, world_size=2, rank=r, grad_accum=2, seed=3).micro_batches(step)[m]
        assert parts == batches[step]
    resumed = list(StepBatchSampler(10, 8, seed=3, start_step=3, max_steps=5))
    assert resumed == batches[3:]
    # every item appears once per epoch (stream of 40 positions = 4 epochs of 10)
    items = [i for b in batches for i, _ in b]
    for e in range(4):
        assert sorted(items[e * 10:(e + 1) * 10]) == list(range(10))
    assert len({s for b in batches for _, s in b}) == 40  # distinct augmentation seeds
    with pytest.raises(ValueError, match="divisible"):
        StepBatchSampler(10, 6, world_size=4)
