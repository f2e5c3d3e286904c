"""``tokenize_dataset``: a whole dataset -> Parquet shards of token ids (``python -m zoo tokenize``).

One process by default; under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) every rank
takes a deterministic, disjoint part of the inputs (:mod:`zoo.tokenize.inputs`) and a gloo
process group only synchronises the start and the end. DataLoader workers read and preprocess
files (:mod:`zoo.modality`: the same protocol as single-file ``encode``) while the main process
encodes under ``torch.inference_mode()``. Items are batched only with items of the same shape
(a bucket per shape), so a batch never pads or trims anything: every item's ids are those of its
single-item encode, as long as the model's kernels do not depend on the batch size (checked by
the tests on real photos and speech). One bad file never stops the run: it is recorded with the
reason in ``errors.jsonl``.
"""
from __future__ import annotations

import dataclasses
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from .batching import ItemReader, ShardEncoder
from .inputs import list_inputs
from .manifest import finalize, finish_rank, start_run, tokenizer_identity
from .shards import ShardWriter, id_dtype, shard_name

__all__ = ["tokenize_dataset", "TEN_CROP_SCALE"]

#: --ten-crop takes its crops from the image resized to this multiple of the input size (LlamaGen's 1.1)
TEN_CROP_SCALE = 1.1
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Ranks:
    """Rank / world size from the launcher's environment; a gloo group when there are several."""

    def __init__(self, timeout_hours: float):
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.created = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timedelta(hours=timeout_hours))
            self.created = True
        if dist.is_initialized():
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    def run_on_zero(self, fn) -> Any:
        """Run ``fn`` on rank 0; every rank gets its result or raises its exception."""
        out: list[Any] = [None]
        if self.rank == 0:
            try:
                out[0] = ("ok", fn())
            except Exception as e:  # re-raised on every rank below
                out[0] = ("error", e)
        if self.world > 1:
            self.dist.broadcast_object_list(out, src=0)
        status, value = out[0]
        if status == "error":
            raise value
        return value

    def total(self, n: int) -> int:
        if self.world == 1:
            return n
        t = torch.tensor([n], dtype=torch.long)
        self.dist.all_reduce(t)
        return int(t)

    def close(self, completed: bool) -> None:
        """Destroy the group this object created (:func:`zoo.distributed.finish_process_group`: after a
        ``completed`` run no rank exits while rank 0 still writes the manifest)."""
        if self.created:
            from ..distributed import finish_process_group

            finish_process_group(completed)


def _load_tokenizer(tokenizer, pretrained: bool, weights, name: str | None):
    """(tokenizer, name, revision) from a Tokenizer or a source (:mod:`zoo.source`): a registry name,
    ``local-dir:PATH`` (or a ``pathlib.Path``) or ``hf-hub:ORG/REPO[@REVISION]``."""
    import zoo
    from ..source import LocalDir, parse_source

    if isinstance(tokenizer, zoo.Tokenizer):
        return tokenizer, name or type(tokenizer).__name__, None
    source = parse_source(tokenizer)
    info = source.registry_info()
    if info is None:  # a zoo-format folder: the revision pins what was loaded (a hub repo: its commit)
        folder = source.folder()
        tok = LocalDir(folder).load(pretrained=pretrained, weights=weights)
        return tok, name or source.short_name, source.provenance(folder)
    pretrained = pretrained or weights is not None
    tok = zoo.create_tokenizer(info.name, pretrained=pretrained, weights=weights)
    if not pretrained:
        revision = "untrained (random init)"
    elif weights is not None:
        revision = f"local:{Path(weights).resolve()}"
    elif info.source.packaged:
        revision = f"packaged:{info.source.packaged}"
    else:
        revision = f"{info.source.hf_repo}@{info.source.revision or 'main (unpinned)'}"
    return tok, name or info.name, revision


