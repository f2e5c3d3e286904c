"""Registry of named tokenizers: :class:`TokenizerInfo` entries, ``create_tokenizer``, ``list_tokenizers``.

Names are ``arch.tag`` (``titok_l32.in1k``); ``create_tokenizer("titok_l32")`` takes the
architecture's default (first registered) tag. Each entry is a frozen :class:`TokenizerInfo` with
named fields (the metadata of DESIGN.md section 4) and a ``builder(**kwargs) -> Tokenizer`` for
the untrained architecture. Entries are declared next to their model (``zoo/models/<model>_entries.py``,
one tuple ``ENTRIES`` per model family) and registered with :func:`register_tokenizers`.
What the architecture determines (``codebook_size``, ``token_shape``, ``sample_rate``) is not
written in the entry: it is derived, on first use, from the entry's own kwargs built on the meta
device (no weights), and cached.
"""
from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from .hub import WeightSource, converted_cache_dir, resolve_source
from .source import HUB_PREFIX, LOCAL_PREFIX, parse_source

__all__ = ["TokenizerInfo", "register_tokenizer", "register_tokenizers", "create_tokenizer", "list_tokenizers",
           "get_info", "check_advertised"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Derived:
    """What an entry's architecture determines (read from the model its kwargs build)."""

    codebook_size: int | tuple[int, ...]
    token_shape: tuple[int, ...] | None
    sample_rate: int | None


@dataclass(frozen=True, kw_only=True)
class TokenizerInfo:
    """One registered tokenizer (DESIGN.md section 4); every field is named.

    ``codebook_size``, ``token_shape`` (ids shape for one item at ``input_size``, or for 1 s of
    audio) and ``sample_rate`` (audio) are properties derived from ``builder(**kwargs)`` built on
    the meta device the first time one is asked for (``list_tokenizers`` never builds)."""

    name: str                                   # "arch.tag"
    builder: Callable[..., Any]                 # builder(**kwargs) -> Tokenizer (untrained)
    modality: str                               # "image" | "video" | "audio"
    family: str                                 # "titok", "wavtokenizer", ...
    kwargs: dict[str, Any] = field(default_factory=dict)   # builder arguments of this entry
    input_size: tuple[int, ...] | None = None   # (H, W), (T, H, W) for images / video
    compression: str | None = None              # e.g. "32 tokens x 12 bits / 256x256x3x8 bits"
    source: WeightSource | None = None          # None: no pretrained weights
    license: str | None = None
    paper: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # published numbers, with protocol in notes
    notes: str = ""

    def __post_init__(self):
        if "." not in self.name:
            raise ValueError(f"registry names are 'arch.tag', got {self.name!r}")
        if self.modality not in ("image", "video", "audio"):
            raise ValueError(f"{self.name}: modality must be image, video or audio, got {self.modality!r}")

    @property
    def arch(self) -> str:
        return self.name.split(".")[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""

    @property
    def pretrained(self) -> bool:
        return self.source is not None

    @cached_property
    def _derived(self) -> _Derived:
        """Build the entry's architecture on the meta device (shapes only) and read what it determines."""
        import torch

        with torch.device("meta"):
            tok = self.builder(**self.kwargs)
        if tok.modality != self.modality:
            raise ValueError(f"{self.name}: the entry says {self.modality}, its builder makes a tokenizer of "
                             f"modality {tok.modality}")
        cb = tok.codebook_size
        sample_rate = int(tok.sample_rate) if self.modality == "audio" else None
        probe = (sample_rate,) if sample_rate else (3, *self.input_size) if self.input_size else None
        shape = tuple(int(n) for n in tok.token_shape(probe)) if probe is not None else None
        return _Derived(codebook_size=tuple(cb) if isinstance(cb, (tuple, list)) else int(cb), token_shape=shape,
                        sample_rate=sample_rate)

    @property
    def codebook_size(self) -> int | tuple[int, ...]:
        """Codes per token (a tuple: one size per parallel codebook); 1 for continuous tokens."""
        return self._derived.codebook_size

    @property
    def token_shape(self) -> tuple[int, ...] | None:
        """Ids shape for one item at ``input_size`` (images / video) or for 1 s (audio)."""
        return self._derived.token_shape

    @property
    def sample_rate(self) -> int | None:
        """Audio sample rate in Hz (None for images and video)."""
        return self._derived.sample_rate

    def describe(self) -> str:
        """One paragraph for docstrings and the README table."""
        parts = [f"{self.name}: {self.family} {self.modality} tokenizer"]
        if self.codebook_size is not None:
            parts.append(f"codebook {self.codebook_size}")
        if self.token_shape is not None:
            parts.append(f"tokens {self.token_shape}")
        if self.input_size is not None:
            parts.append(f"input {self.input_size}")
        if self.sample_rate is not None:
            parts.append(f"{self.sample_rate} Hz")
        if self.source is not None:
            where = self.source.hf_repo or f"packaged:{self.source.packaged}"
            parts.append(f"weights {where}" + (f"@{self.source.revision[:10]}" if self.source.revision else ""))
        if self.license:
            parts.append(f"licence {self.license}")
        if self.paper:
            parts.append(f"paper {self.paper}")
        if self.metrics:
            parts.append("published " + ", ".join(f"{k}={v}" for k, v in self.metrics.items()))
        return "; ".join(parts)


_REGISTRY: dict[str, TokenizerInfo] = {}
_DEFAULT_TAG: dict[str, str] = {}


def register_tokenizers(entries: Iterable[TokenizerInfo]) -> None:
    """Register every entry; the first tag registered for an arch is its default."""
    for info in entries:
        if not isinstance(info, TokenizerInfo):
            raise TypeError(f"registry entries are TokenizerInfo objects, got {type(info).__name__}")
        if info.name in _REGISTRY:
            raise ValueError(f"tokenizer {info.name!r} is already registered")
        _REGISTRY[info.name] = info
        _DEFAULT_TAG.setdefault(info.arch, info.name)


def register_tokenizer(name: str, builder: Callable[..., Any], *, modality: str, family: str,
                       **meta) -> TokenizerInfo:
    """Register one ``TokenizerInfo(name=name, builder=builder, ...)`` (``meta``: its other fields)."""
    info = TokenizerInfo(name=name, builder=builder, modality=modality, family=family, **meta)
    register_tokenizers([info])
    return info


def _ensure_models_loaded() -> None:
    from . import models  # noqa: F401  (importing registers every model)


def get_info(name: str) -> TokenizerInfo:
    """Registry entry of ``name`` (``arch.tag`` or bare ``arch``)."""
    _ensure_models_loaded()
    full = _DEFAULT_TAG.get(name, name)
    if full not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split(".")[0] in n][:8]
        raise KeyError(f"unknown tokenizer {name!r}" + (f"; did you mean {close}?" if close else
                                                        "; see zoo.list_tokenizers()"))
    return _REGISTRY[full]


def list_tokenizers(filter: str | None = None, modality: str | None = None,
                    pretrained: bool | None = None, family: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by glob, modality, family, weight availability."""
    _ensure_models_loaded()
    names = []
    for name, info in _REGISTRY.items():
        if filter and not fnmatch.fnmatch(name, filter):
            continue
        if modality is not None and info.modality != modality:
            continue
        if family is not None and info.family != family:
            continue
        if pretrained is not None and info.pretrained != pretrained:
            continue
        names.append(name)
    return sorted(names)


def create_tokenizer(name: str, pretrained: bool = False, revision: str | None = None,
                     weights: str | os.PathLike | None = None, **kwargs):
    """Build a registered tokenizer, or load a zoo-format one named with a source prefix.

    name: ``arch`` / ``arch.tag`` of the registry, or (as timm's ``create_model``)
        ``hf-hub:ORG/REPO[@REVISION]`` / ``local-dir:PATH`` (:mod:`zoo.source`): those hold their own
        config and weights, so ``weights`` and builder ``kwargs`` do not apply to them.
    pretrained: load the entry's weights (official checkpoints are converted on the fly and
        the conversion cached under ``zoo_cache_dir()/converted``).
    revision: override the pinned hub revision.
    weights: a local folder or file to load from instead of the hub (official or zoo format,
        as the entry's source says).
    kwargs: builder overrides (only without pretrained weights, or ones that do not change
        parameter shapes).
    """
    if isinstance(name, str) and name.startswith((HUB_PREFIX, LOCAL_PREFIX)):
        return parse_source(name).load(pretrained=pretrained, weights=weights, revision=revision, **kwargs)
    info = get_info(name)
    if weights is not None:
        pretrained = True
    if not pretrained:
        return info.builder(**{**info.kwargs, **kwargs})
    if info.source is None:
        raise ValueError(f"{info.name} has no pretrained weights; use pretrained=False "
                         f"(pretrained entries: {list_tokenizers(pretrained=True)[:10]} ...)")
    return _load_pretrained(info, revision=revision, weights=weights, **kwargs)


def _load_pretrained(info: TokenizerInfo, revision=None, weights=None, **kwargs):
    from .api import from_pretrained
    from .convert import load_official

    source = info.source
    if source.converter is None:  # zoo-format folder: config.json + model.safetensors
        files = resolve_source(source, weights=weights, revision=revision)
        folder = files["weights"].parent
        tok = from_pretrained(folder, **kwargs)
    else:
        cache = converted_cache_dir(info.name, source) if weights is None and revision is None else None
        arch = {**info.kwargs, **kwargs}
        tok = None
        if cache is not None and (cache / "model.safetensors").is_file():
            tok = _cached_conversion(info, cache, arch, **kwargs)
        if tok is None:
            files = resolve_source(source, weights=weights, revision=revision)
            # the entry's architecture fills what the checkpoint does not store and is checked
            # against what it does (a disagreement raises instead of loading another model)
            tok = load_official(source.converter, files.get("weights"), files.get("config"), files=files,
                                arch=arch, **kwargs)
            if cache is not None and not any(p.is_meta for p in tok.parameters()):
                try:
                    tok.save_pretrained(cache)
                except OSError as e:  # a read-only cache must not stop loading
                    log.warning("could not cache the converted %s at %s: %s", info.name, cache, e)
    if not kwargs:
        check_advertised(info, tok)
    return tok.eval()


def _cached_conversion(info: TokenizerInfo, cache, arch: dict, **kwargs):
    """The cached zoo-format conversion, or None when it is not this entry's architecture (a cache
    written by an older converter): it is then converted again and the cache overwritten."""
    from .api import from_pretrained
    from .convert.architecture import ArchitectureMismatchError, check_same_architecture

    tok = from_pretrained(cache, **kwargs)
    try:
        check_same_architecture(tok, arch, source=f"the cached conversion {cache}")
        if not kwargs:
            check_advertised(info, tok)
    except ArchitectureMismatchError as e:
        log.warning("ignoring the cached conversion of %s (%s); converting the official files again", info.name, e)
        return None
    return tok


def check_advertised(info: TokenizerInfo, tok) -> None:
    """Raise ``ValueError`` unless the loaded ``tok`` (its architecture read from the checkpoint) has the
    codebook, token shape (at the entry's input size or for 1 s of audio) and sample rate that the
    registry entry ``info`` advertises, i.e. that the entry's own kwargs build."""
    from .convert.architecture import ArchitectureMismatchError, same_setting

    bad = []
    if info.codebook_size is not None and not same_setting(tok.codebook_size, info.codebook_size):
        bad.append(f"codebook {tok.codebook_size} vs advertised {info.codebook_size}")
    if info.sample_rate is not None and tok.sample_rate != info.sample_rate:
        bad.append(f"sample rate {tok.sample_rate} vs advertised {info.sample_rate}")
    if info.token_shape is not None:
        shape = (info.sample_rate,) if info.modality == "audio" else (3, *info.input_size) if info.input_size else None
        if shape is not None:
            try:
                got = tuple(tok.token_shape(shape))
            except ValueError as e:  # e.g. an image size the model cannot take
                got = f"none ({e})"
            if got != tuple(info.token_shape):
                bad.append(f"token shape {got} for input {shape} vs advertised {tuple(info.token_shape)}")
    if bad:
        raise ArchitectureMismatchError(f"{info.name}: the loaded model is not the advertised one: " + "; ".join(bad))
