"""The trainer end to end on real photos: losses fall, GAN + LeCam + EMA run, gradient
accumulation equals the full batch, SIGKILL + --resume is exact, 2 processes match 1."""
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.train.logging import read_metrics
from zoo.train.recipe import load_recipe
from zoo.train.trainer import Trainer

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TINY = HERE / "tiny_recipe.yaml"
GAN = ["gan.weight=0.1", "gan.start_step=3", "gan.lecam_weight=0.01", "gan.feature_matching_weight=0.1",
       "gan.discriminators=[{name: patchgan, kwargs: {ndf: 8, n_layers: 2, norm: group, return_features: true}}]"]
COMMON = ["device=cpu", "data.max_files=4", "eval.num_samples=2"]


def _recipe(out, *extra):
    return load_recipe(TINY, [f"output_dir={out}", *COMMON, *extra])


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _load(folder, name="model.safetensors"):
    return load_file(str(Path(folder) / name))


#: Runs that differ only in how gradients are summed (accumulation vs one batch, two ranks' all-reduce vs
#: one process) are equal up to float reassociation (~1e-7 relative per gradient). Adam divides by
#: sqrt(v): for parameters whose gradient is near zero that rounding can change a step by up to lr, so a
#: max-abs bound depends on the CPU's kernels (6.5e-5 was seen on an AVX2 machine). The bound is on the
#: whole update instead: ||w_b - w_a|| must stay under 1 % of how far training moved the weights, while a
#: real bug (a rank dropping its half-batch, wrong averaging, duplicated data) changes the update by far
#: more than that.
SAME_UPDATE_REL = 1e-2


def _relative_update_difference(a, b, start) -> float:
    """||a - b|| / ||a - start|| over all floating tensors of three state dicts with the same keys."""
    assert a.keys() == b.keys() == start.keys()
    keys = [k for k in a if a[k].is_floating_point()]
    diff = sum(float((a[k].double() - b[k].double()).square().sum()) for k in keys) ** 0.5
    moved = sum(float((a[k].double() - start[k].double()).square().sum()) for k in keys) ** 0.5
    assert moved > 0, "training did not move the weights"
    return diff / moved


@pytest.mark.slow
def test_reconstruction_loss_decreases_and_outputs_written(tmp_path):
    last = Trainer(_recipe(tmp_path, "max_steps=40", "checkpoint_every=20", "eval_every=20")).fit()
    m = read_metrics(tmp_path / "metrics.csv")
    mse = [v for _, v in m["stats/recon_mse"]]
    assert len(mse) == 40
    assert sum(mse[-8:]) / 8 < 0.7 * sum(mse[:8]) / 8
    assert [s for s, _ in m["eval/psnr"]] == [20, 40] and last["eval/psnr"] > 5
    assert (tmp_path / "samples" / "step_00000040.png").is_file()
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000020", "step_00000040"]
    import zoo

    tok = zoo.from_pretrained(tmp_path / "step_00000040" / "ema")  # checkpoints are zoo folders
    assert tok.encode(torch.rand(1, 3, 32, 32)).ids.shape == (1, 64)


@pytest.mark.slow
def test_gan_lecam_ema_and_in_process_resume_are_exact(tmp_path):
    args = ["max_steps=8", "checkpoint_every=4", "keep_last=3", *GAN]
    last = Trainer(_recipe(tmp_path, *args)).fit()
    assert {"loss/gan_d", "loss/gan_g", "loss/lecam", "loss/feature_matching"} <= set(last)
    m = read_metrics(tmp_path / "metrics.csv")
    assert [s for s, _ in m["loss/gan_d"]] == [4, 5, 6, 7, 8]  # off before gan.start_step=3 (0-based)
    final = tmp_path / "step_00000008"
    ref = {n: _load(final, n) for n in ("model.safetensors", "ema/model.safetensors", "adversary.safetensors")}
    assert float(ref["adversary.safetensors"]["lecam.0.real"]) != 0.0  # LeCam averages are checkpointed
    shutil.rmtree(final)  # as if the run had died after step 4's checkpoint
    with pytest.raises(ValueError, match="--resume"):
        Trainer(_recipe(tmp_path, *args))
    trainer = Trainer(_recipe(tmp_path, *args), resume=True)
    assert trainer.step == 4
    trainer.fit()
    for name, tensors in ref.items():
        assert _max_diff(tensors, _load(final, name)) == 0.0, name


def test_stop_at_step_then_resume_equals_one_run(tmp_path):
    args = ["max_steps=6", "ema.decay=0.9", "schedule.name=cosine", "schedule.warmup_steps=2"]
    Trainer(_recipe(tmp_path / "whole", *args)).fit()
    last = Trainer(_recipe(tmp_path / "split", *args, "stop_at_step=3")).fit()
    assert "eval/psnr" not in last  # evaluation belongs to the end of the schedule
    assert sorted(p.name for p in (tmp_path / "split").glob("step_*")) == ["step_00000003"]
    with pytest.raises(ValueError, match="stop_at_step"):
        _recipe(tmp_path / "bad", "stop_at_step=-1")
    Trainer(_recipe(tmp_path / "split", *args), resume=True).fit()
    for name in ("model.safetensors", "ema/model.safetensors"):
        assert _max_diff(_load(tmp_path / "whole" / "step_00000006", name),
                         _load(tmp_path / "split" / "step_00000006", name)) == 0.0, name


