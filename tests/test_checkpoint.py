"""Atomic, safe state-dict I/O."""
import os
import pickle

import pytest
import torch

from zoo.checkpoint import (CheckpointMismatchError, atomic_path, load_state_dict_file, load_state_dict_strict,
                            save_state_dict)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/zoo_should_not_exist",))


def test_safetensors_round_trip_with_tied_weights(tmp_path):
    w = torch.randn(4, 3)
    path = save_state_dict({"a": w, "b": w, "c": torch.arange(3)}, tmp_path / "x.safetensors")
    sd = load_state_dict_file(path)
    assert torch.equal(sd["a"], w) and torch.equal(sd["b"], w) and sd["c"].dtype == torch.long


def test_torch_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        load_state_dict_file(path)
    assert not os.path.exists("/tmp/zoo_should_not_exist")


def test_plain_torch_checkpoint_loads(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "ok.ckpt")
    assert torch.equal(load_state_dict_file(tmp_path / "ok.ckpt")["state_dict"]["w"], torch.ones(2))


def test_corrupted_safetensors_raise(tmp_path):
    path = save_state_dict({"w": torch.ones(10)}, tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CheckpointMismatchError, match="safetensors"):
        load_state_dict_file(path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_strict_loading_reports_shapes():
    m = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointMismatchError, match=r"weight: checkpoint \(2, 4\) vs model \(2, 3\)"):
        load_state_dict_strict(m, {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)})
