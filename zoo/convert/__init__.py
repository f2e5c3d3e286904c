"""Official checkpoint -> zoo module converters, one module per official family.

Each converter module registers functions with :func:`register_converter`; a converter takes
``(state_dict, config, *, config_path, files, arch, **kwargs)`` where ``state_dict`` is the
official checkpoint (a mapping of official key names to tensors, possibly wrapped with training
state, or None for weight-free tokenizers), ``config`` the official configuration as a dict (or
None), ``arch`` the zoo constructor arguments the caller expects (or None), and returns a zoo
module with the official weights loaded strictly. A converter reads the architecture from the
checkpoint where it is stored and from ``arch`` where it is not; disagreements raise
(:mod:`zoo.convert.architecture`). :func:`load_official` accepts paths for both and reads them
safely.
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
                  config: Mapping | str | os.PathLike | None, *, arch: Mapping[str, Any] | None = None, **kwargs):
    """Build the zoo module for an official checkpoint (DESIGN.md section 3).

    family: converter name, e.g. ``"titok"``, ``"onedpiece"``, ``"flextok"``,
        ``"fqgan.quantizer"``, ``"wavtokenizer"``, ``"dmel"`` (see :func:`list_converters`).
    state_dict: official state dict, or a path to it (safetensors, or a torch file read with
        ``weights_only=True``).
    config: official config dict, or a path to a ``.json`` / ``.yaml`` file. Converters that
        reference further files (e.g. FlexTok's VAE folder) resolve them relative to it.
    arch: the zoo constructor arguments the result must have (a registry entry's ``kwargs``):
        they supply what the checkpoint does not store, and the converted module is checked to
        have exactly the parameters of ``type(module)(**arch)``
        (:class:`~zoo.convert.architecture.ArchitectureMismatchError` otherwise).
    kwargs: converter options (see each converter).
    """
    from .architecture import check_same_architecture

    _load_all()
    if family not in _CONVERTERS:
        raise KeyError(f"no converter for {family!r}; known: {sorted(_CONVERTERS)}")
    config_path = None if config is None or isinstance(config, Mapping) else Path(config)
    source = str(state_dict) if isinstance(state_dict, (str, os.PathLike)) else f"the official {family} checkpoint"
    if state_dict is not None and not isinstance(state_dict, Mapping):
        state_dict = load_state_dict_file(state_dict)
    model = _CONVERTERS[family](state_dict, read_config(config), config_path=config_path, arch=arch, **kwargs)
    if arch is not None:
        check_same_architecture(model, {**arch, **_constructor_overrides(model, kwargs)}, source=source)
    return model


def _constructor_overrides(model, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The converter options that are also constructor arguments of ``model``'s class."""
    import inspect

    params = inspect.signature(type(model)).parameters
    return {k: v for k, v in kwargs.items() if k in params}
