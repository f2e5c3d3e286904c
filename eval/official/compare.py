"""Run one official-vs-zoo comparison: outputs checked, both sides timed (see :mod:`.protocol`)."""
from __future__ import annotations

import datetime
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from . import get_family
from .checkout import require_checkout
from .machine import machine_info
from .protocol import (ALLOCATOR_SETTINGS, allocator_env, interleaved_order, median_times, speedup_summary,
                       thread_env)
from .worker import Worker

__all__ = ["compare", "checkout_commit"]


def checkout_commit(root: Path | None) -> str | None:
    """The git HEAD of a checkout (None when it is not a git work tree, or for an installed package)."""
    if root is None:
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _validate(preset: str, family, rounds: int, warmup: int, threads: int, settings) -> None:
    if preset not in family.PRESETS:
        raise ValueError(f"unknown preset {preset!r} for {family.__name__.rsplit('.', 1)[-1]}; "
                         f"choose one of {', '.join(family.PRESETS)}")
    if rounds < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"need rounds >= 1, warmup >= 0, threads >= 1; got {rounds}, {warmup}, {threads}")
    unknown = [s for s in settings if s not in ALLOCATOR_SETTINGS]
    if unknown or not settings:
        raise ValueError(f"allocator settings must be among {sorted(ALLOCATOR_SETTINGS)}, got {list(settings)}")


def compare(family_name: str, preset: str, src: str | os.PathLike | None, *, rounds: int = 7, warmup: int = 2,
            threads: int = 1, settings: tuple[str, ...] = ("default", "raised"), seed: int = 0,
            options: dict | None = None, workdir: str | os.PathLike | None = None,
            log: Callable[[str], None] = print) -> dict:
    """Check and time the zoo against the official code of ``family_name`` at ``preset``.

    src: the official checkout (validated first; see :func:`~eval.official.checkout.require_checkout`).
    rounds / warmup: timed and untimed calls per side and allocator setting (interleaved ABBA).
    options: family options (e.g. ``{"batch": 8}``). The outputs are checked once, under the first
    setting, before any timing. Returns the JSON-able result (see ``scripts/compare_official.py``).
    """
    family = get_family(family_name)
    _validate(preset, family, rounds, warmup, threads, settings)
    root = require_checkout(family_name, family.SOURCE, src)
    options = family.resolve_options(preset, dict(options or {}))
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"zoo_compare_{family_name}_")
        workdir = tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result = {"family": family_name, "preset": preset, "options": options,
              "description": family.describe(preset, options),
              "official": {"repo": family.SOURCE.repo, "path": str(root) if root else None,
                           "commit": checkout_commit(root), "written_against": family.SOURCE.commit},
              "machine": machine_info(), "threads": threads, "rounds": rounds, "warmup": warmup, "seed": seed,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {}}
    try:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in family.make_inputs(preset, options).items()},
                  str(workdir / "inputs.safetensors"))
        for n, setting in enumerate(settings):
            env = thread_env(threads, allocator_env(setting, dict(os.environ)))
            base = {"family": family_name, "preset": preset, "src": str(root) if root else None,
                    "workdir": str(workdir), "threads": threads, "seed": seed, "options": options}
            log(f"[{setting}] building the official side ...")
            workers = {"official": Worker(dict(base, side="official"), env)}
            try:
                log(f"[{setting}] building the zoo side ...")
                workers["zoo"] = Worker(dict(base, side="zoo"), env)
                if n == 0:
                    from safetensors.torch import load_file

                    off_path = workers["official"].call("outputs", None)
                    zoo_path = workers["zoo"].call("outputs", off_path)
                    result["check"] = family.check(preset, options, load_file(off_path), load_file(zoo_path))
                    log(f"outputs: {result['check']['summary']}")
                for side in interleaved_order(warmup) if warmup else []:
                    workers[side].call("run")
                calls: dict[str, list] = {"official": [], "zoo": []}
                for i, side in enumerate(interleaved_order(rounds)):
                    calls[side].append(workers[side].call("run"))
                    log(f"[{setting}] round {i // 2 + 1}/{rounds} {side}: {calls[side][-1]['wall_ms']:.1f} ms")
                entry = {"env": {k: v for k, v in env.items() if k.startswith("MALLOC_") or k.endswith("_NUM_THREADS")}}
                for side, w in workers.items():
                    entry[side] = {**median_times(calls[side]), "calls": calls[side], **w.info, **w.stop()}
                result["settings"][setting] = entry
            finally:
                for w in workers.values():
                    w.close()
        result["speedup"] = speedup_summary({s: {k: e[k] for k in ("official", "zoo")}
                                             for s, e in result["settings"].items()})
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result
