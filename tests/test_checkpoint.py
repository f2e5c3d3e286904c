"""Atomic, safe state-dict I/O."""
import argparse
import os
import pickle

import pytest
import torch

from zoo.checkpoint import (CheckpointMismatchError, atomic_path, load_on_meta, load_state_dict_file,
                            load_state_dict_strict, parameters_on_meta, read_safetensors, save_state_dict)


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


class TrainingConfig:
    """A harmless custom class: still not allow-listed, so a file pickling it is refused."""

    def __init__(self):
        self.lr = 1e-4


def test_released_fqgan_format_with_argparse_namespace_loads(tmp_path):
    """FQGAN / TokenFlow releases: {"model", "ema", "args": argparse.Namespace(...)} (+ training state)."""
    sd = {"w": torch.randn(3, 2), "quantize_vis.codebook_used": torch.zeros(4)}
    args = argparse.Namespace(vq_model="VQ-8", codebook_size=16384, image_size=256, with_disentanglement=True,
                              disentanglement_ratio=0.1, data_path=None, milestones=[1, 2])
    torch.save({"model": sd, "ema": {k: v + 1 for k, v in sd.items()}, "steps": 400000, "args": args},
               tmp_path / "fqgan_dual_ds8.pt")
    ckpt = load_state_dict_file(tmp_path / "fqgan_dual_ds8.pt")
    assert ckpt["args"] == vars(args) and isinstance(ckpt["args"], dict)  # a plain dict, not the class
    assert torch.equal(ckpt["ema"]["w"], sd["w"] + 1) and ckpt["steps"] == 400000
    # the allow-list is scoped to the zoo's loader: plain torch.load(weights_only=True) still refuses it
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "fqgan_dual_ds8.pt", weights_only=True)


def test_any_other_pickled_class_is_refused_by_name(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}, "args": TrainingConfig()}, tmp_path / "custom.pt")
    with pytest.raises(CheckpointMismatchError, match=r"TrainingConfig.*not allow-listed.*argparse.Namespace"):
        load_state_dict_file(tmp_path / "custom.pt")
    # a Namespace carrying a disallowed object inside is refused as well
    torch.save({"args": argparse.Namespace(cfg=TrainingConfig())}, tmp_path / "nested.pt")
    with pytest.raises(CheckpointMismatchError, match="TrainingConfig"):
        load_state_dict_file(tmp_path / "nested.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"args": argparse.Namespace(x=Evil())}, f)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        load_state_dict_file(tmp_path / "evil.pt")
    assert not os.path.exists("/tmp/zoo_should_not_exist")


def test_load_on_meta_reads_shapes_only(tmp_path):
    sd = {"a.weight": torch.randn(4, 4), "a.bias": torch.randn(4), "b.weight": torch.randn(4, 4),
          "b.bias": torch.randn(4), "count": torch.zeros(())}
    save_state_dict(sd, tmp_path / "m.safetensors")
    torch.save({"state_dict": sd, "args": argparse.Namespace(n=1)}, tmp_path / "m.ckpt")
    with load_on_meta():
        st = load_state_dict_file(tmp_path / "m.safetensors")
        pt = load_state_dict_file(tmp_path / "m.ckpt")
        with parameters_on_meta():
            model = _Tied()
        load_state_dict_strict(model, st)
    for loaded in (st, pt["state_dict"]):
        assert all(v.is_meta and v.shape == sd[k].shape and v.dtype == sd[k].dtype for k, v in loaded.items())
    assert pt["args"] == {"n": 1}
    assert model.a.weight.is_meta and model.a.weight.shape == (4, 4)
    # outside the context the same files give data, and a meta tensor left in a model is an error
    assert torch.equal(load_state_dict_file(tmp_path / "m.safetensors")["a.bias"], sd["a.bias"])
    with parameters_on_meta():
        model = _Tied()
    with pytest.raises(CheckpointMismatchError, match="meta"):
        load_state_dict_strict(model, {k: v.to("meta") for k, v in sd.items()})


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
