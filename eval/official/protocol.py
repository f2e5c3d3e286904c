"""The timing protocol of the official comparisons: allocator settings, interleaving, medians.

Both sides run in their own long-lived worker process per allocator setting. glibc's allocator
returns large freed blocks to the OS by default (``mmap`` for blocks above a dynamic threshold,
heap trimming), so code that allocates large temporaries pays page faults on every call; raising
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` keeps those blocks and removes most of
that cost (the kernel may still reclaim idle heap pages, e.g. with DAMON, so faults do not always
vanish; the workers record them per call). Which side gains more depends on its allocation
pattern, so a speed-up is counted only where it holds under both settings (:func:`speedup_summary`).

Calls are interleaved ABBA (official, zoo, zoo, official, ...): slow drifts of the machine
(thermal, other processes) then hit both sides alike. Each call records wall time and the CPU
time of its process; medians over the timed rounds after the warm-up calls.
"""
from __future__ import annotations

import statistics
from typing import Iterable

__all__ = ["ALLOCATOR_SETTINGS", "RAISED_THRESHOLD", "allocator_env", "thread_env", "interleaved_order",
           "median_times", "speedup_summary"]

#: glibc thresholds of the "raised" setting: 1 GiB, above any single temporary of these models,
#: so freed blocks stay in the heap (glibc accepts it as an environment tunable; see the probe in
#: :mod:`eval.official.worker`, which records whether it took effect)
RAISED_THRESHOLD = 1 << 30

#: setting name -> environment variables it sets (the default setting sets none and removes them)
ALLOCATOR_SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "raised": {"MALLOC_MMAP_THRESHOLD_": str(RAISED_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(RAISED_THRESHOLD)},
}
_ALLOCATOR_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                   "GLIBC_TUNABLES")


def allocator_env(setting: str, base: dict[str, str]) -> dict[str, str]:
    """``base`` (an environment) with the glibc allocator variables of ``setting`` and no others
    (inherited ones are removed so that "default" really is glibc's default)."""
    if setting not in ALLOCATOR_SETTINGS:
        raise ValueError(f"unknown allocator setting {setting!r}; known: {sorted(ALLOCATOR_SETTINGS)}")
    env = {k: v for k, v in base.items() if k not in _ALLOCATOR_VARS}
    env.update(ALLOCATOR_SETTINGS[setting])
    return env


def thread_env(threads: int, base: dict[str, str]) -> dict[str, str]:
    """``base`` with OpenMP / MKL pinned to ``threads`` threads."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    env = dict(base)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def interleaved_order(rounds: int, sides: tuple[str, str] = ("official", "zoo")) -> list[str]:
    """ABBA order of ``2 * rounds`` calls: round i runs ``sides`` forward when i is even, reversed
    when odd, so each side goes first in half the rounds."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    out: list[str] = []
    for i in range(rounds):
        out += list(sides if i % 2 == 0 else sides[::-1])
    return out


def median_times(calls: Iterable[dict]) -> dict[str, float]:
    """Medians (ms) of the ``wall_ms`` and ``cpu_ms`` of the timed calls of one side."""
    calls = list(calls)
    if not calls:
        raise ValueError("no timed calls")
    return {"wall_ms": statistics.median(c["wall_ms"] for c in calls),
            "cpu_ms": statistics.median(c["cpu_ms"] for c in calls), "n": len(calls)}


def speedup_summary(per_setting: dict[str, dict[str, dict[str, float]]], threshold: float = 1.0) -> dict:
    """Speed-ups official / zoo per allocator setting, by wall and by CPU time.

    per_setting: ``{setting: {"official": medians, "zoo": medians}}`` (see :func:`median_times`).
    Returns ``{"by_setting": {setting: {"wall": x, "cpu": x}}, "min_wall", "min_cpu",
    "holds_under_all": min_wall >= threshold}``: the claim is the smaller of the settings' speed-ups.
    """
    if not per_setting:
        raise ValueError("no allocator settings measured")
    by = {s: {"wall": m["official"]["wall_ms"] / m["zoo"]["wall_ms"], "cpu": m["official"]["cpu_ms"] / m["zoo"]["cpu_ms"]}
          for s, m in per_setting.items()}
    min_wall = min(v["wall"] for v in by.values())
    min_cpu = min(v["cpu"] for v in by.values())
    return {"by_setting": by, "min_wall": min_wall, "min_cpu": min_cpu, "threshold": threshold,
            "holds_under_all": min_wall >= threshold}