@pytest.mark.slow
def test_grad_accumulation_equals_full_batch(tmp_path):
    Trainer(_recipe(tmp_path / "a", "max_steps=3", "ema.decay=0", "checkpoint_every=1", "keep_last=3")).fit()
    Trainer(_recipe(tmp_path / "b", "max_steps=3", "ema.decay=0", "grad_accum=4")).fit()
    a, b, a1 = (_load(p) for p in (tmp_path / "a" / "step_00000003", tmp_path / "b" / "step_00000003",
                                    tmp_path / "a" / "step_00000001"))
    assert _relative_update_difference(a, b, a1) < SAME_UPDATE_REL


def test_existing_checkpoints_need_resume_and_bad_device(tmp_path):
    (tmp_path / "step_00000005").mkdir(parents=True)
    (tmp_path / "step_00000005" / "trainer_state.json").write_text('{"step": 5}')
    with pytest.raises(ValueError, match="--resume"):
        Trainer(_recipe(tmp_path, "max_steps=1"))
    with pytest.raises(ValueError, match="device"):
        Trainer(_recipe(tmp_path / "x", "max_steps=1", "device=tpu"))


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(args, out, launcher=()):
    cmd = [*launcher, str(ROOT / "scripts" / "train.py"), str(TINY), f"output_dir={out}", *COMMON, *args]
    if not launcher:
        cmd.insert(0, sys.executable)
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc):
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
def test_sigkill_and_resume_matches_uninterrupted_run(tmp_path):
    args = ["max_steps=16", "checkpoint_every=4", "eval_every=8", *GAN]
    ref = _run(args, tmp_path / "ref")
    victim = _run(args, tmp_path / "run")
    seen = []
    for line in victim.stdout:  # the run prints "step N/16 ..." as it goes
        seen.append(line)
        if line.startswith("step 10/"):
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(seen)
    assert not (tmp_path / "run" / "step_00000012").exists()
    assert (tmp_path / "run" / "step_00000008" / "trainer_state.json").is_file()
    out = _finish(_run([*args, "--resume"], tmp_path / "run"))
    assert "resumed from step_00000008 at step 8" in out and "step 9/16" in out and "step 16/16" in out
    _finish(ref)
    final_ref, final_run = tmp_path / "ref" / "step_00000016", tmp_path / "run" / "step_00000016"
    for name in ("model.safetensors", "ema/model.safetensors", "adversary.safetensors"):
        assert _max_diff(_load(final_ref, name), _load(final_run, name)) == 0.0, name
    for name in ("optimizer.pt", "optimizer_disc.pt"):
        a = torch.load(final_ref / name, weights_only=True)["state"]
        b = torch.load(final_run / name, weights_only=True)["state"]
        assert a.keys() == b.keys() and all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)
    ma, mb = read_metrics(tmp_path / "ref" / "metrics.csv"), read_metrics(tmp_path / "run" / "metrics.csv")
    ma.pop("stats/seconds_per_step"), mb.pop("stats/seconds_per_step")
    assert ma == mb  # the resumed run's CSV has no duplicated or missing rows
    assert sorted(p.name for p in (tmp_path / "run").glob("step_*")) == ["step_00000012", "step_00000016"]
    assert not list((tmp_path / "run").glob(".tmp-*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_processes_match_one(tmp_path):
    args = ["max_steps=6", "grad_accum=2", "checkpoint_every=3", *GAN]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    two = _run(args, tmp_path / "two", launcher=torchrun)
    one = _run(args, tmp_path / "one")
    out = _finish(two)
    assert "on 2 process(es)" in out
    _finish(one)
    for name in ("model.safetensors", "ema/model.safetensors", "adversary.safetensors"):
        one, two, mid = (_load(tmp_path / run / step, name) for run, step in
                         (("one", "step_00000006"), ("two", "step_00000006"), ("one", "step_00000003")))
        d = _relative_update_difference(one, two, mid)
        assert d < SAME_UPDATE_REL, (name, d)


def test_bf16_autocast_with_gan_runs(tmp_path):
    last = Trainer(_recipe(tmp_path, "max_steps=2", "mixed_precision=bf16", "gan.start_step=0",
                           *[a for a in GAN if not a.startswith("gan.start_step")])).fit()
    assert all(torch.isfinite(torch.tensor(v)) for k, v in last.items() if k.startswith("loss/"))
    assert "loss/gan_g" in last
    w = _load(tmp_path / "step_00000002")
    assert all(v.dtype == torch.float32 for v in w.values())  # master weights stay fp32
