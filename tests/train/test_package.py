"""Checkpoint packaging (zoo.train.package, ``python -m zoo package``) of a real, short training run."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.cli import main
from zoo.train.package import PACKAGED_FILES
from zoo.train.recipe import load_recipe
from zoo.train.trainer import Trainer

TINY = Path(__file__).parent / "tiny_recipe.yaml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The tiny recipe trained 6 steps on real photos (checkpoints at 3 and 6, EMA decay 0.9)."""
    out = tmp_path_factory.mktemp("run")
    Trainer(load_recipe(TINY, [f"output_dir={out}", "device=cpu", "data.max_files=4", "max_steps=6",
                               "checkpoint_every=3", "eval_every=100"])).fit()
    return out


def _params(tok) -> set[str]:
    return {n for n, _ in tok.named_parameters()}


def test_package_ships_the_ema_weights_in_float16(run_dir, tmp_path):
    dest = tmp_path / "weights"
    (dest / "tiny").mkdir(parents=True)
    (dest / "tiny" / "stale.bin").write_bytes(b"old")  # left by an earlier package: removed
    (dest / "tiny" / "old_folder").mkdir()
    assert main(["package", f"tiny={run_dir}", "--dest", str(dest)]) == 0
    folder = dest / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(PACKAGED_FILES)
    assert (folder / "training_log.csv").read_bytes() == (run_dir / "metrics.csv").read_bytes()

    ema = load_file(str(run_dir / "step_00000006" / "ema" / "model.safetensors"))
    raw = load_file(str(run_dir / "step_00000006" / "model.safetensors"))
    shipped = load_file(str(folder / "model.safetensors"))
    tok = zoo.from_pretrained(f"local-dir:{folder}")
    params = _params(tok)
    assert shipped.keys() == ema.keys() and params
    for k, v in shipped.items():
        # parameters float16, buffers as trained; values are the EMA ones rounded to float16 (exact
        # by construction: the same cast of the same numbers)
        assert v.dtype == (torch.float16 if k in params else ema[k].dtype), k
        assert torch.equal(v, ema[k].to(v.dtype)), k
    assert any(not torch.equal(ema[k], raw[k]) for k in params)  # EMA and raw weights differ after 6 steps
    loaded = tok.state_dict()
    assert all(loaded[k].dtype == torch.float32 and torch.equal(loaded[k], shipped[k].float()) for k in params)
    assert tok.encode(torch.rand(1, 3, 32, 32)).ids.shape == (1, 64)


def test_package_no_ema_and_bad_arguments(run_dir, tmp_path, capsys):
    assert main(["package", f"raw={run_dir}", "--no-ema", "--dest", str(tmp_path)]) == 0
    shipped = load_file(str(tmp_path / "raw" / "model.safetensors"))
    raw = load_file(str(run_dir / "step_00000006" / "model.safetensors"))
    assert all(torch.equal(v, raw[k].to(v.dtype)) for k, v in shipped.items())
    assert main(["package", str(run_dir), "--dest", str(tmp_path)]) == 2
    assert "expected NAME=RUN_DIR" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        main(["package", f"x={tmp_path / 'raw'}", "--dest", str(tmp_path)])
