"""The one interface every tokenizer implements: ``Tokenizer``, ``Tokens``, ``TokenizerOutput``.

A tokenizer maps a signal (image ``[B,3,H,W]``, video ``[B,3,T,H,W]`` in [0, 1], or audio
``[B,T]`` / ``[B,1,T]`` in [-1, 1]) to discrete ids and back. Subclasses implement
``_encode`` / ``_decode`` / ``forward``; the public ``encode`` / ``decode`` validate inputs,
run under ``torch.inference_mode()`` and return / accept :class:`Tokens`.
"""
from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .checkpoint import load_state_dict_strict, parameters_on_meta
from .modality import Modality, modality_named
from .precision import precision_context, resolve_precision, to_float32
from .validate import validate_ids

__all__ = ["Tokens", "TokenizerOutput", "Tokenizer", "tokenizer_class"]


@dataclass
class Tokens:
    """Discrete codes plus what ``decode`` needs to restore the input's exact shape.

    ids: LongTensor ``[B, N]`` or ``[B, N, G]`` (G parallel codebooks).
    lengths: optional LongTensor ``[B]``: number of valid tokens per item (variable length).
    num_samples: audio only, the input length in samples (decode trims to it).
    input_shape: spatial / temporal shape of the input (e.g. ``(H, W)`` or ``(T, H, W)``).
    extras: model-specific decode hints (e.g. ``{"bandwidth_id": 0}``).
    """

    ids: torch.Tensor
    lengths: torch.Tensor | None = None
    num_samples: int | None = None
    input_shape: tuple[int, ...] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.ids, torch.Tensor):
            raise TypeError(f"Tokens.ids must be a torch.Tensor, got {type(self.ids).__name__}")
        if self.ids.dtype != torch.long:
            if self.ids.is_floating_point() or self.ids.dtype == torch.bool:
                raise TypeError(f"Tokens.ids must be an integer tensor, got {self.ids.dtype}")
            self.ids = self.ids.long()
        if self.ids.dim() not in (2, 3):
            raise ValueError(f"Tokens.ids must be [B, N] or [B, N, G], got shape {tuple(self.ids.shape)}")
        if self.lengths is not None:
            self.lengths = torch.as_tensor(self.lengths, dtype=torch.long, device=self.ids.device)
            if self.lengths.shape != (self.ids.shape[0],):
                raise ValueError(f"Tokens.lengths must be [B]={self.ids.shape[0]}, got {tuple(self.lengths.shape)}")

    @property
    def batch_size(self) -> int:
        return self.ids.shape[0]

    def __len__(self) -> int:
        return self.ids.shape[1]

    def to(self, device) -> "Tokens":
        lengths = None if self.lengths is None else self.lengths.to(device)
        return replace(self, ids=self.ids.to(device), lengths=lengths)

    def state(self) -> dict[str, Any]:
        """A plain dict (tensors and JSON types) for ``torch.save``; inverse of :meth:`from_state`."""
        return {"ids": self.ids.cpu(), "lengths": None if self.lengths is None else self.lengths.cpu(),
                "num_samples": self.num_samples,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "extras": dict(self.extras)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Tokens":
        shape = state.get("input_shape")
        return cls(ids=state["ids"], lengths=state.get("lengths"), num_samples=state.get("num_samples"),
                   input_shape=None if shape is None else tuple(shape), extras=dict(state.get("extras") or {}))


@dataclass
class TokenizerOutput:
    """Result of the training forward ``tok(x)``.

    recon: reconstruction in the input's range and shape (or the model's training target).
    tokens: the :class:`Tokens` used for the reconstruction.
    losses: named scalar loss terms (already weighted as the model's recipe defines).
    stats: named scalar diagnostics (e.g. codebook usage, perplexity), not for backprop.
    extras: anything else a loss needs (e.g. proxy-code logits, latents).
    """

    recon: torch.Tensor | None
    tokens: Tokens | None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        """Sum of all loss terms (a zero scalar when there are none)."""
        if not self.losses:
            ref = self.recon if self.recon is not None else torch.zeros(())
            return ref.new_zeros(())
        return sum(self.losses.values())


_TOKENIZER_CLASSES: dict[str, type["Tokenizer"]] = {}


def tokenizer_class(name: str) -> type["Tokenizer"]:
    """The Tokenizer subclass called ``name`` (as stored in a zoo ``config.json``)."""
    from . import models  # noqa: F401  (imports every model module, registering classes)

    if name not in _TOKENIZER_CLASSES:
        raise KeyError(f"unknown tokenizer class {name!r}; known: {sorted(_TOKENIZER_CLASSES)}")
    return _TOKENIZER_CLASSES[name]


class Tokenizer(nn.Module, PyTorchModelHubMixin, library_name="tokenizer-zoo",
                repo_url="https://github.com/tokenizer-zoo/tokenizer-zoo", tags=["tokenizer-zoo"]):
    """Base class of every zoo tokenizer.

    Subclasses set ``modality`` (``"image"`` / ``"video"`` / ``"audio"``, turned into the
    :mod:`zoo.modality` object, a ``str`` equal to that name) and implement
    ``_encode(x, *, family keywords) -> Tokens``, ``_decode(tokens, *, family keywords) -> Tensor``
    (unclamped: :meth:`decode` applies the common ``clamp`` keyword) and
    ``forward(x) -> TokenizerOutput``; ``_encode`` / ``_decode`` name their keywords explicitly (no
    ``**kwargs``), so a misspelt keyword raises. Their
    ``__init__`` takes only JSON-serialisable keyword arguments: that is the config written
    by ``save_pretrained``.
    """

    modality: ClassVar[Modality | str] = ""
    #: the input size the model is built for: ``(H, W)`` images, ``(T, H, W)`` video, None for audio
    input_size: ClassVar[tuple[int, ...] | None] = None
    #: None: only ``input_size`` is accepted; an int m: any height and width divisible by m
    input_multiple: ClassVar[int | None] = None
    #: value range of the signal ``encode`` takes and ``decode`` returns
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    #: name of the decode keyword that truncates the token sequence ("length" for
    #: One-D-Piece / TiTok, "k" for FlexTok), None for fixed-length tokenizers
    variable_length_arg: ClassVar[str | None] = None
    #: True when decode draws random numbers (FlexTok's flow sampler, dMel's Griffin-Lim phases); its
    #: ``_decode`` then takes ``generator=`` (:meth:`decode_noise_kwargs` gives a seeded one)
    decode_draws_noise: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("modality")
        if isinstance(declared, str) and declared and not isinstance(declared, Modality):
            cls.modality = modality_named(declared)
        if cls.decode_draws_noise and "generator" not in cls.decode_keywords():
            raise TypeError(f"{cls.__name__} declares decode_draws_noise but its _decode takes no generator=")
        known = _TOKENIZER_CLASSES.get(cls.__name__)
        # tracers (torch.export's module-stack proxies) derive same-named subclasses of a model class
        # while tracing: those must not replace the class that configs name
        if known is None or not issubclass(cls, known):
            _TOKENIZER_CLASSES[cls.__name__] = cls

    # ----------------------------------------------------------------- properties
    @property
    def config(self) -> dict[str, Any]:
        """The JSON-serialisable constructor arguments (what ``save_pretrained`` writes)."""
        return dict(self._hub_mixin_config or {})

    @property
    def codebook_size(self) -> int | tuple[int, ...]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``Tokens.ids`` for one item whose shape (without batch) is ``input_shape``."""
        raise NotImplementedError

    @property
    def sample_rate(self) -> int | None:
        return None

    @property
    def tokens_per_second(self) -> float | None:
        return None

    @classmethod
    def config_keys(cls) -> frozenset[str]:
        """Names of the constructor arguments: the keys a saved config holds besides ``tokenizer_class``."""
        return frozenset(_named_keywords(cls.__init__)[1:])  # __init__(self, <arguments>)

    # ----------------------------------------------------------------- declared decode capabilities
    @classmethod
    def decode_keywords(cls) -> frozenset[str]:
        """The family keywords ``decode`` takes besides ``clamp`` / ``dtype`` (those ``_decode`` names)."""
        return frozenset(_named_keywords(cls._decode)[2:])  # _decode(self, tokens, <keywords>)

    @classmethod
    def encode_keywords(cls) -> frozenset[str]:
        """The family keywords ``encode`` takes besides ``dtype`` (those ``_encode`` names), e.g. ``n_q``."""
        return frozenset(_named_keywords(cls._encode)[2:])  # _encode(self, x, <keywords>)

    def decode_noise_kwargs(self, seed: int) -> dict[str, Any]:
        """``{"generator": a generator on the model's device seeded with seed}`` when decode draws noise
        (:attr:`decode_draws_noise`), else ``{}``: decode keywords that make the result reproducible."""
        if not self.decode_draws_noise:
            return {}
        return {"generator": torch.Generator(device=self.device).manual_seed(int(seed))}

    def token_perturbation(self):
        """How RobusTok's latent perturbation applies to this tokenizer's tokens: a
        :class:`zoo.quant.perturb.TokenPerturbation` (by default over the ids of its zoo quantizers)."""
        from .quant.perturb import TokenPerturbation

        return TokenPerturbation(self)

    # ----------------------------------------------------------------- validation
    def validate_input(self, x: torch.Tensor) -> torch.Tensor:
        """Check and normalise an input batch (dtype float, range, shape); returns it on ``self.device``."""
        if not isinstance(self.modality, Modality):
            raise NotImplementedError(f"{type(self).__name__} has no modality set")
        return self.modality.validate(x).to(self.device)

    def _as_tokens(self, tokens: Tokens | torch.Tensor) -> Tokens:
        if isinstance(tokens, torch.Tensor):
            tokens = Tokens(ids=tokens)
        if not isinstance(tokens, Tokens):
            raise TypeError(f"decode expects zoo.Tokens or a LongTensor of ids, got {type(tokens).__name__}")
        validate_ids(tokens.ids, self.codebook_size)
        return tokens.to(self.device)

    # ----------------------------------------------------------------- precision
    def set_precision(self, encode=None, decode=None) -> "Tokenizer":
        """Default compute precision of each stage (see :mod:`zoo.precision`): ``torch.float32`` /
        ``torch.bfloat16`` / ``torch.float16`` or ``"fp32"`` / ``"bf16"`` / ``"fp16"``; None keeps
        the stage at its default (float32, or an enclosing autocast). A ``dtype=`` given to
        ``encode`` / ``decode`` overrides it for that call. Returns ``self``."""
        enc, dec = resolve_precision(encode), resolve_precision(decode)
        self._stage_precision = {"encode": enc, "decode": dec}
        return self

    @property
    def precision(self) -> dict[str, torch.dtype | None]:
        """The stage defaults set by :meth:`set_precision`: ``{"encode": dtype|None, "decode": dtype|None}``."""
        return dict(getattr(self, "_stage_precision", None) or {"encode": None, "decode": None})

    def _stage_context(self, stage: str, dtype):
        chosen = resolve_precision(dtype)
        if chosen is None:
            chosen = self.precision[stage]
        return precision_context(self.device, chosen)

    # ----------------------------------------------------------------- public API
    def encode(self, x: torch.Tensor, dtype=None, **kwargs) -> Tokens:
        """Signal -> :class:`Tokens` (inference: no grad, eval semantics are the caller's choice).

        dtype: compute precision of this call (``"fp32"`` / ``"bf16"`` / ``"fp16"`` or a torch
        dtype; default: :meth:`set_precision`'s). Ids are int64 and float extras float32 whatever it is.
        Other keywords are family-specific (e.g. ``sample_rate`` for audio); an unknown keyword raises
        ``TypeError``.
        """
        _check_keywords(self._encode, kwargs, "encode", type(self).__name__, common=("dtype",))
        x = self.validate_input(x)
        with torch.inference_mode(), self._stage_context("encode", dtype):
            tokens = self._encode(x, **kwargs)
        tokens.extras = to_float32(tokens.extras)
        return tokens

    def decode(self, tokens: Tokens | torch.Tensor, *, clamp: bool = True, dtype=None, **kwargs) -> torch.Tensor:
        """:class:`Tokens` (or ids) -> float32 signal (images / video ``[B, 3, ...]``, audio ``[B, T]``).

        clamp: every tokenizer takes it. True (default): the output is clipped to ``input_range``
            ([0, 1] for images and video, [-1, 1] for audio). False: the raw decoder output, which
            can lie slightly outside that range (what parity tests and unbiased metrics compare).
        dtype: compute precision of this call (as for :meth:`encode`); the output is float32.
        Family-specific keywords are documented on each class's ``_decode``: ``length`` (TiTok,
        One-D-Piece), ``text_guidance`` (TA-TiTok), ``k`` / ``steps`` / ``guidance`` / ``apg`` /
        ``noise`` / ``generator`` (FlexTok), ``bandwidth_id`` / ``trim`` (WavTokenizer),
        ``vocoder`` / ``griffin_lim_iters`` / ``generator`` (dMel). An unknown keyword raises
        ``TypeError`` naming the accepted ones.
        """
        _check_keywords(self._decode, kwargs, "decode", type(self).__name__, common=("clamp", "dtype"))
        tokens = self._as_tokens(tokens)
        with torch.inference_mode(), self._stage_context("decode", dtype):
            out = self._decode(tokens, **kwargs)
        out = to_float32(out)
        return out.clamp(*self.input_range) if clamp else out

    def reconstruct(self, x: torch.Tensor, encode_dtype=None, decode_dtype=None, **kwargs) -> torch.Tensor:
        """``decode(encode(x))``; keyword arguments go to ``decode``; each stage in its own precision."""
        return self.decode(self.encode(x, dtype=encode_dtype), dtype=decode_dtype, **kwargs)

    def _encode(self, x: torch.Tensor) -> Tokens:
        raise NotImplementedError

    def _decode(self, tokens: Tokens) -> torch.Tensor:
        """Tokens (validated, on the model's device) -> the UNCLAMPED signal; :meth:`decode` clamps."""
        raise NotImplementedError

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, save_directory: str | Path, **kwargs) -> Any:
        """Write ``config.json`` (``tokenizer_class``, ``config_version`` and the constructor arguments,
        named as in docs/config_names.md) and ``model.safetensors``."""
        from .config_names import CONFIG_VERSION

        config = {"tokenizer_class": type(self).__name__, "config_version": CONFIG_VERSION, **self.config}
        kwargs.setdefault("config", config)
        return super().save_pretrained(save_directory, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        from .checkpoint import save_state_dict

        save_state_dict(self.state_dict(), Path(save_directory) / "model.safetensors")

    @classmethod
    def from_pretrained(cls, source, *, revision: str | None = None, cache_dir=None, force_download: bool = False,
                        local_files_only: bool = False, token=None, **model_kwargs):
        """Load a zoo-format tokenizer of this class (``config.json`` + ``model.safetensors``).

        source: a local folder (``pathlib.Path``, plain string or ``local-dir:PATH``), or
        ``hf-hub:ORG/REPO[@REVISION]`` (:mod:`zoo.source`); ``revision``, ``cache_dir``,
        ``force_download``, ``local_files_only``, ``token``: hub download options. Loading is strict.
        """
        from .source import parse_folder_source

        folder = parse_folder_source(source).folder(revision=revision, cache_dir=cache_dir,
                                                    force_download=force_download,
                                                    local_files_only=local_files_only, token=token)
        # the mixin reads config.json and calls _from_pretrained with this local folder
        return super().from_pretrained(str(folder), **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir=None, force_download=False,
                         local_files_only=False, token=None, map_location: str = "cpu", strict: bool = True,
                         config: dict | None = None, **model_kwargs):
        """``model_id``: the local zoo-format folder :meth:`from_pretrained` resolved; ``config``: its whole
        stored config.json (the hub mixin passes it because this method names it; ``model_kwargs`` holds
        only the keys the constructor takes today, an old key name would be dropped), migrated here
        (:mod:`zoo.config_names`)."""
        if not strict:
            raise ValueError("zoo tokenizers always load with strict=True")
        if config is not None:
            model_kwargs = _migrated_kwargs(cls, config, model_kwargs, source=str(model_id))
        from .hub import local_file

        weights = local_file(model_id, "model.safetensors")
        with parameters_on_meta():  # the checkpoint tensors become the parameters (no second copy)
            model = cls(**model_kwargs)
        load_state_dict_strict(model, weights, source=str(model_id))
        if any(p.is_meta for p in model.parameters()):  # read inside zoo.checkpoint.load_on_meta: shapes only
            return model.eval()
        return model.to(map_location).eval()


def _migrated_kwargs(cls: type[Tokenizer], config: dict, model_kwargs: dict, source: str) -> dict:
    """Constructor arguments from a stored zoo ``config`` migrated to the current names
    (:func:`zoo.config_names.migrate_config`), with the caller's own keyword arguments (those of
    ``model_kwargs`` that the hub mixin did not copy from ``config``) taking precedence."""
    from .config_names import constructor_kwargs

    stored_class = config.get("tokenizer_class", cls.__name__)
    if stored_class != cls.__name__:
        raise ValueError(f"{source} holds a {stored_class}, not a {cls.__name__}; use zoo.from_pretrained")
    current = constructor_kwargs({**config, "tokenizer_class": cls.__name__}, source=f"{source}/config.json")
    given = {k: v for k, v in model_kwargs.items() if k not in config or v is not config[k]}
    return {**current, **given}


def _check_keywords(fn, kwargs: dict, what: str, owner: str, common: tuple[str, ...] = ()) -> None:
    """``TypeError`` naming the accepted keywords when ``kwargs`` holds one ``fn`` does not take."""
    if not kwargs:
        return
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = _named_keywords(fn)[1:]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{owner}.{what}() got unexpected keyword argument(s) {unknown}; "
                        f"it takes {sorted(set(common) | set(accepted)) or 'none'}")


def _named_keywords(fn) -> list[str]:
    """Names of the parameters of ``fn`` that can be passed by keyword (its first one included)."""
    params = inspect.signature(fn).parameters
    return [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def read_zoo_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read the ``config.json`` of a local zoo-format folder."""
    from .hub import local_file

    cfg = local_file(folder, "config.json")
    with open(cfg, encoding="utf-8") as f:
        config = json.load(f)
    if "tokenizer_class" not in config:
        raise ValueError(f"{cfg} is not a tokenizer-zoo config (no 'tokenizer_class'); "
                         "official checkpoints are loaded with zoo.load_official or zoo.create_tokenizer")
    return config


#: keywords of :func:`from_pretrained` that choose how hub files are downloaded
_DOWNLOAD_KEYWORDS = ("cache_dir", "force_download", "local_files_only", "token")


def from_pretrained(source: str | os.PathLike, revision: str | None = None, **kwargs) -> Tokenizer:
    """Load a zoo-format tokenizer (``config.json`` + ``model.safetensors``) of any class.

    source: a local folder (``pathlib.Path``, plain string or ``local-dir:PATH``), or
    ``hf-hub:ORG/REPO[@REVISION]`` (a revision in the text or ``revision=``; default ``main``), or a
    parsed :class:`zoo.source.LocalDir` / :class:`zoo.source.HubRepo`. Registry names are loaded by
    ``zoo.create_tokenizer``. ``kwargs``: hub download options (``cache_dir``, ``force_download``,
    ``local_files_only``, ``token``) and ``map_location``.
    """
    from .source import LocalDir, parse_folder_source

    download = {k: kwargs.pop(k) for k in _DOWNLOAD_KEYWORDS if k in kwargs}
    folder = parse_folder_source(source).folder(revision=revision, **download)
    cls = tokenizer_class(read_zoo_config(folder)["tokenizer_class"])
    return cls.from_pretrained(LocalDir(folder), **kwargs)
