"""One name per configuration concept (the glossary: docs/config_names.md) and the migration of older
zoo configs to it.

A zoo ``config.json`` (``save_pretrained``) holds ``tokenizer_class``, ``config_version`` and the
tokenizer's constructor arguments. ``config_version`` is an int, :data:`CONFIG_VERSION` for configs
written by this zoo; a config without it is version 1 (written before the glossary). Each version
step renames keys per tokenizer class (:data:`RENAMED`); :func:`migrate_config` applies the steps
from the config's version to the current one and refuses a config newer than this zoo or holding a
key its class does not take, naming the key (and its current name when it is an old one).
"""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["CONFIG_VERSION", "RENAMED", "migrate_config", "constructor_kwargs", "check_current_names",
           "current_name"]

#: the version of the configs this zoo writes
CONFIG_VERSION = 2

_WIDTHS = {"encoder_dim": "enc_width", "encoder_depth": "enc_depth", "encoder_heads": "enc_heads",
           "encoder_norm": "enc_norm", "decoder_dim": "dec_width", "decoder_depth": "dec_depth",
           "decoder_heads": "dec_heads"}

#: version v -> {tokenizer class name: {old key: new key}}: the renames from version v to v + 1
RENAMED: dict[int, dict[str, dict[str, str]]] = {
    1: {
        "TiTok": {"token_size": "codebook_dim", "beta": "commitment_weight"},
        "FlexTok": {"enc_dim": "enc_width", "dec_dim": "dec_width", "repa_dim": "teacher_dim"},
        "FQGAN": {"beta": "commitment_weight", "entropy_loss_ratio": "entropy_weight",
                  "disentangle_ratio": "disentangle_weight", "feat_dims": "teacher_dims"},
        "TokenFlow": {"beta": "commitment_weight", "entropy_loss_ratio": "entropy_weight"},
        "Video1DTokenizer": {**_WIDTHS, "code_dim": "codebook_dim", "prior_dim": "prior_width"},
        "CausalConvVideoTokenizer": {"code_dim": "codebook_dim"},
        "WavTokenizer": {"dim": "vocos_width", "intermediate_dim": "vocos_mlp_hidden", "num_layers": "vocos_depth"},
        "DMel": {"vocos_dim": "vocos_width", "vocos_intermediate_dim": "vocos_mlp_hidden",
                 "vocos_layers": "vocos_depth"},
    },
}


def current_name(class_name: str, key: str) -> str | None:
    """The current name of ``key`` when it is an old (renamed) key of ``class_name``, else None."""
    name = None
    for version in sorted(RENAMED):
        renames = RENAMED[version].get(class_name, {})
        if (name or key) in renames:
            name = renames[name or key]
    return name


def _version(config: Mapping[str, Any], source: str) -> int:
    version = config.get("config_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{source}: config_version must be an int >= 1, got {version!r}")
    if version > CONFIG_VERSION:
        raise ValueError(f"{source} has config_version {version}, newer than this zoo understands "
                         f"({CONFIG_VERSION}): upgrade tokenizer-zoo to load it")
    return version


def migrate_config(config: Mapping[str, Any], source: str = "the config") -> dict[str, Any]:
    """A zoo config (``tokenizer_class``, optional ``config_version``, constructor arguments) -> the same
    config at :data:`CONFIG_VERSION` with the glossary's key names. Raises ``ValueError`` for a newer
    version, a key given under both its old and its new name, or a key the class does not take."""
    from .api import tokenizer_class

    if "tokenizer_class" not in config:
        raise ValueError(f"{source} is not a tokenizer-zoo config (no 'tokenizer_class')")
    name = config["tokenizer_class"]
    cls = tokenizer_class(name)
    version = _version(config, source)
    kwargs = {k: v for k, v in config.items() if k not in ("tokenizer_class", "config_version")}
    for step in range(version, CONFIG_VERSION):
        for old, new in RENAMED.get(step, {}).get(name, {}).items():
            if old not in kwargs:
                continue
            if new in kwargs:
                raise ValueError(f"{source} (config_version {version}) gives both {old!r} and its new name {new!r}")
            kwargs[new] = kwargs.pop(old)
    check_current_names(cls, kwargs, f"{source} (config_version {version})")
    return {"tokenizer_class": name, "config_version": CONFIG_VERSION, **kwargs}


def constructor_kwargs(config: Mapping[str, Any], source: str = "the config") -> dict[str, Any]:
    """The constructor arguments of a stored zoo config, migrated (:func:`migrate_config`)."""
    migrated = migrate_config(config, source)
    return {k: v for k, v in migrated.items() if k not in ("tokenizer_class", "config_version")}


def check_current_names(cls: type, kwargs: Mapping[str, Any], where: str) -> None:
    """``ValueError`` naming every key of ``kwargs`` that the tokenizer class ``cls``'s constructor does not
    take (with its current name when it is an old one; see docs/config_names.md). Anything that is not a
    zoo tokenizer class (a recipe's own model, a builder function) is left to its constructor."""
    from .api import Tokenizer

    if not (isinstance(cls, type) and issubclass(cls, Tokenizer)):
        return
    unknown = sorted(set(kwargs) - set(cls.config_keys()))
    if not unknown:
        return
    hints = [f"{k!r} (now {current_name(cls.__name__, k)!r})" if current_name(cls.__name__, k) else repr(k)
             for k in unknown]
    raise ValueError(f"{where}: {cls.__name__} takes no argument {', '.join(hints)}; old names were renamed "
                     f"per docs/config_names.md; it takes {sorted(cls.config_keys())}")
