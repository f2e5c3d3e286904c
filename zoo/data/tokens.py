"""``TokenDataset``: the output folder of ``zoo tokenize`` as a memory-mapped PyTorch dataset.

The Parquet shards (compressed) are unpacked once into flat numpy arrays next to them
(``OUTPUT_DIR/.token_cache/``: ids in the manifest's integer type, per-row offsets, shapes,
labels, keys) and opened with ``np.load(mmap_mode="r")``: item access reads only that item's
pages, and DataLoader workers share the page cache instead of copying the dataset. The cache is
rebuilt when ``manifest.json`` changes and is written atomically (a temporary folder, then a
rename), so concurrent training processes may open the same folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["TokenDataset"]

_CACHE = ".token_cache"


class TokenDataset(torch.utils.data.Dataset):
    """``dataset[i]`` -> ``{"ids": LongTensor shaped like the tokenizer's ids (e.g. [N] or [N, G]),
    "key": str, "label": int (-1 without one), ...}`` plus ``"view"`` (augmented datasets) and
    ``"num_samples"`` (audio). Rows are in shard order (``part-RRRRR-SSSSS``).

    root: a ``zoo tokenize`` output folder (holding ``manifest.json``).
    cache_dir: where the memory-mapped arrays live (default ``root/.token_cache``).
    """

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path} not found: not a finished `zoo tokenize` output "
                                    "(an interrupted run completes with --resume)")
        raw = manifest_path.read_bytes()
        self.manifest: dict[str, Any] = json.loads(raw)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.root / _CACHE
        digest = hashlib.sha256(raw).hexdigest()
        stamp = self.cache_dir / "manifest.sha256"
        if not (stamp.is_file() and stamp.read_text().strip() == digest):
            self._build(digest)
        arrays = {p.stem: np.load(p, mmap_mode="r") for p in self.cache_dir.glob("*.npy")}
        self._ids, self._offsets, self._shapes = arrays["ids"], arrays["offsets"], arrays["shapes"]
        self._keys, self._labels = arrays["keys"], arrays.get("labels")
        self._views, self._num_samples = arrays.get("views"), arrays.get("num_samples")

    # ----------------------------------------------------------------- metadata
    @property
    def label_map(self) -> dict[str, int] | None:
        """Class folder / manifest label -> integer label (None when labels were integers or absent)."""
        return self.manifest.get("label_map")

    @property
    def codebook_size(self):
        return self.manifest["tokenizer"]["codebook_size"]

    @property
    def labels(self) -> np.ndarray | None:
        """int64 ``[len]`` (-1: no label), memory-mapped; None without a label column."""
        return self._labels

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} rows")
        i = int(i) % len(self)
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        ids = torch.from_numpy(np.asarray(self._ids[lo:hi]).astype(np.int64)).reshape(tuple(self._shapes[i]))
        item = {"ids": ids, "key": str(self._keys[i])}
        item["label"] = int(self._labels[i]) if self._labels is not None else -1
        if self._views is not None:
            item["view"] = str(self._views[i])
        if self._num_samples is not None:
            item["num_samples"] = int(self._num_samples[i])
        return item

    # ----------------------------------------------------------------- cache
    def _build(self, digest: str) -> None:
        import pyarrow.parquet as pq

        columns = self.manifest["columns"]
        ids_dtype = np.dtype(self.manifest["ids_dtype"])
        parts: dict[str, list] = {k: [] for k in ("ids", "lengths", "shapes", "keys", "labels", "views",
                                                  "num_samples")}
        for shard in self.manifest["shards"]:
            table = pq.read_table(self.root / shard["file"])
            ids = table.column("ids").combine_chunks()
            parts["ids"].append(ids.values.to_numpy(zero_copy_only=False).astype(ids_dtype, copy=False))
            parts["lengths"].append(np.diff(ids.offsets.to_numpy()))
            parts["shapes"] += table.column("shape").to_pylist()
            parts["keys"] += table.column("key").to_pylist()
            if "label" in columns:
                parts["labels"] += [-1 if v is None else v for v in table.column("label").to_pylist()]
            if "view" in columns:
                parts["views"] += table.column("view").to_pylist()
            if "num_samples" in columns:
                parts["num_samples"] += table.column("num_samples").to_pylist()
        lengths = np.concatenate(parts["lengths"]) if parts["lengths"] else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        arrays = {"ids": np.concatenate(parts["ids"]) if parts["ids"] else np.zeros(0, ids_dtype),
                  "offsets": offsets, "shapes": np.asarray(parts["shapes"], np.int64).reshape(len(lengths), -1)
                  if len(lengths) else np.zeros((0, 1), np.int64),
                  "keys": np.asarray(parts["keys"], dtype=str)}
        for name in ("labels", "num_samples"):
            if parts[name]:
                arrays[name] = np.asarray(parts[name], np.int64)
        if parts["views"]:
            arrays["views"] = np.asarray(parts["views"], dtype=str)
        self.cache_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.cache_dir.name}.", dir=self.cache_dir.parent))
        try:
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", arr)
            (tmp / "manifest.sha256").write_text(digest + "\n")
            if self.cache_dir.exists():
                shutil.rmtree(self.cache_dir)
            try:
                os.replace(tmp, self.cache_dir)
            except OSError:  # another process renamed its identical cache first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
