"""The training loop: any zoo tokenizer, one code path for CPU, one GPU and many (accelerate).

Per optimizer step: ``grad_accum`` micro-batches; for each, the tokenizer's training forward
``tok(x) -> TokenizerOutput`` gives its own loss terms, the recipe adds reconstruction,
perceptual and adversarial terms; after the GAN start step the discriminators get their own
backward pass on the same micro-batch. Gradients are clipped, both optimizers and schedulers
step, the EMA follows. Every ``log_every`` steps a line ``step N/M ...`` with the averages over
those steps is printed and logged (CSV + TensorBoard); every ``eval_every`` steps the held-out
set is reconstructed and measured;
every ``checkpoint_every`` steps an atomic checkpoint is written (see ``checkpointing``).
``resume=True`` restores everything from the newest complete checkpoint, including the data
position (the batch order is a function of the step, see ``sampling``) and the RNG states, so
an interrupted and resumed run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..modality import modality_named
from .builders import apply_freeze, build_model, build_optimizer
from .checkpointing import (begin_checkpoint, commit_checkpoint, latest_checkpoint, list_checkpoints,
                            load_torch, prune_checkpoints, rng_state, save_torch, set_rng_state)
from .data import build_datasets, collate
from .ema import EMA
from .logging import MetricLogger
from .sampling import StepBatchSampler
from .schedules import build_scheduler

__all__ = ["Trainer", "train"]


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save_tokenizer(model: torch.nn.Module, folder: Path) -> None:
    if hasattr(model, "save_pretrained") and getattr(model, "_hub_mixin_config", None) is not None:
        model.save_pretrained(folder)
    else:
        from zoo.checkpoint import save_state_dict

        folder.mkdir(parents=True, exist_ok=True)
        save_state_dict(model.state_dict(), folder / "model.safetensors")


def _load_tokenizer(model: torch.nn.Module, folder: Path) -> None:
    from zoo.checkpoint import load_state_dict_strict

    load_state_dict_strict(model, folder / "model.safetensors", source=str(folder))


class Trainer:
    """Build everything a recipe (a dict from :func:`zoo.train.recipe.load_recipe`) describes.

    resume: continue from the newest complete checkpoint in ``output_dir`` (a fresh start when
    there is none). Without it, an ``output_dir`` that already holds checkpoints is refused.
    """

    def __init__(self, recipe: dict, resume: bool = False, log_stream=None):
        self.cfg = cfg = recipe
        self.out = Path(cfg["output_dir"])
        self.stream = log_stream or sys.stdout
        self.acc = acc = _accelerator(cfg)
        self.main = acc.is_main_process

        ckpt = latest_checkpoint(self.out) if resume else None
        if not resume and list_checkpoints(self.out):
            raise ValueError(f"{self.out} already holds checkpoints: pass --resume to continue the run, "
                             "or choose another output_dir")

        # ---------------------------------------------------------------- model & data
        _seed_all(int(cfg["seed"]))  # identical initial weights on every process
        model = build_model(cfg["model"])
        self.frozen = apply_freeze(model, cfg.get("freeze") or [])
        try:
            self.modality = modality_named(getattr(model, "modality", None))
        except ValueError:
            raise ValueError(f"{type(model).__name__} has no modality (image, video or audio)") from None
        self.input_range = tuple(getattr(model, "input_range", (0.0, 1.0)))
        self.train_set, self.val_set = build_datasets(cfg["data"], model)

        self._build_losses(cfg)
        model.to(acc.device)
        self._attach_ema_and_perturbation(model, cfg)

        max_steps = int(cfg["max_steps"])
        self._build_optimizers(model, cfg, max_steps)

        self.step = 0
        if ckpt is not None:
            self._load(ckpt, model)

        if self.adversary is not None:
            self.model, self.opt, self.discs = acc.prepare(model, self.opt, self.adversary.discriminators)
        else:
            self.model, self.opt = acc.prepare(model, self.opt)
            self.discs = None

        self._start_data_and_log(cfg, ckpt, model, max_steps)

    # ------------------------------------------------------------------ construction steps
    def _build_losses(self, cfg: dict) -> None:
        """Reconstruction, perceptual and adversarial losses of the recipe (in this order: the
        adversary's initialisation draws from the seeded RNG)."""
        acc = self.acc
        losses = cfg["losses"]
        self.rec_weight = float(losses["reconstruction"].get("weight", 0.0))
        self.rec_type = losses["reconstruction"].get("type", "l1")
        if self.rec_type not in ("l1", "mse", "l2"):
            raise ValueError(f"losses.reconstruction.type must be l1 or mse, got {self.rec_type!r}")
        self.perceptual = None
        pw = float(losses["perceptual"].get("weight", 0.0))
        if pw > 0:
            if not self.modality.spatial:
                raise ValueError("losses.perceptual is an image loss; set losses.perceptual.weight=0 for audio")
            from zoo.losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(losses["perceptual"].get("vgg_weights"),
                                             losses["perceptual"].get("lpips_weights")).to(acc.device)
            self.perceptual_weight = pw

        self.adversary = None
        if float(cfg["gan"].get("weight", 0.0)) > 0:
            from .adversarial import Adversary

            self.adversary = Adversary(cfg["gan"], self.modality)

    def _build_optimizers(self, model, cfg: dict, max_steps: int) -> None:
        """Optimizer and schedule of the model, and of the discriminators when there is an adversary."""
        acc = self.acc
        self.opt = build_optimizer(model.parameters(), cfg["optim"])
        self.sched = build_scheduler(self.opt, cfg["schedule"], max_steps)
        self.opt_d = self.sched_d = None
        if self.adversary is not None:
            self.adversary.to(acc.device)
            self.opt_d = build_optimizer(self.adversary.discriminators.parameters(), cfg["gan"]["optim"])
            # the discriminator optimizer stays unprepared, with its own fp16 grad scaler: accelerate's one
            # scaler shared by two optimizers would unscale one of them with an already-updated scale
            self.d_scaler = torch.amp.GradScaler(acc.device.type, enabled=cfg["mixed_precision"] == "fp16")
            self.sched_d = build_scheduler(self.opt_d, cfg["gan"]["schedule"],
                                           max(1, max_steps - self.adversary.start_step))

    def _attach_ema_and_perturbation(self, model, cfg: dict) -> None:
        """The EMA shadow, then the latent perturbation hook (after the copy: the shadow stays clean)."""
        self.ema = None
        if float(cfg["ema"].get("decay", 0.0)) > 0:
            self.ema = EMA(model, float(cfg["ema"]["decay"]), int(cfg["ema"].get("start_step", 0)),
                           int(cfg["ema"].get("every", 1)), bool(cfg["ema"].get("warmup", False)))
        self.perturbation = None
        pcfg = cfg["perturbation"]
        if float(pcfg["alpha"]) > 0 and int(pcfg["delta"]) > 1:
            from zoo.quant.perturb import LatentPerturbation, PerturbationSchedule

            # seed=None: draws from the global RNG, which checkpoints restore (exact resume)
            schedule = None  # constant alpha / delta unless an annealing window is given
            if int(pcfg["anneal_end"]) > int(pcfg["anneal_start"]):
                schedule = PerturbationSchedule(float(pcfg["alpha"]), int(pcfg["delta"]), float(pcfg["beta"]),
                                                int(pcfg["anneal_start"]), int(pcfg["anneal_end"]),
                                                float(pcfg["end_ratio"]))
            self.perturbation = LatentPerturbation(float(pcfg["alpha"]), int(pcfg["delta"]), float(pcfg["beta"]),
                                                   schedule=schedule)
            self.perturbation.attach(model)  # after the EMA copy: the shadow stays clean

    def _start_data_and_log(self, cfg: dict, ckpt, model, max_steps: int) -> None:
        """Data order from ``self.step``, the RNG state (restored on resume), and the metric log."""
        acc = self.acc
        self.sampler = StepBatchSampler(len(self.train_set), int(cfg["batch_size"]), world_size=acc.num_processes,
                                        rank=acc.process_index, grad_accum=int(cfg["grad_accum"]),
                                        seed=int(cfg["seed"]), start_step=self.step, max_steps=max_steps)
        self.loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=self.sampler, num_workers=int(cfg["num_workers"]), collate_fn=collate,
            pin_memory=acc.device.type == "cuda", persistent_workers=False)
        self._iter = iter(self.loader)  # draws the loader's base seed: before the RNG restore below
        if ckpt is not None:
            self._restore_rng(ckpt)
        else:
            _seed_all(int(cfg["seed"]) * 1000 + 1 + acc.process_index)

        self.logger = MetricLogger(self.out, tensorboard=bool(cfg["tensorboard"]), enabled=self.main)
        if ckpt is not None:
            self.logger.truncate(self.step)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "recipe.json").write_text(json.dumps(cfg, indent=1, default=str))
            where = f"resumed from {ckpt.name}" if ckpt is not None else "from scratch"
            self._print(f"training {cfg['name']} ({type(model).__name__}, {sum(p.numel() for p in model.parameters())} "
                        f"params) on {acc.num_processes} process(es), device {acc.device}, {where} at step {self.step}")

    # ------------------------------------------------------------------ helpers
    def _print(self, text: str) -> None:
        if self.main:
            print(text, file=self.stream, flush=True)

    @property
    def raw_model(self):
        return self.acc.unwrap_model(self.model)

    def _to_disc(self, x: torch.Tensor) -> torch.Tensor:
        return self.adversary.prepare(x, self.input_range)

    def _to_perceptual(self, x: torch.Tensor) -> torch.Tensor:
        return self.modality.network_input(x, self.input_range)

    # ------------------------------------------------------------------ one step
    def train_step(self, micro_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimizer step over this process's micro-batches; returns detached scalars."""
        acc, A = self.acc, len(micro_batches)
        gan_on = self.adversary is not None and self.adversary.active(self.step)
        models = [self.model] + ([self.discs] if self.discs is not None else [])
        logs: dict[str, torch.Tensor] = {}

        def add(prefix, d):
            for k, v in d.items():
                if isinstance(v, torch.Tensor) and v.numel() == 1:
                    key = f"{prefix}/{k}"
                    logs[key] = logs.get(key, 0.0) + v.detach().float().reshape(()) / A

        self.model.train()
        if self.perturbation is not None:
            if self.perturbation.schedule is not None:
                self.perturbation.step(self.step)
            alpha, delta = self.perturbation.alpha, self.perturbation.delta
            logs["stats/perturb_alpha"], logs["stats/perturb_delta"] = torch.tensor(alpha), torch.tensor(float(delta))
        for x in micro_batches:
            x = x.to(acc.device, non_blocking=True)
            with acc.accumulate(*models):
                with acc.autocast():
                    out = self.model(x)
                    losses = dict(out.losses)
                    recon = out.recon
                    same = recon is not None and recon.shape == x.shape
                    if same:
                        add("stats", {"recon_mse": F.mse_loss(recon.detach().float(), x.float())})
                    if self.rec_weight > 0:
                        if not same:
                            raise ValueError(f"reconstruction loss needs recon shaped like the input {tuple(x.shape)}, "
                                             f"got {None if recon is None else tuple(recon.shape)}")
                        fn = F.l1_loss if self.rec_type == "l1" else F.mse_loss
                        losses["reconstruction"] = self.rec_weight * fn(recon.float(), x.float())
                    if not same and (self.perceptual is not None or gan_on):
                        raise ValueError(f"perceptual / GAN terms need a reconstruction shaped like the input "
                                         f"{tuple(x.shape)}; {type(self.raw_model).__name__} returned "
                                         f"{None if recon is None else tuple(recon.shape)} (disable them in the recipe)")
                    if self.perceptual is not None:
                        losses["perceptual"] = self.perceptual_weight * self.perceptual(
                            self._to_perceptual(recon), self._to_perceptual(x))
                    if gan_on:
                        losses.update(self.adversary.generator_terms(self._to_disc(x), self._to_disc(recon)))
                    if not losses:
                        raise ValueError(f"{type(self.raw_model).__name__}.forward returned no losses and the recipe "
                                         "adds none (set losses.reconstruction.weight)")
                    loss = sum(losses.values())
                acc.backward(loss)
                add("loss", {**losses, "total": loss})
                add("stats", out.stats)
                if gan_on:
                    with acc.autocast():
                        d_losses, d_stats = self.adversary.discriminator_terms(
                            self.discs, self._to_disc(x), self._to_disc(recon.detach()),
                            reduce=lambda t: acc.reduce(t, "mean"))
                        d_loss = sum(d_losses.values()) / A  # as acc.backward scales the generator's
                    self.d_scaler.scale(d_loss).backward()
                    add("loss", d_losses)
                    add("stats", d_stats)
        clip = float(self.cfg["grad_clip"])
        if clip > 0:
            logs["stats/grad_norm"] = acc.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], clip).detach().float()
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        if gan_on:
            self.d_scaler.unscale_(self.opt_d)
            if clip > 0:
                logs["stats/grad_norm_disc"] = torch.nn.utils.clip_grad_norm_(
                    self.discs.parameters(), clip).detach().float()
            self.d_scaler.step(self.opt_d)
            self.d_scaler.update()
            self.sched_d.step()
            self.opt_d.zero_grad(set_to_none=True)
        logs["stats/lr"] = torch.tensor(self.sched.get_last_lr()[0])
        return logs

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict[str, float]:
        """Train to ``max_steps`` (or to ``stop_at_step``, with a checkpoint there, when set and
        smaller); returns the last logged values (and the final eval metrics at ``max_steps``)."""
        cfg, acc = self.cfg, self.acc
        max_steps = int(cfg["max_steps"])
        stop = min(max_steps, int(cfg["stop_at_step"]) or max_steps)
        log_every, eval_every = max(1, int(cfg["log_every"])), int(cfg["eval_every"])
        ckpt_every = int(cfg["checkpoint_every"])
        bar = None
        if self.main and cfg["progress"]:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_steps, initial=self.step, desc=cfg["name"], dynamic_ncols=True, file=sys.stderr)
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        window: dict[str, torch.Tensor] = {}  # sums since the last log line (tensors: no host sync)
        counts: dict[str, int] = {}
        while self.step < stop:
            micro = [next(self._iter) for _ in range(int(cfg["grad_accum"]))]
            for k, v in self.train_step(micro).items():
                window[k] = window.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.raw_model, self.step)
            if bar is not None:
                bar.update(1)
            if self.step % log_every == 0 or self.step == stop:
                steps = max(counts.values(), default=1)
                last = self._log({k: v / counts[k] for k, v in window.items()}, (time.perf_counter() - t0) / steps)
                window, counts = {}, {}
                t0 = time.perf_counter()
                if bar is not None:
                    bar.set_postfix(loss=f"{last.get('loss/total', float('nan')):.4f}")
            if (eval_every and self.step % eval_every == 0) or self.step == max_steps:
                last.update(self.evaluate())
            if (ckpt_every and self.step % ckpt_every == 0) or self.step == stop:
                self.save()
        if bar is not None:
            bar.close()
        self.logger.close()
        acc.wait_for_everyone()
        return last

    def _log(self, logs: dict[str, torch.Tensor], seconds: float) -> dict[str, float]:
        """Log the window averages ``logs`` (every process must call it: values are averaged over
        processes); ``seconds``: wall time per step."""
        keys = sorted(logs)
        values = torch.stack([torch.as_tensor(logs[k], dtype=torch.float32, device=self.acc.device).reshape(())
                              for k in keys])
        values = self.acc.reduce(values, "mean") if self.acc.num_processes > 1 else values
        row = dict(zip(keys, values.tolist()))
        row["stats/seconds_per_step"] = seconds
        self.logger.log(self.step, row)
        show = " ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in row.items() if k.startswith("loss/"))
        if "stats/recon_mse" in row:
            show += f" recon_mse={row['stats/recon_mse']:.4g}"
        self._print(f"step {self.step}/{self.cfg['max_steps']} {show}")
        return row

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics (main process; EMA weights when enabled and ``eval.use_ema``)."""
        from .evaluation import evaluate

        ecfg, acc = self.cfg["eval"], self.acc
        metrics: dict[str, float] = {}
        if self.main and int(ecfg.get("num_samples", 0)) > 0:
            model = self.ema.shadow if (self.ema is not None and ecfg.get("use_ema", True)) else self.raw_model
            was_training = model.training
            model.eval()
            with torch.random.fork_rng(devices=[acc.device] if acc.device.type == "cuda" else []):
                torch.manual_seed(int(self.cfg["seed"]))
                raw = evaluate(model, self.val_set, modality=self.modality,
                               num_samples=int(ecfg.get("num_samples", 8)), batch_size=int(ecfg.get("batch_size", 4)),
                               out_dir=self.out, step=self.step, save_samples=int(ecfg.get("save_samples", 4)),
                               device=acc.device)
            model.train(was_training)
            metrics = {f"eval/{k}": float(v) for k, v in raw.items()}
            self.logger.log(self.step, metrics)
            self._print(f"eval step {self.step}: " + " ".join(f"{k[5:]}={v:.4g}" for k, v in metrics.items()))
        acc.wait_for_everyone()
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> Path | None:
        """Write ``<output_dir>/step_XXXXXXXX`` atomically (all processes must call it)."""
        acc = self.acc
        if self.main:
            tmp = begin_checkpoint(self.out, self.step)
        acc.wait_for_everyone()
        tmp = self.out / f".tmp-step_{self.step:08d}"
        save_torch(rng_state(), tmp / f"rng_rank{acc.process_index}.pt")
        final = None
        if self.main:
            _save_tokenizer(self.raw_model, tmp)
            if self.ema is not None:
                _save_tokenizer(self.ema.shadow, tmp / "ema")
            save_torch(self.opt.state_dict(), tmp / "optimizer.pt")
            save_torch(self.sched.state_dict(), tmp / "scheduler.pt")
            if self.adversary is not None:
                from zoo.checkpoint import save_state_dict

                save_state_dict(self.adversary.state_dict(), tmp / "adversary.safetensors")
                save_torch(self.opt_d.state_dict(), tmp / "optimizer_disc.pt")
                save_torch(self.d_scaler.state_dict(), tmp / "scaler_disc.pt")
                save_torch(self.sched_d.state_dict(), tmp / "scheduler_disc.pt")
            if acc.scaler is not None:
                save_torch(acc.scaler.state_dict(), tmp / "scaler.pt")
        acc.wait_for_everyone()
        if self.main:
            state = {"step": self.step, "num_processes": acc.num_processes, "recipe": self.cfg,
                     "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            final = commit_checkpoint(self.out, self.step, state)
            prune_checkpoints(self.out, int(self.cfg["keep_last"]))
            self._print(f"checkpoint {final}")
        acc.wait_for_everyone()
        return final

    def _load(self, ckpt: Path, model: torch.nn.Module) -> None:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        _load_tokenizer(model, ckpt)
        if self.ema is not None:
            if (ckpt / "ema").is_dir():
                _load_tokenizer(self.ema.shadow, ckpt / "ema")
            else:
                self.ema.shadow.load_state_dict(model.state_dict())
        self.opt.load_state_dict(load_torch(ckpt / "optimizer.pt"))
        self.sched.load_state_dict(load_torch(ckpt / "scheduler.pt"))
        if self.adversary is not None:
            if (ckpt / "adversary.safetensors").is_file():
                from zoo.checkpoint import load_state_dict_strict

                load_state_dict_strict(self.adversary, ckpt / "adversary.safetensors", source=str(ckpt))
                self.opt_d.load_state_dict(load_torch(ckpt / "optimizer_disc.pt"))
                if (ckpt / "scaler_disc.pt").is_file():
                    self.d_scaler.load_state_dict(load_torch(ckpt / "scaler_disc.pt"))
                self.sched_d.load_state_dict(load_torch(ckpt / "scheduler_disc.pt"))
        if self.acc.scaler is not None and (ckpt / "scaler.pt").is_file():
            self.acc.scaler.load_state_dict(load_torch(ckpt / "scaler.pt"))
        self.step = int(state["step"])

    def _restore_rng(self, ckpt: Path) -> None:
        path = ckpt / f"rng_rank{self.acc.process_index}.pt"
        if path.is_file():
            set_rng_state(load_torch(path))
        else:  # resumed with more processes than were saved: a fresh, step-dependent seed
            _seed_all(int(self.cfg["seed"]) * 1000 + 7919 * self.step + self.acc.process_index)


def train(recipe: dict, resume: bool = False) -> dict[str, Any]:
    """Build a :class:`Trainer` for ``recipe`` and run it; returns the last logged metrics."""
    return Trainer(recipe, resume=resume).fit()


def _accelerator(cfg: dict):
    """An ``accelerate.Accelerator`` for the recipe's device, mixed precision and accumulation."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    device = str(cfg["device"])
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda:"):
        torch.cuda.set_device(int(device.split(":")[1]))
    # accelerate keeps its settings in a per-process singleton: forget those of an earlier Trainer in
    # this process (tests, notebooks) so that this recipe's mixed precision applies
    AcceleratorState._reset_state()
    return Accelerator(
        cpu=device == "cpu", mixed_precision=cfg["mixed_precision"],
        gradient_accumulation_steps=cfg["grad_accum"], step_scheduler_with_optimizer=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=bool(cfg["find_unused_parameters"]))])
