"""Inputs of ``zoo tokenize``: a folder, a ``.jsonl`` manifest, or WebDataset ``.tar`` shards.

Every input becomes an :class:`Item` with a unique ``key`` (the relative path, the manifest's path,
or the WebDataset sample key), its source (a file, or a byte range of a tar file) and an optional
integer label. Listings are sorted, so every process sees the same order; :func:`rank_items`
gives each rank a deterministic, disjoint part (items ``rank::world`` of folders and manifests,
tar files ``rank::world`` of WebDataset shards, so that no rank reads another rank's tars).
Inputs that cannot become an item (a manifest line without a path, a tar sample without a file
of the modality) are kept as :class:`Item` with an ``error``: they end in ``errors.jsonl``.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Item", "Listing", "list_inputs", "rank_items", "expand_braces", "open_item"]


@dataclass(frozen=True)
class Item:
    """One input. ``path``: the file, or the tar holding it (then ``member`` = (offset, size) of
    its bytes and ``name`` the member name). ``error``: why it cannot be read (set at listing)."""

    key: str
    path: str
    label: int | None = None
    member: tuple[int, int] | None = None
    name: str | None = None
    error: str | None = None

    @property
    def source(self) -> str:
        """Where the bytes come from, for error reports."""
        return f"{self.path}:{self.name}" if self.member is not None else self.path


@dataclass
class Listing:
    """What :func:`list_inputs` found. ``items``: this rank's items in order; ``kind``: folder /
    jsonl / webdataset; ``label_map``: class name -> label (None without labels); ``fingerprint``:
    sha256 of the whole input listing (the same on every rank; a resumed run checks it);
    ``num_inputs``: inputs over all ranks (None for tars: each rank reads only its own);
    ``ignored``: files under a folder that are not of the modality; ``labels``: whether inputs
    carry labels (always for WebDataset: a sample may hold a ``.cls``)."""

    items: list[Item]
    kind: str
    label_map: dict[str, int] | None
    fingerprint: str
    num_inputs: int | None
    labels: bool = False
    ignored: int = 0
    notes: list[str] = field(default_factory=list)


def expand_braces(pattern: str) -> list[str]:
    """WebDataset-style ``{000..009}`` ranges and ``{a,b}`` alternatives (then globbed)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    body = m.group(1)
    rng = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if rng:
        lo, hi = rng.groups()
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        options = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    else:
        options = body.split(",")
    out = []
    for option in options:
        out += expand_braces(pattern[:m.start()] + option + pattern[m.end():])
    return out


