"""Atomic training checkpoints: one folder per step, ``<output_dir>/step_00001234``.

A checkpoint is first written to ``<output_dir>/.tmp-step_00001234`` and renamed into place
once every file is on disk, so a run killed at any moment (SIGKILL included) leaves either a
complete checkpoint or none. Tensors go to safetensors, optimizer / scheduler states to
``torch.save`` files read back with ``weights_only=True`` (no pickled code), bookkeeping to
``trainer_state.json``; ``rng_rank<r>.pt`` holds each process's random-generator states.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["checkpoint_dir", "list_checkpoints", "latest_checkpoint", "begin_checkpoint", "commit_checkpoint",
           "prune_checkpoints", "save_torch", "load_torch", "rng_state", "set_rng_state", "STATE_FILE"]

STATE_FILE = "trainer_state.json"
_STEP_RE = re.compile(r"^step_(\d+)$")


def checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / f"step_{int(step):08d}"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints (folders holding ``trainer_state.json``) as sorted ``(step, path)``."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1][1] if ckpts else None


def _tmp_dir(output_dir, step) -> Path:
    return Path(output_dir) / f".tmp-{checkpoint_dir(output_dir, step).name}"


def begin_checkpoint(output_dir: str | os.PathLike, step: int) -> Path:
    """Create (empty) the temporary folder of step ``step``; main process only."""
    tmp = _tmp_dir(output_dir, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_checkpoint(output_dir: str | os.PathLike, step: int, state: dict[str, Any]) -> Path:
    """Write ``trainer_state.json`` last, fsync, rename the temporary folder into place."""
    tmp = _tmp_dir(output_dir, step)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, default=str))
    _fsync_tree(tmp)
    final = checkpoint_dir(output_dir, step)
    if final.exists():  # same step written again (e.g. the final save after a resume at max_steps)
        trash = Path(output_dir) / f".trash-{final.name}"
        if trash.exists():
            shutil.rmtree(trash)
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash)
    else:
        os.rename(tmp, final)
    fd = os.open(Path(output_dir), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def prune_checkpoints(output_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints and stale temp folders."""
    removed = []
    ckpts = list_checkpoints(output_dir)
    for _, p in ckpts[: max(0, len(ckpts) - keep_last)]:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    for p in Path(output_dir).glob(".trash-step_*"):
        shutil.rmtree(p, ignore_errors=True)
    return removed


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` of tensors / numbers / containers (readable with ``weights_only=True``)."""
    torch.save(obj, path)


def load_torch(path: Path) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint file missing: {path} (is the checkpoint complete?)")
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """Random states of python, numpy, torch CPU and (if present) CUDA of this process."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
