"""Where a tokenizer comes from, spelled out in the text (as timm's ``hf-hub:`` / ``local-dir:``).

Grammar of a TOKENIZER argument (``zoo encode``, ``zoo tokenize``, ``zoo eval --tokenizer`` ...):

- ``hf-hub:ORG/REPO[@REVISION]`` -> :class:`HubRepo`: a zoo-format repo (``config.json`` +
  ``model.safetensors``) on the Hugging Face hub, at REVISION (branch, tag or commit; default ``main``);
- ``local-dir:PATH`` -> :class:`LocalDir`: a zoo-format folder on disk;
- anything else -> :class:`RegistryName`: ``arch`` or ``arch.tag`` of the registry.

:func:`parse_source` reads only the text; nothing is guessed from the disk. A registry name that is
not registered raises :class:`UnknownTokenizerError`; when a file or folder of that name exists, the
message suggests ``local-dir:PATH`` (it is never loaded silently). ``zoo.from_pretrained`` loads
zoo-format folders only: there a ``pathlib.Path`` or an unprefixed string is a local folder
(:func:`parse_folder_source`).
"""
from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .hub import WeightsNotFoundError, hub_file, hub_folder, local_file

__all__ = ["HUB_PREFIX", "LOCAL_PREFIX", "ZOO_FILES", "SOURCE_HELP", "RegistryName", "HubRepo", "LocalDir", "Source",
           "UnknownTokenizerError", "parse_source", "parse_folder_source"]

HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
#: the files of a zoo-format folder or repo (``Tokenizer.save_pretrained``)
ZOO_FILES = ("config.json", "model.safetensors")
#: command-line help of a TOKENIZER argument
SOURCE_HELP = f"registry name (arch or arch.tag), {LOCAL_PREFIX}PATH (zoo-format folder) or {HUB_PREFIX}ORG/REPO[@REVISION]"
#: a Hugging Face repo id: ORG/NAME of letters, digits, '-', '_', '.'
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class UnknownTokenizerError(KeyError):
    """A TOKENIZER text that is neither prefixed nor a registered name."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryName:
    """A registered tokenizer: ``arch`` (its default tag) or ``arch.tag``."""

    name: str

    def __str__(self) -> str:
        return self.name

    def registry_info(self):
        """The registry entry (``zoo.registry.TokenizerInfo``); :class:`UnknownTokenizerError` if none."""
        from .registry import get_info

        try:
            return get_info(self.name)
        except KeyError as e:
            raise UnknownTokenizerError(str(e.args[0]) + _not_registered_hints(self.name)) from None

    def load(self, *, pretrained: bool = False, weights: str | os.PathLike | None = None,
             revision: str | None = None, **kwargs):
        """``zoo.create_tokenizer(name, pretrained, revision, weights, **kwargs)``."""
        from .registry import create_tokenizer

        return create_tokenizer(self.registry_info().name, pretrained=pretrained, revision=revision,
                                weights=weights, **kwargs)


class _ZooFolder(ABC):
    """A zoo-format folder (on disk or on the hub): it carries its own config and weights."""

    def registry_info(self) -> None:
        return None

    @abstractmethod
    def folder(self, revision: str | None = None, **download) -> Path:
        """The local folder holding :data:`ZOO_FILES`."""

    @abstractmethod
    def file(self, filename: str, **download) -> Path:
        """Local path of one file of the folder / repo."""

    @abstractmethod
    def provenance(self, folder: Path) -> str:
        """What was loaded from ``folder`` (returned by :meth:`folder`), pinned, for manifests."""

    def load(self, *, pretrained: bool = False, weights: str | os.PathLike | None = None,
             revision: str | None = None, **kwargs):
        """``zoo.from_pretrained(self)``. ``pretrained`` changes nothing (the folder holds its weights);
        ``weights`` and builder keywords belong to registry names and raise ``ValueError`` here."""
        if weights is not None:
            raise ValueError(f"{self} holds its own weights: --weights / weights= applies to registry names only")
        if kwargs:
            raise ValueError(f"{self} is loaded as saved: builder keywords {sorted(kwargs)} apply to registry "
                             "names only")
        from .api import from_pretrained

        return from_pretrained(self, revision=revision)


@dataclass(frozen=True)
class HubRepo(_ZooFolder):
    """``hf-hub:ORG/REPO[@REVISION]``: a zoo-format repo on the Hugging Face hub."""

    repo: str
    revision: str | None = None

    def __post_init__(self):
        if not _REPO_ID.fullmatch(self.repo):
            raise ValueError(f"{HUB_PREFIX}{self.repo}: a hub repo is ORG/NAME (letters, digits, '-', '_', '.')")
        if self.revision is not None and not self.revision.strip():
            raise ValueError(f"{HUB_PREFIX}{self.repo}@: empty revision (write ORG/NAME or ORG/NAME@REVISION)")

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo}" + (f"@{self.revision}" if self.revision else "")

    @property
    def short_name(self) -> str:
        return self.repo

    def folder(self, revision: str | None = None, **download) -> Path:
        """The HF-cache snapshot (one commit) holding the repo's :data:`ZOO_FILES`, downloaded when
        absent (``download``: ``cache_dir``, ``local_files_only``, ``force_download``, ``token``).
        ``revision`` may repeat the text's revision but not contradict it."""
        if revision is not None and self.revision is not None and revision != self.revision:
            raise ValueError(f"{self} names revision {self.revision!r}, the call asks for {revision!r}")
        return hub_folder(self.repo, ZOO_FILES, revision=self.revision or revision, **download)

    def file(self, filename: str, **download) -> Path:
        """Local path of one file of the repo at the text's revision (downloaded when absent)."""
        return hub_file(self.repo, filename, revision=self.revision, **download)

    def provenance(self, folder: Path) -> str:
        """``hf-hub:REPO@COMMIT`` of a folder returned by :meth:`folder` (its name is the commit)."""
        return f"{HUB_PREFIX}{self.repo}@{folder.name}"