def _fingerprint(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _list_folder(root: Path, modality) -> Listing:
    files, ignored = [], 0
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
            if modality.matches(p):
                files.append(p)
            else:
                ignored += 1
    if not files:
        raise FileNotFoundError(f"no {modality} files ({', '.join(modality.extensions)}) under {root}")
    rel = [p.relative_to(root).as_posix() for p in files]
    label_map = None
    if all("/" in r for r in rel):  # ImageNet layout: every file sits in a class folder
        label_map = {c: i for i, c in enumerate(sorted({r.split("/", 1)[0] for r in rel}))}
    items = [Item(key=r, path=str(p), label=None if label_map is None else label_map[r.split("/", 1)[0]])
             for r, p in zip(rel, files)]
    return Listing(items, "folder", label_map, _fingerprint(rel), len(items), label_map is not None, ignored)


def _list_jsonl(path: Path) -> Listing:
    base = path.parent
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or not isinstance(rec.get("path"), str):
                    raise ValueError('each line must be a JSON object with a string "path"')
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                records.append((where, None, None, f"{type(e).__name__}: {e}"))
                continue
            label = rec.get("label")
            if (label is not None and not isinstance(label, (int, str))) or isinstance(label, bool):
                bad = f"ValueError: label must be an int or a string, got {label!r}"
                records.append((rec["path"], None, None, bad))
                continue
            records.append((rec["path"], rec["path"], label, None))
    labels = {r[2] for r in records if r[2] is not None}
    if labels and not (all(isinstance(v, int) for v in labels) or all(isinstance(v, str) for v in labels)):
        raise ValueError(f"{path}: labels must be all integers or all strings")
    label_map = {v: i for i, v in enumerate(sorted(labels))} if labels and isinstance(next(iter(labels)), str) else None
    seen, items = set(), []
    for key, rel, label, error in records:
        if key in seen:
            raise ValueError(f"{path}: path {key!r} is listed twice (keys must be unique)")
        seen.add(key)
        if label_map is not None and label is not None:
            label = label_map[label]
        full = str(base / rel) if rel is not None else str(path)
        items.append(Item(key=key, path=full, label=label, error=error))
    if not items:
        raise ValueError(f"{path} lists no inputs")
    fp = _fingerprint([f"{i.key}\t{i.label}" for i in items])
    return Listing(items, "jsonl", label_map, fp, len(items), any(i.label is not None for i in items))


def _tar_items(tar_path: str, modality) -> list[Item]:
    """WebDataset samples of one tar: members grouped by key (the name up to the first dot of its
    base name); the sample's file of the modality, and its ``.cls`` label when present."""
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}
    with tarfile.open(tar_path, "r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            folder, _, base = info.name.rpartition("/")
            stem, dot, ext = base.partition(".")
            if not dot or stem.startswith("."):
                continue
            key = f"{folder}/{stem}" if folder else stem
            samples.setdefault(key, {})[ext.lower()] = info
    items = []
    with open(tar_path, "rb") as raw:
        for key, members in samples.items():
            media = [m for ext, m in members.items() if modality.matches("x." + ext.rsplit(".", 1)[-1])]
            label, error = None, None
            if "cls" in members:
                raw.seek(members["cls"].offset_data)
                text = raw.read(members["cls"].size).decode("utf-8", "replace").strip()
                try:
                    label = int(text)
                except ValueError:
                    error = f"ValueError: {key}.cls holds {text[:40]!r}, not an integer label"
            if not media:
                error = f"ValueError: sample has no {modality} file (members: {sorted(members)})"
                items.append(Item(key=key, path=tar_path, label=label, error=error))
                continue
            m = sorted(media, key=lambda i: i.name)[0]
            items.append(Item(key=key, path=tar_path, label=label, member=(m.offset_data, m.size), name=m.name,
                              error=error))
    return items


def _tar_paths(pattern: str) -> list[str]:
    paths = sorted({p for part in expand_braces(pattern) for p in glob.glob(part)})
    if not paths:
        raise FileNotFoundError(f"no tar files match {pattern!r}")
    bad = [p for p in paths if not p.endswith(".tar")]
    if bad:
        raise ValueError(f"WebDataset inputs must be uncompressed .tar files, got {bad[:3]}")
    return paths


def list_inputs(source: str, modality, rank: int = 0, world_size: int = 1) -> Listing:
    """List ``source`` (a folder, a ``.jsonl`` file, or a ``.tar`` path / glob / brace pattern) and
    keep this rank's items (see the module docstring)."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        listing = _list_folder(path, modality)
    elif path.suffix == ".jsonl" and path.is_file():
        listing = _list_jsonl(path)
    elif text.endswith(".tar") or any(c in text for c in "*?[{"):
        tars = _tar_paths(text)
        mine = tars[rank::world_size]
        items = [item for t in mine for item in _tar_items(t, modality)]
        fp = _fingerprint([f"{Path(t).name}\t{Path(t).stat().st_size}" for t in tars])
        notes = [f"rank {rank} has no tar file ({len(tars)} tars for {world_size} ranks)"] if not mine else []
        return Listing(items, "webdataset", None, fp, None, True, notes=notes)
    else:
        raise FileNotFoundError(f"input {text!r} is not a folder, a .jsonl manifest or .tar shards")
    listing.items = rank_items(listing.items, rank, world_size)
    return listing


def rank_items(items: list[Item], rank: int, world_size: int) -> list[Item]:
    """Items ``rank, rank + world, ...``: deterministic, disjoint, balanced."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    return items[rank::world_size]


def open_item(item: Item):
    """A path or a binary file object with the item's bytes (tar members are read by byte range)."""
    if item.member is None:
        return Path(item.path)
    offset, size = item.member
    with open(item.path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    buf = io.BytesIO(data)
    buf.name = item.name
    return buf
