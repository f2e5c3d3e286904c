"""Official checkpoint -> zoo module converters, one module per official family.

Each converter module registers functions with :func:`register_converter`; a converter takes
``(state_dict, config, **kwargs)`` where ``state_dict`` is a mapping of official key names
to tensors (or None for weight-free tokenizers) and ``config`` the official configuration as
a dict (or None), and returns a zoo module with the official weights loaded strictly.
:func:`load_official` accepts paths for both and reads them safely.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import Any, Callable, Mapping

from ..checkpoint import load_state_dict_file

__all__ = ["register_converter", "load_official", "list_converters", "read_config"]

_CONVERTERS: dict[str, Callable[..., Any]] = {}


def register_converter(*names: str):
    """Decorator: register a converter under one or more family names (e.g. ``"titok"``)."""
    def deco(fn):
        for n in names:
            if n in _CONVERTERS and _CONVERTERS[n] is not fn:
                raise ValueError(f"converter {n!r} registered twice")
            _CONVERTERS[n] = fn
        return fn
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def list_converters() -> list[str]:
    _load_all()
    return sorted(_CONVERTERS)


def read_config(config: Mapping | str | os.PathLike | None) -> dict | None:
    """An official config as a dict: a mapping, or a ``.json`` / ``.yaml`` file path."""
    if config is None or isinstance(config, Mapping):
        return None if config is None else dict(config)
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def load_official(family: str, state_dict: Mapping | str | os.PathLike | None,
                  config: Mapping | str | os.PathLike | None, **kwargs):
    """Build the zoo module for an official checkpoint (DESIGN.md section 3).

    family: converter name, e.g. ``"titok"``, ``"onedpiece"``, ``"flextok"``,
        ``"fqgan.quantizer"``, ``"wavtokenizer"``, ``"dmel"`` (see :func:`list_converters`).
    state_dict: official state dict, or a path to it (safetensors, or a torch file read with
        ``weights_only=True``).
    config: official config dict, or a path to a ``.json`` / ``.yaml`` file. Converters that
        reference further files (e.g. FlexTok's VAE folder) resolve them relative to it.
    """
    _load_all()
    if family not in _CONVERTERS:
        raise KeyError(f"no converter for {family!r}; known: {sorted(_CONVERTERS)}")
    config_path = None if config is None or isinstance(config, Mapping) else Path(config)
    if state_dict is not None and not isinstance(state_dict, Mapping):
        state_dict = load_state_dict_file(state_dict)
    return _CONVERTERS[family](state_dict, read_config(config), config_path=config_path, **kwargs)
