"""Build the objects a recipe names: the tokenizer, optimizers, discriminators.

Classes are named ``"package.module:Class"`` or ``"path/to/file.py:Class"`` (a file outside the
package, e.g. a research model); registry names go through ``zoo.create_tokenizer``.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

__all__ = ["load_class", "build_model", "apply_freeze", "build_optimizer"]


def load_class(spec: str) -> Any:
    """``"pkg.mod:Name"`` or ``"file.py:Name"`` -> the object ``Name``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"class spec must look like 'package.module:Class' or 'file.py:Class', got {spec!r}")
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"class file not found: {path}")
        mod_name = f"_zoo_recipe_{path.stem}_{abs(hash(str(path)))}"
        module = sys.modules.get(mod_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_name] = module
            loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, name):
        raise AttributeError(f"{where} has no attribute {name!r}")
    return getattr(module, name)


def build_model(cfg: dict) -> nn.Module:
    """``model`` section -> tokenizer (untrained, or initialised from ``init_from``)."""
    from zoo.config_names import check_current_names

    kwargs = dict(cfg.get("kwargs") or {})
    if cfg.get("name"):  # a key under an old name (docs/config_names.md) raises, naming the new one
        from zoo.registry import create_tokenizer, get_info

        check_current_names(get_info(cfg["name"]).builder, kwargs, "recipe model.kwargs")
        model = create_tokenizer(cfg["name"], **kwargs)
    else:
        cls = load_class(cfg["class"])
        check_current_names(cls, kwargs, "recipe model.kwargs")
        model = cls(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the recipe's model is a {type(model).__name__}, not a torch.nn.Module")
    if cfg.get("init_from"):
        _init_from(model, cfg["init_from"], strict=bool(cfg.get("init_strict", True)))
    if cfg.get("setup"):
        load_class(cfg["setup"])(model, **(cfg.get("setup_kwargs") or {}))
    return model


def _init_from(model: nn.Module, source: str, strict: bool) -> None:
    from zoo.checkpoint import load_state_dict_file, load_state_dict_strict

    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    sd = load_state_dict_file(path)
    if strict:
        load_state_dict_strict(model, sd, source=str(path))
        return
    own = model.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no tensor matches the model (init_strict=false still needs some overlap)")
    model.load_state_dict(usable, strict=False)


def apply_freeze(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters whose names match any glob; returns their names."""
    patterns = list(patterns or [])
    frozen = []
    for name, p in model.named_parameters():
        if any(fnmatch.fnmatch(name, pat) for pat in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    if patterns and not frozen:
        raise ValueError(f"freeze patterns {patterns} match no parameter")
    return frozen


def build_optimizer(params: Iterable[nn.Parameter], cfg: dict) -> torch.optim.Optimizer:
    """``{name: adamw|adam|sgd, lr, betas, weight_decay, eps}``; 1-D parameters (norms, biases)
    get no weight decay."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters for the optimizer")
    name = cfg.get("name", "adamw")
    wd = float(cfg.get("weight_decay", 0.0))
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": wd},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    lr = float(cfg.get("lr", 1e-4))
    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(groups, lr=lr, betas=tuple(float(b) for b in cfg.get("betas", (0.9, 0.999))),
                   eps=float(cfg.get("eps", 1e-8)))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(cfg.get("momentum", 0.9)))
    raise ValueError(f"unknown optimizer {name!r}; choose adamw, adam or sgd")
