"""Parquet shards of ``zoo tokenize``: columns, the smallest id type, atomic writes, reading back.

One shard ``part-RRRRR-SSSSS.parquet`` holds the rows of ``shard_size`` consecutive inputs of rank
R (input order; one row per augmented view). Its key-value metadata carries the errors of those
inputs (``zoo.errors``, JSON) and how many inputs it covers (``zoo.items``), so a shard file is a
complete record: it is written to a temporary name and renamed, and a resumed run skips it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_path

__all__ = ["ShardWriter", "shard_name", "id_dtype", "read_shard_info", "ShardInfo", "SHARD_GLOB"]

SHARD_GLOB = "part-*-*.parquet"


def shard_name(rank: int, shard: int) -> str:
    return f"part-{rank:05d}-{shard:05d}.parquet"


def id_dtype(codebook_size) -> np.dtype:
    """Smallest unsigned integer type that holds every id of ``codebook_size`` (int or per-group tuple)."""
    top = max(codebook_size) if isinstance(codebook_size, (tuple, list)) else int(codebook_size)
    for dt in (np.uint8, np.uint16, np.uint32):
        if top - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclass(frozen=True)
class ShardInfo:
    """A finished shard as recorded in ``manifest.json``."""

    file: str
    rank: int
    shard: int
    rows: int
    items: int
    errors: list[dict[str, Any]]


class ShardWriter:
    """Builds the Arrow schema for one run and writes shards atomically.

    ids_dtype: numpy dtype of ids; labels / num_samples / view / input_shape: whether those
    columns exist (they apply to every row of the run or to none). Columns: ``key`` (string),
    ``ids`` (flat list, C order), ``shape`` (ids shape of the item, e.g. ``[64]`` or ``[N, G]``),
    ``view`` (augmented view), ``label``, ``num_samples`` (audio input length, for decode),
    ``input_shape`` (``[H, W]`` / ``[T, H, W]`` when sizes vary).
    """

    def __init__(self, out_dir: str | os.PathLike, ids_dtype: np.dtype, labels: bool, num_samples: bool,
                 view: bool, input_shape: bool):
        import pyarrow as pa

        self.out_dir, self.ids_dtype = Path(out_dir), np.dtype(ids_dtype)
        fields = [pa.field("key", pa.string(), nullable=False),
                  pa.field("ids", pa.list_(pa.from_numpy_dtype(self.ids_dtype)), nullable=False),
                  pa.field("shape", pa.list_(pa.int32()), nullable=False)]
        if view:
            fields.append(pa.field("view", pa.string(), nullable=False))
        if labels:
            fields.append(pa.field("label", pa.int64()))
        if num_samples:
            fields.append(pa.field("num_samples", pa.int64()))
        if input_shape:
            fields.append(pa.field("input_shape", pa.list_(pa.int32())))
        self.schema = pa.schema(fields)

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def write(self, rank: int, shard: int, rows: list[dict[str, Any]], items: int,
              errors: list[dict[str, Any]]) -> ShardInfo:
        """Write ``rows`` (dicts with the schema's columns; ``ids`` a numpy array) as one shard:
        a temporary file in the same folder, fsynced, then renamed onto the final name."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols: dict[str, Any] = {}
        for f in self.schema:
            if f.name == "ids":
                flat = [np.asarray(r["ids"]).reshape(-1).astype(self.ids_dtype, copy=False) for r in rows]
                offsets = np.zeros(len(rows) + 1, np.int32)
                np.cumsum([len(a) for a in flat], out=offsets[1:])
                values = np.concatenate(flat) if flat else np.zeros(0, self.ids_dtype)
                cols["ids"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=f.type)
            else:
                cols[f.name] = pa.array([r.get(f.name) for r in rows], type=f.type)
        meta = {"zoo.items": str(int(items)), "zoo.errors": json.dumps(errors, ensure_ascii=False)}
        table = pa.table(cols, schema=self.schema.with_metadata(meta))
        name = shard_name(rank, shard)
        with atomic_path(self.out_dir / name, mode=0o644) as tmp:  # fsynced temporary file, then os.replace
            pq.write_table(table, tmp, compression="zstd")
        return ShardInfo(name, rank, shard, len(rows), int(items), list(errors))


def read_shard_info(path: str | os.PathLike) -> ShardInfo:
    """The manifest record of a finished shard (from its footer; no rows are read)."""
    import pyarrow.parquet as pq

    path = Path(path)
    md = pq.read_metadata(path)
    kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}
    if "zoo.items" not in kv:
        raise ValueError(f"{path} is not a zoo tokenize shard (no zoo.items metadata)")
    _, rank, shard = path.stem.split("-")
    return ShardInfo(path.name, int(rank), int(shard), md.num_rows, int(kv["zoo.items"]),
                     json.loads(kv.get("zoo.errors", "[]")))