def _device(device: str | None, ranks: _Ranks) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", ranks.local_rank % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def tokenize_dataset(tokenizer, input, output_dir, *, pretrained: bool = False, weights=None, name: str | None = None,
                     batch_size: int = 32, num_workers: int | None = None, shard_size: int = 1000,
                     device: str | None = None, dtype: str = "fp32", resume: bool = False, flip: bool = False,
                     ten_crop: bool = False, size: int | None = None, strict_input: bool = False,
                     progress: bool = True, timeout_hours: float = 6.0) -> dict[str, Any]:
    """Tokenize every input of ``input`` into Parquet shards under ``output_dir``.

    tokenizer: registry name (``pretrained`` / ``weights`` as for ``zoo.create_tokenizer``), a
        zoo-format folder (``local-dir:PATH`` or a ``pathlib.Path``) or hub repo
        (``hf-hub:ORG/REPO[@REVISION]``; the manifest records the commit), or a :class:`zoo.Tokenizer`
        (``name`` names it in the manifest).
    input: a folder (searched recursively for the tokenizer's modality; class sub-folders become
        labels), a ``.jsonl`` manifest of ``{"path", "label"}``, or WebDataset ``.tar`` shards
        (a path, glob or ``{000..009}`` pattern).
    batch_size: items per encode call (only items of equal shape share a batch).
    num_workers: DataLoader processes reading files (default: ``min(4, cpu count)``; 0 reads in
        this process). shard_size: inputs per Parquet shard.
    device: default CUDA when available (rank r of a launcher uses ``cuda:LOCAL_RANK``).
    dtype: ``fp32``, ``bf16`` (autocast; CUDA or CPU) or ``fp16`` (CUDA only).
    resume: continue a killed run in the same folder: completed shards are kept.
    flip: also tokenize the mirror image; ten_crop: the 4 corner and centre crops of the image
        resized to 1.1x the input size, and their mirrors (images only; column ``view``).
    size: image / frame side for tokenizers that take several sizes (see ``zoo.modality``).
    strict_input: record files that do not already match the tokenizer's input as errors
        instead of converting them.
    Returns the manifest (rank 0) or this rank's summary (other ranks).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size and shard_size must be positive, got {batch_size}, {shard_size}")
    ranks = _Ranks(timeout_hours)
    completed = False
    try:
        result = _run(ranks, tokenizer, input, Path(output_dir), pretrained=pretrained, weights=weights, name=name,
                      batch_size=batch_size, num_workers=num_workers, shard_size=shard_size, device=device,
                      dtype=dtype, resume=resume, flip=flip, ten_crop=ten_crop, size=size,
                      strict_input=strict_input, progress=progress)
        completed = True
        return result
    finally:
        ranks.close(completed)


def _run(ranks: _Ranks, tokenizer, source, out_dir: Path, *, pretrained, weights, name, batch_size, num_workers,
         shard_size, device, dtype, resume, flip, ten_crop, size, strict_input, progress) -> dict[str, Any]:
    dev = _device(device, ranks)
    if _DTYPES[dtype] is torch.float16 and dev.type != "cuda":
        raise ValueError("fp16 needs a CUDA device (use bf16 on CPU)")
    tok, name, revision = _load_tokenizer(tokenizer, pretrained, weights, name)
    tok = tok.to(dev).eval()
    modality = tok.modality
    cb = tok.codebook_size
    if (max(cb) if isinstance(cb, tuple) else cb) <= 1:
        raise ValueError(f"{name} is a continuous tokenizer (codebook size 1): it has no discrete ids to store")
    if (flip or ten_crop) and modality != "image":
        raise ValueError("--flip / --ten-crop apply to images only")
    if flip and ten_crop:
        raise ValueError("--ten-crop already holds the mirrored crops; drop --flip")
    protocol = modality.protocol(tok, size=size, strict=strict_input)
    if ten_crop and protocol.size is None:
        raise ValueError(f"--ten-crop needs a fixed input size: pass size= (this tokenizer takes any multiple of "
                         f"{protocol.multiple})")
    listing = list_inputs(source, modality, ranks.rank, ranks.world)
    views = (["top_left", "top_right", "bottom_left", "bottom_right", "center"] if ten_crop else ["center"])
    views = views + [v + "_flip" for v in views] if (ten_crop or flip) else None
    writer = ShardWriter(out_dir, id_dtype(cb), labels=listing.labels, num_samples=not modality.spatial,
                         view=views is not None, input_shape=modality.spatial and protocol.size is None)
    augment = {"flip": flip, "ten_crop": ten_crop, "views": views,
               "ten_crop_scale": TEN_CROP_SCALE if ten_crop else None}
    run = {"tokenizer": tokenizer_identity(tok, name, revision), "input": _input_record(source, listing),
           "protocol": {**protocol.as_dict(), "augment": augment, "dtype": dtype}, "world_size": ranks.world,
           "shard_size": shard_size, "ids_dtype": str(writer.ids_dtype), "columns": writer.columns}
    ranks.run_on_zero(lambda: start_run(out_dir, run, resume))
    if ranks.world > 1:
        ranks.dist.barrier()

    items = listing.items
    plan = [(s, items[s * shard_size:(s + 1) * shard_size]) for s in range(-(-len(items) // shard_size))]
    pending = [(s, chunk) for s, chunk in plan if not (out_dir / shard_name(ranks.rank, s)).is_file()]
    t0 = time.perf_counter()
    done = _encode_shards(tok, modality, protocol, pending, shard_size, writer, ranks, dev, _DTYPES[dtype],
                          batch_size, num_workers, flip, ten_crop, progress)
    seconds = time.perf_counter() - t0
    finish_rank(out_dir, ranks.rank, [shard_name(ranks.rank, s) for s, _ in plan], len(items), listing.notes)
    total = ranks.total(done)
    if ranks.world > 1:
        ranks.dist.barrier()
    summary = {"rank": ranks.rank, "inputs": len(items), "encoded_now": done, "seconds": seconds}
    if ranks.rank != 0:
        return summary
    manifest = finalize(out_dir, run, {"zoo_version": _zoo_version(), "label_map": listing.label_map,
                                       "ignored_files": listing.ignored})
    rate = total / seconds if seconds > 0 else float("nan")
    if progress:
        print(f"zoo tokenize: {manifest['num_inputs']} inputs -> {manifest['num_rows']} rows in "
              f"{len(manifest['shards'])} shards, {manifest['num_errors']} errors (errors.jsonl); "
              f"{total} inputs this session in {seconds:.1f} s = {rate:.1f} items/s "
              f"({ranks.world} process(es), {dev.type}); {out_dir / 'manifest.json'}")
    return manifest


def _input_record(source, listing) -> dict[str, Any]:
    path = Path(str(source))
    return {"path": str(path.resolve()) if path.exists() else str(source), "kind": listing.kind,
            "fingerprint": listing.fingerprint, "num_inputs": listing.num_inputs}


def _zoo_version() -> str:
    import zoo

    return zoo.__version__


def _default_workers(dev: torch.device) -> int:
    """Reader processes: on CPU half the compute threads (they share the cores with the encoder),
    at most 4; with CUDA up to 8 (the GPU encodes while every core reads)."""
    if dev.type == "cpu":
        return max(1, min(4, torch.get_num_threads() // 2))
    return max(1, min(8, os.cpu_count() or 1))


def _encode_shards(tok, modality, protocol, pending, shard_size, writer, ranks, dev, amp, batch_size, num_workers,
                   flip, ten_crop, progress) -> int:
    """Read (DataLoader workers), batch by shape, encode and write every pending shard; returns
    the number of inputs handled."""
    from tqdm import tqdm

    indexed = [(s * shard_size + j, item) for s, chunk in pending for j, item in enumerate(chunk)]
    if not indexed:
        return 0
    load_protocol = protocol
    if ten_crop:
        load_protocol = dataclasses.replace(protocol, size=tuple(round(TEN_CROP_SCALE * v) for v in protocol.size))
    reader = ItemReader(indexed, modality, load_protocol, flip, protocol.size if ten_crop else None)
    workers = _default_workers(dev) if num_workers is None else int(num_workers)
    loader = torch.utils.data.DataLoader(reader, batch_size=None, shuffle=False, num_workers=workers,
                                         pin_memory=dev.type == "cuda", prefetch_factor=4 if workers else None)
    encoder = ShardEncoder(tok, writer, ranks.rank, pending, shard_size, batch_size, dev, amp)
    bar = tqdm(total=len(indexed), unit="item", desc=f"tokenize {tok.modality}", dynamic_ncols=True,
               disable=not progress or ranks.rank != 0)
    threads = torch.get_num_threads()
    if dev.type == "cpu" and workers > 0:  # readers and encoder share the cores: never oversubscribe
        torch.set_num_threads(max(1, threads - workers))
    try:
        with torch.inference_mode():
            for rec in loader:
                encoder.add(rec)
                bar.update(1)
                bar.set_postfix(errors=encoder.errors, refresh=False)
            encoder.finish()
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return len(indexed)
