"""Weight resolution: a local folder or file, or a Hugging Face repo at a pinned revision (cache, offline).

The caller says which one it means (no guessing from the disk):

- :func:`local_file` ``(folder_or_file, filename)``: ``folder/filename``, or the file itself;
- :func:`hub_file` ``(repo, filename, revision)``: ``huggingface_hub.hf_hub_download`` (the HF cache
  is used; with ``HF_HUB_OFFLINE=1`` only the cache is read);
- :func:`hub_folder` ``(repo, filenames, revision)``: several files of one repo at one commit, as the
  snapshot folder of the HF cache that holds them.

A file that cannot be found raises :class:`WeightsNotFoundError`; for the hub it names the repo, file
and revision and how to provide the file offline. Text sources (``hf-hub:ORG/REPO@REV``,
``local-dir:PATH``, registry names) are parsed by :mod:`zoo.source`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["WeightSource", "WeightsNotFoundError", "local_file", "hub_file", "hub_folder", "resolve_source",
           "zoo_cache_dir", "converted_cache_dir"]


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
            f"  - put the file in a folder and pass weights='<folder>' (or the file's path) for a registry entry, "
            f"or load a zoo-format folder as local-dir:<folder>.")


def local_file(path: str | os.PathLike, filename: str | None = None) -> Path:
    """``path/filename`` when ``path`` is a folder; ``path`` itself when it is a file (whose name or
    suffix must match ``filename`` when one is given). Nothing is downloaded."""
    path = Path(path).expanduser()
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
    raise WeightsNotFoundError(f"local path {path} does not exist")


def hub_file(repo: str, filename: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
             local_files_only: bool = False, force_download: bool = False, token=None) -> Path:
    """Local path of ``filename`` of the Hugging Face repo ``repo`` at ``revision`` (default ``main``),
    downloaded into (or, offline, read from) the HF cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision, cache_dir=cache_dir,
                                    local_files_only=local_files_only, force_download=force_download,
                                    token=token))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError, ValueError) as e:
        raise WeightsNotFoundError(_offline_hint(repo, filename, revision) + f"\n(cause: {type(e).__name__}: {e})") from e


def hub_folder(repo: str, filenames: tuple[str, ...], revision: str | None = None, **download) -> Path:
    """The HF-cache snapshot folder holding every file of ``filenames`` of ``repo`` at ONE commit.

    The first file resolves ``revision`` (a branch, tag or commit; default ``main``) to a commit, the
    folder ``snapshots/<commit>`` of the cache; the other files are fetched at that commit, so a branch
    that moves between two downloads cannot mix files of two commits. ``download``: the keywords of
    :func:`hub_file` (``cache_dir``, ``local_files_only``, ``force_download``, ``token``).
    """
    if not filenames:
        raise ValueError("name at least one file to fetch")
    folder = _snapshot(hub_file(repo, filenames[0], revision=revision, **download), filenames[0])
    for name in filenames[1:]:
        other = _snapshot(hub_file(repo, name, revision=folder.name, **download), name)
        if other != folder:
            raise WeightsNotFoundError(f"{repo}: '{name}' resolved to the snapshot {other}, not to {folder} "
                                       f"where '{filenames[0]}' is (revision {revision or 'main'})")
    return folder


def _snapshot(path: Path, filename: str) -> Path:
    """The snapshot folder (named by its commit) of a file downloaded as ``filename`` (which may hold
    sub-folders) from the HF cache."""
    return path.parents[len(Path(filename).parts) - 1]


def resolve_source(source: WeightSource, weights: str | os.PathLike | None = None,
                   revision: str | None = None) -> dict[str, Path]:
    """Local paths for every file of ``source`` (role -> path).

    ``weights`` overrides the origin: a local folder holding the files, or (for a single-file
    source) the file itself. ``revision`` overrides the pinned revision; hub files all come from
    the commit it resolves to (:func:`hub_folder`).
    """
    if weights is not None:
        origin = Path(weights).expanduser()
        if not origin.exists():
            raise WeightsNotFoundError(f"weights path {origin} does not exist")
        if origin.is_file():
            if len(source.files) > 1:
                # a single file was given for a multi-file source: use it for the weights role,
                # and look for the others beside it
                return {role: (origin if role == "weights" else local_file(origin.parent, name))
                        for role, name in source.files.items()}
            return {role: origin for role in source.files} or {"weights": origin}
        return {role: local_file(origin, name) for role, name in source.files.items()}
    if source.packaged is not None:
        from importlib import resources

        folder = Path(str(resources.files("zoo").joinpath(source.packaged)))
        return {role: local_file(folder, name) for role, name in source.files.items()}
    if source.hf_repo is None:
        raise WeightsNotFoundError("this entry has no weight source")
    folder = hub_folder(source.hf_repo, tuple(source.files.values()), revision=revision or source.revision)
    return {role: folder / name for role, name in source.files.items()}
