"""The records of a ``zoo tokenize`` output folder: ``run.json``, ``manifest.json``, ``errors.jsonl``.

- ``run.json`` (written when a run starts): everything that decides the output (tokenizer
  identity, input fingerprint, protocol, augmentation, dtype, world size, shard size). ``--resume``
  refuses to continue a folder whose ``run.json`` differs, so resumed shards never mix settings.
- ``_ranks/rank-RRRRR.json``: written by each rank when it has finished all its shards.
- ``manifest.json`` and ``errors.jsonl`` (written by rank 0 once every rank has finished): the run
  settings plus the zoo version, counts per shard, the label map; one error line per input that
  could not be read or tokenized, with the reason.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_path, state_dict_sha256
from .shards import SHARD_GLOB, read_shard_info

__all__ = ["tokenizer_identity", "write_json", "start_run", "finish_rank", "finalize", "RANKS_DIR"]

RANKS_DIR = "_ranks"
FORMAT = "zoo-tokens"
FORMAT_VERSION = 1


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    with atomic_path(path, mode=0o644) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def tokenizer_identity(tok, name: str, revision: str | None) -> dict[str, Any]:
    """Name, class, revision and the sha256 of the config (canonical JSON) and of the weights."""
    config = {"tokenizer_class": type(tok).__name__, **tok.config}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    cb = tok.codebook_size
    return {"name": name, "class": type(tok).__name__, "revision": revision,
            "config_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
            "weights_sha256": state_dict_sha256(tok.state_dict()),
            "codebook_size": list(cb) if isinstance(cb, tuple) else cb}


def _existing(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))


def start_run(out_dir: Path, run: dict[str, Any], resume: bool) -> None:
    """Rank 0, before any shard: check the folder (empty, or a resumable run with identical
    settings) and write ``run.json``. Raises ``FileExistsError`` / ``ValueError`` otherwise."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / "run.json"
    if run_file.is_file():
        if not resume:
            raise FileExistsError(f"{out_dir} already holds a tokenize run; pass --resume to continue it "
                                  "or choose an empty folder")
        before = json.loads(run_file.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(before) | set(run) if before.get(k) != run.get(k))
        if changed:
            first, now = ({k: d.get(k) for k in changed} for d in (before, run))
            raise ValueError(f"cannot resume {out_dir}: settings differ from the first run in {changed} "
                             f"(first: {first}, now: {now})")
        # rewritten when the resumed run completes; temporary files of killed writes are dropped
        stale = [out_dir / "manifest.json", out_dir / "errors.jsonl", *out_dir.glob(".part-*.tmp"),
                 *(out_dir / RANKS_DIR).glob("rank-*.json")]
        for p in stale:
            p.unlink(missing_ok=True)
        return
    leftovers = _existing(out_dir)
    if leftovers:
        raise FileExistsError(f"{out_dir} is not empty ({leftovers[:5]}) and holds no tokenize run")
    write_json(run_file, run)


def finish_rank(out_dir: Path, rank: int, shards: list[str], num_inputs: int, notes: list[str]) -> None:
    """Record that ``rank`` has written all its shards."""
    write_json(out_dir / RANKS_DIR / f"rank-{rank:05d}.json",
               {"rank": rank, "shards": shards, "inputs": num_inputs, "notes": notes})


def finalize(out_dir: Path, run: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Rank 0, after every rank finished: check that every rank's shards are present with no key
    twice, then write ``errors.jsonl`` and ``manifest.json``. Returns the manifest."""
    import pyarrow.parquet as pq

    world = run["world_size"]
    expected: list[str] = []
    notes: list[str] = []
    for r in range(world):
        f = out_dir / RANKS_DIR / f"rank-{r:05d}.json"
        if not f.is_file():
            raise RuntimeError(f"rank {r} has not finished ({f} is missing); run again with --resume")
        rec = json.loads(f.read_text(encoding="utf-8"))
        expected += rec["shards"]
        notes += rec.get("notes", [])
    present = sorted(p.name for p in out_dir.glob(SHARD_GLOB))
    missing, stray = sorted(set(expected) - set(present)), sorted(set(present) - set(expected))
    if missing or stray:
        raise RuntimeError(f"{out_dir}: shards missing {missing[:5]} / unexpected {stray[:5]}")
    shards = [read_shard_info(out_dir / name) for name in sorted(expected)]
    rows_seen, keys_seen, dup = set(), set(), []
    cols = ["key", "view"] if "view" in run["columns"] else ["key"]
    for s in shards:
        table = pq.read_table(out_dir / s.file, columns=cols)
        for row in zip(*(table.column(c).to_pylist() for c in cols)):
            if row in rows_seen:
                dup.append(row[0])
            rows_seen.add(row)
            keys_seen.add(row[0])
    for e in (e for s in shards for e in s.errors):
        if e["key"] in keys_seen:
            dup.append(e["key"])
        keys_seen.add(e["key"])
    if dup:
        raise ValueError(f"{out_dir}: keys occur more than once across shards (WebDataset keys must be unique): "
                         f"{dup[:5]}")
    errors = [e for s in shards for e in s.errors]
    with atomic_path(out_dir / "errors.jsonl", mode=0o644) as tmp:
        tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors), encoding="utf-8")
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, **run, **extra,
        "num_rows": sum(s.rows for s in shards), "num_inputs": sum(s.items for s in shards),
        "num_errors": len(errors), "notes": notes,
        "shards": [{"file": s.file, "rank": s.rank, "shard": s.shard, "rows": s.rows, "inputs": s.items,
                    "errors": len(s.errors)} for s in shards],
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
