"""Weight resolution: Hugging Face repo at a pinned revision, local folder or file, cache, offline.

Order for ``resolve_file(source, filename)``:
1. ``source`` is an existing local folder -> ``source/filename``;
2. ``source`` is an existing local file whose name is ``filename`` (or any file when
   ``filename`` is None) -> that file;
3. otherwise ``source`` is a hub repo id -> ``huggingface_hub.hf_hub_download`` at
   ``revision`` (the HF cache is used; with ``HF_HUB_OFFLINE=1`` only the cache is read).
A file that cannot be found raises :class:`WeightsNotFoundError`, naming the repo, file and
revision and how to provide the file offline.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["WeightSource", "WeightsNotFoundError", "resolve_file", "resolve_source", "zoo_cache_dir",
           "converted_cache_dir"]


class WeightsNotFoundError(FileNotFoundError):
    """A weight or config file could not be found locally nor downloaded."""


@dataclass(frozen=True)
class WeightSource:
    """Where a registry entry's weights come from.

    hf_repo / revision / files: official or zoo checkpoint on the Hugging Face hub
    (``files`` maps a role such as ``"weights"`` or ``"config"`` to a file name in the repo).
    packaged: a folder inside the installed package (the zoo's own demo checkpoints).
    converter: ``zoo.load_official`` family name when the files are in an official format;
    None for zoo-format folders (``config.json`` + ``model.safetensors``).
    """

    hf_repo: str | None = None
    revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    packaged: str | None = None
    converter: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def zoo_cache_dir() -> Path:
    """Root of the zoo's own cache (``$ZOO_CACHE`` or ``~/.cache/tokenizer-zoo``)."""
    root = os.environ.get("ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tokenizer-zoo")
    return Path(root)


def converted_cache_dir(name: str, source: WeightSource) -> Path:
    """Folder where the zoo-format conversion of an official checkpoint is cached."""
    key = f"{source.hf_repo}@{source.revision}:{sorted(source.files.items())}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return zoo_cache_dir() / "converted" / f"{name}-{digest}"


def _offline_hint(repo: str, filename: str, revision: str | None) -> str:
    rev = f" at revision {revision}" if revision else ""
    return (f"could not get '{filename}' from the Hugging Face repo '{repo}'{rev}.\n"
            f"To use it offline, either\n"
            f"  - download it elsewhere (huggingface-cli download {repo} {filename}"
            f"{' --revision ' + revision if revision else ''}) and copy the HF cache folder "
            f"(HF_HUB_CACHE, default ~/.cache/huggingface/hub) to this machine, then set HF_HUB_OFFLINE=1; or\n"
            f"  - put the file in a folder and pass weights='<folder>' (or the file's path).")


def resolve_file(source: str | os.PathLike, filename: str | None, revision: str | None = None,
                 cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                 force_download: bool = False, token=None) -> Path:
    """Local path of ``filename`` from a folder, a file, or a hub repo (see module docstring)."""
    path = Path(source)
    if path.is_dir():
        if filename is None:
            raise ValueError(f"{path} is a folder: name the file to load from it")
        target = path / filename
        if not target.is_file():
            raise WeightsNotFoundError(f"'{filename}' not found in the local folder {path} "
                                       f"(it holds: {sorted(p.name for p in path.iterdir())[:20]})")
        return target
    if path.is_file():
        if filename is not None and path.name != filename and path.suffix != Path(filename).suffix:
            raise WeightsNotFoundError(f"expected a '{filename}' file, got {path}")
        return path
    repo = str(source)
    if repo.startswith((".", "/", "~")) or os.sep in repo.strip("/").replace("/", "", 1):
        raise WeightsNotFoundError(f"local path {repo} does not exist")
    if filename is None:
        raise ValueError(f"name the file to fetch from the hub repo {repo}")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision, cache_dir=cache_dir,
                                    local_files_only=local_files_only, force_download=force_download,
                                    token=token))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError, ValueError) as e:
        raise WeightsNotFoundError(_offline_hint(repo, filename, revision) + f"\n(cause: {type(e).__name__}: {e})") from e


def resolve_source(source: WeightSource, weights: str | os.PathLike | None = None,
                   revision: str | None = None) -> dict[str, Path]:
    """Local paths for every file of ``source`` (role -> path).

    ``weights`` overrides the origin: a local folder holding the files, or (for a single-file
    source) the file itself. ``revision`` overrides the pinned revision.
    """
    if weights is not None:
        origin = Path(weights).expanduser()
        if not origin.exists():
            raise WeightsNotFoundError(f"weights path {origin} does not exist")
        if origin.is_file():
            if len(source.files) > 1:
                # a single file was given for a multi-file source: use it for the weights role,
                # and look for the others beside it
                return {role: (origin if role == "weights" else resolve_file(origin.parent, name))
                        for role, name in source.files.items()}
            return {role: origin for role in source.files} or {"weights": origin}
        return {role: resolve_file(origin, name) for role, name in source.files.items()}
    if source.packaged is not None:
        from importlib import resources

        folder = Path(str(resources.files("zoo").joinpath(source.packaged)))
        return {role: resolve_file(folder, name) for role, name in source.files.items()}
    if source.hf_repo is None:
        raise WeightsNotFoundError("this entry has no weight source")
    rev = revision or source.revision
    return {role: resolve_file(source.hf_repo, name, revision=rev) for role, name in source.files.items()}
