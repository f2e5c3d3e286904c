"""Every recipe file: paper recipes run 2 CPU steps through their ``smoke`` overrides (same model
class and training options at toy width, real offline data); every ``tiny_*`` recipe trains with a
falling reconstruction loss."""
from pathlib import Path

import pytest
import torch

from zoo.train.logging import read_metrics
from zoo.train.recipe import load_recipe, load_smoke_recipe
from zoo.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
PAPER = [p for p in RECIPES if not p.name.startswith("tiny_")]
TINY = [p for p in RECIPES if p.name.startswith("tiny_")]


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def test_recipe_files_exist_and_load():
    assert len(TINY) >= 8 and len(PAPER) >= 10
    for path in RECIPES:
        r = load_recipe(path)
        assert r["description"], f"{path} has no description"
        if path in PAPER and path.parent.name != "demo":  # demo recipes are CPU-sized already
            assert r["smoke"], f"{path} has no smoke overrides"


@pytest.fixture(scope="module")
def tiny_proxy_vqgan(tmp_path_factory):
    """Factory of a small random MaskGIT-VQGAN checkpoint standing in for the official proxy-code
    model of TiTok's stage 1 (maskgit-vqgan-imagenet-f16-256.bin is not available offline)."""
    made = []

    def make() -> Path:
        if not made:
            from safetensors.torch import save_file

            from zoo.models.maskgit_vqgan import MaskGITVQGAN

            torch.manual_seed(0)
            vq = MaskGITVQGAN(channels=(32, 32, 32, 32, 32), num_res_blocks=1, z_channels=32, codebook_size=1024)
            path = tmp_path_factory.mktemp("proxy") / "maskgit_vqgan_tiny.safetensors"
            save_file({k: v.contiguous() for k, v in vq.state_dict().items()}, str(path))
            made.append(path)
        return made[0]

    return make


def _stand_ins(recipe: dict, proxy) -> list[str]:
    """Offline stand-ins for external teachers / proxy models the paper setups need."""
    extra = []
    kwargs = recipe["model"]["kwargs"] or {}
    if kwargs.get("proxy_weights"):
        extra.append(f"model.kwargs.proxy_weights={proxy()}")
    if kwargs.get("repa_layer") is not None:
        extra += [f"model.setup={ROOT / 'tests/recipes/teachers.py'}:repa_teacher",
                  f"model.setup_kwargs={{dim: {kwargs['teacher_dim']}}}"]
    return extra


@pytest.mark.slow
@pytest.mark.parametrize("path", PAPER, ids=_id)
def test_paper_recipe_runs_two_steps(path, tmp_path, tiny_proxy_vqgan):
    recipe = load_smoke_recipe(path, [f"output_dir={tmp_path}"])
    recipe = load_smoke_recipe(path, [f"output_dir={tmp_path}", *_stand_ins(recipe, tiny_proxy_vqgan)])
    trainer = Trainer(recipe)
    assert trainer.opt is not None and len(trainer.train_set) > 0 and len(trainer.val_set) > 0
    if recipe["gan"]["weight"] > 0:
        assert trainer.adversary is not None and trainer.opt_d is not None
    last = trainer.fit()
    assert trainer.step == 2 and (tmp_path / "step_00000002" / "model.safetensors").is_file()
    losses = {k: v for k, v in last.items() if k.startswith("loss/")}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    if recipe["gan"]["weight"] > 0:
        assert "loss/gan_d" in last and "loss/gan_g" in last
    if recipe["perturbation"]["alpha"] > 0:
        assert "stats/perturbed_fraction" in last


@pytest.mark.slow
@pytest.mark.parametrize("path", TINY, ids=_id)
def test_tiny_recipe_reconstruction_loss_falls(path, tmp_path):
    recipe = load_recipe(path, [f"output_dir={tmp_path}", "device=cpu", "progress=false"])
    last = Trainer(recipe).fit()
    values = [v for _, v in read_metrics(tmp_path / "metrics.csv")[recipe["monitor"]]]
    assert len(values) >= 4, values
    first, final = sum(values[:2]) / 2, sum(values[-2:]) / 2
    assert final < 0.85 * first, (recipe["monitor"], values)
    assert any(k.startswith("eval/") for k in last)
    assert (tmp_path / f"step_{recipe['max_steps']:08d}" / "config.json").is_file()