@dataclass(frozen=True)
class LocalDir(_ZooFolder):
    """``local-dir:PATH``: a zoo-format folder on disk."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path).expanduser())

    def __str__(self) -> str:
        return f"{LOCAL_PREFIX}{self.path}"

    @property
    def short_name(self) -> str:
        return self.path.resolve().name

    def folder(self, revision: str | None = None, **download) -> Path:
        """The folder itself (``WeightsNotFoundError`` when it is not one); a revision is refused."""
        if revision is not None:
            raise ValueError(f"{self} is a local folder: it has no revision (got {revision!r})")
        if self.path.is_dir():
            return self.path
        if self.path.exists():
            raise WeightsNotFoundError(f"{self}: {self.path} is a file; a zoo-format folder holds {list(ZOO_FILES)}")
        hint = ""
        if _REPO_ID.fullmatch(str(self.path)):
            hint += f"; for the Hugging Face hub repo write {HUB_PREFIX}{self.path}"
        if re.fullmatch(r"[\w-]+(\.[\w-]+)?", str(self.path)):
            hint += f"; for the registry entry {self.path} use zoo.create_tokenizer('{self.path}')"
        raise WeightsNotFoundError(f"no folder {self.path}{hint}")

    def file(self, filename: str, **download) -> Path:
        """``PATH/filename`` (``WeightsNotFoundError`` when absent); ``download`` is ignored."""
        return local_file(self.folder(), filename)

    def provenance(self, folder: Path) -> str:
        return f"local:{folder.resolve()}"


Source = Union[RegistryName, HubRepo, LocalDir]


def parse_source(text: str | os.PathLike | Source) -> Source:
    """TOKENIZER text -> :class:`HubRepo` / :class:`LocalDir` / :class:`RegistryName` (module docstring).

    A ``pathlib.Path`` (any ``os.PathLike``) is a :class:`LocalDir`; a parsed source is returned as is."""
    if isinstance(text, (RegistryName, HubRepo, LocalDir)):
        return text
    if isinstance(text, os.PathLike):
        return LocalDir(Path(text))
    if not isinstance(text, str):
        raise TypeError(f"a tokenizer source is a string or a path, got {type(text).__name__}")
    if text.startswith(HUB_PREFIX):
        repo, at, revision = text[len(HUB_PREFIX):].partition("@")
        return HubRepo(repo, revision if at else None)
    if text.startswith(LOCAL_PREFIX):
        if not text[len(LOCAL_PREFIX):].strip():
            raise ValueError(f"{text!r}: name the folder ({LOCAL_PREFIX}PATH)")
        return LocalDir(Path(text[len(LOCAL_PREFIX):]))
    if not text:
        raise ValueError("empty tokenizer name")
    return RegistryName(text)


def parse_folder_source(source: str | os.PathLike | Source) -> HubRepo | LocalDir:
    """Source of ``zoo.from_pretrained``: prefixed text as :func:`parse_source`, any other string or
    path is a local folder; a registry name is refused (``zoo.create_tokenizer`` loads those)."""
    if isinstance(source, str) and not source.startswith((HUB_PREFIX, LOCAL_PREFIX)):
        return LocalDir(Path(source))
    parsed = parse_source(source)
    if isinstance(parsed, RegistryName):
        raise TypeError(f"from_pretrained loads zoo-format folders; load the registry entry {parsed} with "
                        "zoo.create_tokenizer")
    return parsed


def _not_registered_hints(name: str) -> str:
    """What the user may have meant by an unregistered name (the disk is read for the message only)."""
    hints = []
    path = Path(name).expanduser()
    if path.is_dir():
        hints.append(f"a folder {name} exists: to load it, write {LOCAL_PREFIX}{name}")
    elif path.is_file():
        hints.append(f"a file {name} exists: a zoo-format folder is loaded with {LOCAL_PREFIX}FOLDER "
                     f"(here {LOCAL_PREFIX}{path.parent}), a registry entry's weights file with --weights / weights=")
    elif _REPO_ID.fullmatch(name):
        hints.append(f"for the Hugging Face hub repo write {HUB_PREFIX}{name}")
    prefix = name.partition(":")[0]
    if ":" in name and len(prefix) > 1:
        hints.append(f"'{prefix}:' is not a source prefix (known: {HUB_PREFIX}, {LOCAL_PREFIX})")
    return "".join(f"\n  - {h}" for h in hints)

