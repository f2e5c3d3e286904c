"""Checkpoint packaging: a finished training run -> a shipped zoo-format folder (``python -m zoo package``).

``python -m zoo package NAME=RUN_DIR [NAME=RUN_DIR ...] [--no-ema] [--dest DIR]`` writes
``DIR/NAME/{config.json, model.safetensors, training_log.csv}`` (default ``DIR``: ``zoo/weights``, where
the registry's packaged demo entries live) from the newest complete checkpoint of ``RUN_DIR``: its EMA
weights (``step_*/ema``; ``--no-ema``: the raw weights), parameters stored as float16 (buffers, e.g.
dMel's filterbank or an EMA codebook, stay float32; loading casts back to float32), and the run's
``metrics.csv`` as ``training_log.csv`` (``tests/test_demo.py`` retrains the start of a demo recipe and
compares against it). Nothing else is left in ``DIR/NAME``. Load the result with
``zoo.from_pretrained(DIR/NAME)`` or ``local-dir:DIR/NAME`` on the command line.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..checkpoint import atomic_path
from .checkpointing import STATE_FILE, latest_checkpoint

__all__ = ["package_checkpoint", "add_arguments", "run", "WEIGHTS_ROOT", "PACKAGED_FILES"]

#: where the zoo's packaged checkpoints live (``WeightSource(packaged="weights/NAME")``)
WEIGHTS_ROOT = Path(__file__).resolve().parents[1] / "weights"
#: what one packaged tokenizer folder holds
PACKAGED_FILES = ("config.json", "model.safetensors", "training_log.csv")
#: the training log the trainer writes in its output folder
TRAINING_LOG = "metrics.csv"


def package_checkpoint(name: str, run_dir: str | Path, dest_root: str | Path = WEIGHTS_ROOT, use_ema: bool = True,
                       half: bool = True) -> Path:
    """Newest checkpoint of the training run ``run_dir`` -> ``dest_root/name/`` (:data:`PACKAGED_FILES`).

    use_ema: take the EMA weights (``step_*/ema``); half: store parameters as float16 (buffers stay
    float32). Returns the package folder.
    """
    from ..api import from_pretrained

    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"no complete checkpoint under {run_dir}")
    log = run_dir / TRAINING_LOG
    if not log.is_file():
        raise FileNotFoundError(f"{run_dir} has no {TRAINING_LOG} (the training log shipped with the weights)")
    src = ckpt / "ema" if use_ema else ckpt
    if use_ema and not src.is_dir():
        raise FileNotFoundError(f"{ckpt} has no EMA weights (ema/); the run trained without EMA: use --no-ema")
    tok = from_pretrained(src)
    if half:
        for p in tok.parameters():
            p.data = p.data.half()
    dest = Path(dest_root) / name
    dest.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(dest)
    with atomic_path(dest / "training_log.csv") as tmp:
        shutil.copyfile(log, tmp)
    for extra in dest.iterdir():  # keep exactly what the package ships
        if extra.name not in PACKAGED_FILES:
            if extra.is_dir():
                shutil.rmtree(extra)
            else:
                extra.unlink()
    steps = json.loads((ckpt / STATE_FILE).read_text())["step"]
    print(f"packaged {src} ({steps} steps) -> {dest}")
    return dest


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments (``zoo.cli`` adds them to its ``package`` sub-command)."""
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR",
                   help="package the newest checkpoint of the training run RUN_DIR as DEST/NAME")
    p.add_argument("--no-ema", action="store_true", help="the raw weights instead of the EMA ones")
    p.add_argument("--dest", default=str(WEIGHTS_ROOT), help=f"destination root (default {WEIGHTS_ROOT})")


def run(args: argparse.Namespace) -> int:
    """Package every ``NAME=RUN_DIR`` of parsed ``args``; ``ValueError`` for a malformed item."""
    items = []
    for item in args.runs:
        name, sep, run_dir = item.partition("=")
        if not sep or not name or not run_dir or "/" in name:
            raise ValueError(f"expected NAME=RUN_DIR, got {item!r}")
        items.append((name, run_dir))
    for name, run_dir in items:
        package_checkpoint(name, run_dir, dest_root=args.dest, use_ema=not args.no_ema)
    return 0

