"""Atomic, safe state-dict I/O."""
import os
import pickle

import pytest
import torch

from zoo.checkpoint import (CheckpointMismatchError, atomic_path, load_state_dict_file, load_state_dict_strict,
                            parameters_on_meta, read_safetensors, save_state_dict)


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


class _Tied(torch.nn.Module):
    """Linear layers with one tied weight and a non-persistent buffer (like sin-cos tables)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.register_buffer("table", torch.arange(4.0), persistent=False)
        self.register_buffer("count", torch.zeros(()))


def test_parameters_on_meta_adopts_checkpoint_tensors():
    ref = _Tied()
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    with parameters_on_meta():
        model = _Tied()
    assert all(p.is_meta for p in model.parameters())
    assert not model.table.is_meta and torch.equal(model.table, torch.arange(4.0))
    load_state_dict_strict(model, sd)
    assert not any(t.is_meta for t in list(model.parameters()) + list(model.buffers()))
    # the checkpoint tensors are the parameters (held once, not copied) and the tie survives
    assert model.a.bias.data_ptr() == sd["a.bias"].data_ptr()
    assert model.b.weight is model.a.weight and model.a.weight.requires_grad
    x = torch.randn(2, 4)
    assert torch.equal(model.b(model.a(x)), ref.b(ref.a(x)))
    # outside the context parameters are real again
    assert not any(p.is_meta for p in _Tied().parameters())


def test_parameters_on_meta_casts_dtype_and_keeps_strictness():
    ref = _Tied()
    half = {k: v.half() for k, v in ref.state_dict().items()}
    with parameters_on_meta():
        model = _Tied()
    load_state_dict_strict(model, half)
    assert model.a.weight.dtype == torch.float32
    assert torch.equal(model.a.weight, half["a.weight"].float())
    # one tensor stored under two keys does not tie two independent parameters
    shared = {k: v.clone() for k, v in ref.state_dict().items()}
    shared["b.bias"] = shared["a.bias"]
    with parameters_on_meta():
        model = _Tied()
    load_state_dict_strict(model, shared)
    assert model.a.bias.data_ptr() != model.b.bias.data_ptr() and torch.equal(model.a.bias, model.b.bias)
    with parameters_on_meta():
        model = _Tied()
    missing = {k: v for k, v in ref.state_dict().items() if k != "a.bias"}
    with pytest.raises(CheckpointMismatchError, match="a.bias"):
        load_state_dict_strict(model, missing)


def test_read_safetensors_matches_the_library_for_every_dtype(tmp_path):
    from safetensors.torch import load_file

    sd = {"f32": torch.randn(3, 5), "f16": torch.randn(7).half(), "bf16": torch.randn(2, 2).bfloat16(),
          "i64": torch.arange(4), "u8": torch.arange(6, dtype=torch.uint8).view(2, 3), "bool": torch.tensor([True, False]),
          "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4)}
    path = save_state_dict(sd, tmp_path / "all.safetensors", metadata={"format": "pt"})
    ours, ref = read_safetensors(path), load_file(str(path))
    assert list(ours) == list(ref)
    for k in sd:
        assert ours[k].dtype == sd[k].dtype and ours[k].shape == sd[k].shape and torch.equal(ours[k], sd[k]), k


@pytest.mark.parametrize("corrupt, match", [
    (lambda b: b[:4], "8-byte header"),
    (lambda b: (10**9).to_bytes(8, "little") + b[8:], "header length"),
    (lambda b: b[:8] + b"x" + b[9:], "not JSON"),
    (lambda b: b[:-3], "data offsets|truncated"),
])
def test_read_safetensors_rejects_corrupted_files(tmp_path, corrupt, match):
    path = save_state_dict({"w": torch.ones(10), "v": torch.zeros(3)}, tmp_path / "w.safetensors")
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(CheckpointMismatchError, match=match):
        read_safetensors(path)
