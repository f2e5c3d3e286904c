"""scripts/train.py / python -m zoo train argument handling."""
import json
from pathlib import Path

import pytest

from zoo.train.cli import main

TINY = Path(__file__).parent / "tiny_recipe.yaml"


def test_print_recipe_with_overrides_and_flags_anywhere(capsys):
    assert main([str(TINY), "max_steps=3", "--print-recipe", "batch_size=4", "device=cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["max_steps"] == 3 and r["batch_size"] == 4 and r["device"] == "cpu"


def test_smoke_flag_and_errors(capsys):
    assert main([str(TINY), "--smoke", "--print-recipe"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["max_steps"] == 2 and r["batch_size"] == 2 and r["device"] == "cpu"
    assert main([str(TINY), "max_stepz=3"]) == 2
    assert "unknown recipe key 'max_stepz'" in capsys.readouterr().err
    assert main([str(TINY.with_name("nope.yaml"))]) == 2


@pytest.mark.slow
def test_zoo_cli_delegates(tmp_path):
    import zoo.cli

    out = tmp_path / "r"
    assert zoo.cli.main(["train", str(TINY), f"output_dir={out}", "max_steps=1", "device=cpu", "data.max_files=2",
                         "eval.num_samples=1"]) == 0
    assert (out / "step_00000001" / "model.safetensors").is_file()
