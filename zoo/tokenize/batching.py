"""Reading items in DataLoader workers and encoding them in shape buckets, shard by shard.

:class:`ItemReader` reads and preprocesses one input (``zoo.modality``) -> its views, or the
reason it could not be read. :class:`ShardEncoder` receives items in input order, groups views of
equal shape into batches (a bucket per shape: nothing is padded or trimmed, so an item's ids do
not depend on its batch), encodes full buckets, and writes a shard once every item of it is done.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from .inputs import Item, open_item
from .shards import ShardWriter

__all__ = ["ItemReader", "ShardEncoder"]

#: flush the largest bucket when more than this many batches of views wait (bounded memory)
PENDING_BATCHES = 4


class ItemReader(torch.utils.data.Dataset):
    """``reader[j]`` -> ``{"i", "views" [V, ...] | None, "names", "error", "stage"}`` for input
    ``items[j] = (i, Item)``. flip: add the mirror image; crop: ten-crop side (None: no ten-crop)."""

    def __init__(self, items: list[tuple[int, Item]], modality, protocol, flip: bool = False,
                 crop: tuple[int, int] | None = None):
        self.items, self.modality, self.protocol = items, modality, protocol
        self.flip, self.crop = flip, crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, j: int) -> dict[str, Any]:
        i, item = self.items[j]
        if item.error is not None:
            return {"i": i, "views": None, "names": None, "error": item.error, "stage": "list"}
        try:
            x, _ = self.modality.load(open_item(item), self.protocol)
            views, names = self._views(x)
        except Exception as e:  # any unreadable input is reported, never fatal
            return {"i": i, "views": None, "names": None, "error": f"{type(e).__name__}: {e}", "stage": "read"}
        return {"i": i, "views": views, "names": names, "error": None, "stage": None}

    def _views(self, x: torch.Tensor) -> tuple[torch.Tensor, list[str] | None]:
        if self.crop is not None:
            from ..data.transforms import ten_crop

            return ten_crop(x, self.crop)
        if self.flip:
            return torch.stack([x, x.flip(-1)]), ["center", "center_flip"]
        return x[None], None


class _Shard:
    """Rows and errors of one shard being filled (by position of the input in the shard)."""

    def __init__(self, index: int, items: list[Item]):
        self.index, self.items = index, items
        self.rows: dict[int, list[dict]] = defaultdict(list)
        self.errors: dict[int, dict] = {}


class ShardEncoder:
    """Encodes the items of ``pending`` shards (``[(shard index, items)]``) arriving in order.

    Items are numbered ``shard * shard_size + position``; ``add`` takes ``ItemReader`` records,
    ``finish`` flushes what is left. ``errors`` counts inputs that could not be tokenized.
    """

    def __init__(self, tok, writer: ShardWriter, rank: int, pending: list[tuple[int, list[Item]]], shard_size: int,
                 batch_size: int, device: torch.device, amp: torch.dtype | None):
        self.tok, self.writer, self.rank = tok, writer, rank
        self.shard_size, self.batch_size, self.device, self.amp = shard_size, batch_size, device, amp
        self.shards = {s: _Shard(s, items) for s, items in pending}
        self.buckets: dict[tuple, list] = defaultdict(list)
        self.current: int | None = None
        self.errors = 0

    def add(self, rec: dict[str, Any]) -> None:
        i = rec["i"]
        s = i // self.shard_size
        if self.current is not None and s != self.current:
            self._flush(everything=True)
            self._write(self.shards.pop(self.current))
        self.current = s
        if rec["error"] is not None:
            self._error(i, rec["stage"], rec["error"])
            return
        views = rec["views"]
        for v in range(views.shape[0]):
            shape = tuple(views[v].shape)
            bucket = self.buckets[shape]
            bucket.append((i, rec["names"][v] if rec["names"] else None, views[v]))
            if len(bucket) >= self.batch_size:
                self._encode(self.buckets.pop(shape))
        if sum(len(b) for b in self.buckets.values()) > PENDING_BATCHES * self.batch_size:
            self._flush(everything=False)

    def finish(self) -> None:
        self._flush(everything=True)
        if self.current is not None:
            self._write(self.shards.pop(self.current))

    # ----------------------------------------------------------------- internals
    def _error(self, i: int, stage: str, message: str) -> None:
        shard, j = self.shards[i // self.shard_size], i % self.shard_size
        if j not in shard.errors:
            shard.errors[j] = {"stage": stage, "error": message}
            self.errors += 1

    def _flush(self, everything: bool) -> None:
        shapes = list(self.buckets) if everything else [max(self.buckets, key=lambda k: len(self.buckets[k]))]
        for shape in shapes:
            units = self.buckets.pop(shape)
            for b in range(0, len(units), self.batch_size):
                self._encode(units[b:b + self.batch_size])

    def _encode(self, units: list[tuple]) -> None:
        for (i, view, x), ids, num_samples in _encode_units(self.tok, units, self.device, self.amp):
            if isinstance(ids, str):
                self._error(i, "encode", ids)
                continue
            self.shards[i // self.shard_size].rows[i % self.shard_size].append(
                {"ids": ids, "shape": list(ids.shape), "view": view, "num_samples": num_samples,
                 "input_shape": list(x.shape[1:])})

    def _write(self, shard: _Shard) -> None:
        rows, errors = [], []
        for j, item in enumerate(shard.items):
            if j in shard.errors:  # an input is either fully tokenized (every view) or an error
                errors.append({"key": item.key, "source": item.source, **shard.errors[j]})
                continue
            rows += [{"key": item.key, "label": item.label, **r} for r in shard.rows.get(j, [])]
        self.writer.write(self.rank, shard.index, rows, items=len(shard.items), errors=errors)


def _encode_units(tok, units, device, amp):
    """Encode ``units`` (input index, view, tensor) of one shape; yields ``(unit, ids numpy,
    num_samples)``, or ``(unit, "Error: reason", None)`` when encoding fails. A failing batch is
    retried item by item so that one bad input does not take its batch with it."""
    x = torch.stack([u[2] for u in units]).to(device, non_blocking=True)
    try:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            tokens = tok.encode(x)
        if tokens.lengths is not None:
            raise NotImplementedError("this tokenizer's encode returns per-item lengths, which zoo tokenize "
                                      "does not store")
    except Exception as e:  # reported per input, never fatal
        if len(units) > 1:
            for u in units:
                yield from _encode_units(tok, [u], device, amp)
            return
        yield units[0], f"{type(e).__name__}: {e}", None
        return
    ids = tokens.ids.cpu().numpy()
    for u, row in zip(units, ids):
        yield u, row, tokens.num_samples
