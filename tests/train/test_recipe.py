"""Recipe loading: YAML + inherit + key=value overrides, strict key checking."""
from pathlib import Path

import pytest

from zoo.train.recipe import DEFAULTS, apply_overrides, load_recipe, parse_override

HERE = Path(__file__).parent
TINY = HERE / "tiny_recipe.yaml"


def test_parse_override_types():
    assert parse_override("lr=1e-4") == ("optim.lr", 1e-4)
    assert parse_override("max_steps=12") == ("max_steps", 12)
    assert parse_override("model.kwargs.dims=[1, 2]") == ("model.kwargs.dims", [1, 2])
    assert parse_override("progress=false") == ("progress", False)
    assert parse_override("output_dir=runs/x") == ("output_dir", "runs/x")
    with pytest.raises(ValueError, match="key=value"):
        parse_override("max_steps")


def test_load_recipe_merges_defaults_and_overrides():
    r = load_recipe(TINY, ["max_steps=3", "batch_size=4", "device=cpu", "output_dir=/tmp/x",
                           "checkpoint_every=1", "model.kwargs.width=8", "lr=1e-3"])
    assert r["max_steps"] == 3 and r["batch_size"] == 4 and r["device"] == "cpu"
    assert r["checkpoint_every"] == 1 and r["output_dir"] == "/tmp/x"
    assert r["model"]["kwargs"]["width"] == 8 and r["model"]["kwargs"]["codebook_size"] == 64
    assert r["optim"]["lr"] == 1e-3 and r["optim"]["betas"] == [0.9, 0.99]
    assert r["gan"]["loss"] == DEFAULTS["gan"]["loss"]  # untouched default
    assert r["name"] == "tiny_recipe"


def test_unknown_keys_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="max_step"):
        load_recipe(TINY, ["max_step=3"])
    with pytest.raises(ValueError, match="optim.lrr"):
        load_recipe(TINY, ["optim.lrr=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text() + "\nema: {decay: 0.9, dacay: 1}\n")
    with pytest.raises(ValueError, match="ema.dacay"):
        load_recipe(bad)


def test_inherit_and_cycle(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"inherit: {TINY}\nmax_steps: 7\noptim: {{lr: 2e-4}}\n")
    r = load_recipe(child)
    assert r["max_steps"] == 7 and r["optim"]["lr"] == 2e-4 and r["optim"]["betas"] == [0.9, 0.99]
    assert r["data"]["size"] == 32
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("inherit: b.yaml\n")
    b.write_text("inherit: a.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_recipe(a)


def test_validation_errors():
    with pytest.raises(ValueError, match="batch_size"):
        load_recipe(TINY, ["batch_size=0"])
    with pytest.raises(ValueError, match="mixed_precision"):
        load_recipe(TINY, ["mixed_precision=fp8"])
    with pytest.raises(ValueError, match="exactly one"):
        load_recipe(TINY, ["model.name=titok_tiny"])
    with pytest.raises(FileNotFoundError):
        load_recipe(HERE / "missing.yaml")


def test_free_sections_accept_any_key():
    r = apply_overrides(DEFAULTS, ["model.kwargs.anything.nested=1", "data.sample_rate=16000"])
    assert r["model"]["kwargs"]["anything"]["nested"] == 1 and r["data"]["sample_rate"] == 16000


def test_inherited_model_kwargs_are_replaced_and_smoke(tmp_path):
    from zoo.train.recipe import SMOKE, load_smoke_recipe

    child = tmp_path / "child.yaml"
    child.write_text(f"inherit: {TINY}\nmodel: {{kwargs: {{width: 4}}}}\nsmoke: [model.kwargs.width=2]\n")
    r = load_recipe(child)
    assert r["model"]["kwargs"] == {"width": 4}  # not merged with the parent's constructor arguments
    assert r["model"]["class"].endswith("TinyConvVQ")
    s = load_smoke_recipe(child, ["seed=5"])
    assert s["max_steps"] == 2 and s["device"] == "cpu" and s["model"]["kwargs"]["width"] == 2 and s["seed"] == 5
    assert "losses.perceptual.weight=0" in SMOKE
    assert load_recipe(TINY, ["mixed_precision=no"])["mixed_precision"] == "no"  # YAML `no` is not False
