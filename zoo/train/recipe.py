"""Training recipes: YAML files plus ``key=value`` overrides, merged over :data:`DEFAULTS`.

A recipe is a nested dict. ``inherit: other.yaml`` (relative to the recipe) loads a base recipe
first; the child's keys are merged over it recursively. Overrides are dotted paths
(``optim.lr=3e-4``, ``model.kwargs.codebook_size=64``) with YAML-parsed values; the common
top-level keys (``output_dir``, ``max_steps``, ``checkpoint_every``, ``batch_size``, ``device``,
...) are written bare. Unknown keys raise ``ValueError`` (typos never pass silently), except
inside the free-form sections listed in :data:`FREE_SECTIONS`.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float, as users expect."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _yaml(text_or_file):
    return yaml.load(text_or_file, Loader=_Loader)  # noqa: S506 (SafeLoader subclass)


__all__ = ["DEFAULTS", "SMOKE", "load_recipe", "load_smoke_recipe", "apply_overrides", "parse_override", "merge",
           "validate_recipe"]

DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "paper": None,
    "output_dir": "runs/default",
    "seed": 0,
    "device": "auto",              # auto | cpu | cuda | cuda:N (accelerate picks the GPU per process)
    "max_steps": 1000,
    "stop_at_step": 0,             # end this invocation at this step (checkpointed; the schedule still
                                   # spans max_steps, so a resumed run continues it); 0: run to max_steps
    "batch_size": 8,               # GLOBAL batch per optimizer step (split over processes and accumulation)
    "grad_accum": 1,
    "mixed_precision": "no",       # no | fp16 | bf16
    "grad_clip": 1.0,              # max global grad norm; 0 disables
    "log_every": 10,
    "eval_every": 0,               # 0: evaluate only at the end
    "checkpoint_every": 0,         # 0: checkpoint only at the end
    "keep_last": 3,
    "num_workers": 0,
    "progress": True,
    "tensorboard": True,
    "find_unused_parameters": True,
    "freeze": [],                  # glob patterns of parameter names kept fixed (two-stage recipes)
    "monitor": "stats/recon_mse",  # the logged reconstruction loss that must fall (tests of tiny recipes)
    "smoke": [],                   # key=value overrides that shrink a paper recipe to a 2-step CPU check
    # setup: "pkg.module:fn" called as fn(model, **setup_kwargs) after building (e.g. to attach a
    # frozen teacher: FlexTok's REPA encoder, FQGAN / TokenFlow semantic teachers)
    "model": {"name": None, "class": None, "kwargs": {}, "init_from": None, "init_strict": True,
              "setup": None, "setup_kwargs": {}},
    "data": {"type": None, "holdout_fraction": 0.1, "split_salt": "zoo", "val": {}},
    "optim": {"name": "adamw", "lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 1e-4, "eps": 1e-8},
    "schedule": {"name": "cosine", "warmup_steps": 0, "min_lr_ratio": 0.0},
    "ema": {"decay": 0.0, "start_step": 0, "every": 1, "warmup": False},
    "losses": {
        "reconstruction": {"type": "l1", "weight": 0.0},
        "perceptual": {"weight": 0.0, "vgg_weights": None, "lpips_weights": None},
    },
    "gan": {
        "weight": 0.0,             # 0 disables the adversarial part entirely
        "start_step": 0,
        "loss": "hinge",           # hinge | lsgan | non_saturating
        "discriminators": [{"name": "patchgan", "kwargs": {}}],
        "feature_matching_weight": 0.0,
        "lecam_weight": 0.0,
        "lecam_decay": 0.999,
        "optim": {"name": "adamw", "lr": 1e-4, "betas": [0.5, 0.9], "weight_decay": 1e-4, "eps": 1e-8},
        "schedule": {"name": "constant", "warmup_steps": 0, "min_lr_ratio": 0.0},
    },
    # RobusTok latent perturbation on any VQ-style quantizer (zoo.quant.perturb); off while alpha == 0.
    # anneal_start / anneal_end count optimizer steps.
    "perturbation": {"alpha": 0.0, "delta": 1, "beta": 0.1, "anneal_start": 0, "anneal_end": 0, "end_ratio": 0.5},
    "eval": {"num_samples": 8, "batch_size": 4, "save_samples": 4, "use_ema": True, "metrics": ["psnr"]},
}

#: sections whose content is passed through to a builder and not checked against DEFAULTS
FREE_SECTIONS = {("model", "kwargs"), ("model", "setup_kwargs"), ("data",), ("gan", "discriminators"), ("data", "val")}

#: bare override keys that address nested entries
ALIASES = {"lr": "optim.lr", "warmup_steps": "schedule.warmup_steps", "ema_decay": "ema.decay",
           "gan_start_step": "gan.start_step"}


#: overrides of every smoke check (``--smoke``): 2 CPU steps, tiny batch, GAN on from the start,
#: no perceptual loss (its VGG16 weights are not available offline); the recipe's own ``smoke``
#: list (model / data shrinking) comes after these, the user's overrides last.
SMOKE = ["max_steps=2", "batch_size=2", "grad_accum=1", "device=cpu", "mixed_precision=no", "num_workers=0",
         "log_every=1", "eval_every=0", "checkpoint_every=0", "eval.num_samples=1", "eval.batch_size=1",
         "eval.save_samples=1", "tensorboard=false", "progress=false", "losses.perceptual.weight=0",
         "gan.start_step=0", "data.max_files=8", "data.max_val_files=2"]


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge (``update`` wins; lists, scalars and ``*kwargs`` dicts are replaced whole,
    so a child recipe that names another model does not inherit the parent's constructor arguments)."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not str(k).endswith("kwargs"):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = Path(path).resolve()
    if path in seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(map(str, seen + (path,)))}")
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = _yaml(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    _resolve_class_file(data, path.parent)
    parent = data.pop("inherit", None)
    if parent:
        base = _read_yaml(path.parent / parent, seen + (path,))
        data = merge(base, data)
    return data


def _resolve_class_file(data: dict, folder: Path) -> None:
    """``model.class: some_file.py:Class`` is relative to the recipe's folder when the file is there."""
    spec = (data.get("model") or {}).get("class") if isinstance(data.get("model"), dict) else None
    if isinstance(spec, str) and ".py:" in spec:
        file, name = spec.rsplit(":", 1)
        if not Path(file).is_absolute() and (folder / file).is_file():
            data["model"]["class"] = f"{(folder / file).resolve()}:{name}"


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=3e-4"`` -> ``("optim.lr", 0.0003)`` (value parsed as YAML)."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"override {text!r} has an empty key")
    try:
        value = _yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ValueError(f"override {text!r}: value is not valid YAML ({e})") from e
    return ALIASES.get(key, key), value


def _is_free(path: tuple[str, ...]) -> bool:
    return any(path[: len(p)] == p for p in FREE_SECTIONS)


def apply_overrides(recipe: dict, overrides: Iterable[str]) -> dict:
    """Apply ``key=value`` strings; a key outside the schema raises ``ValueError`` naming the options."""
    recipe = copy.deepcopy(recipe)
    for text in overrides:
        key, value = parse_override(text)
        parts = tuple(key.split("."))
        node, schema = recipe, DEFAULTS
        for i, part in enumerate(parts):
            prefix = parts[: i + 1]
            free = _is_free(parts[:i]) if i else False
            if not free and isinstance(schema, dict) and part not in schema and not _is_free(prefix):
                options = sorted(schema) if isinstance(schema, dict) else []
                raise ValueError(f"unknown recipe key {'.'.join(prefix)!r} in override {text!r}; "
                                 f"valid keys here: {options}")
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
                schema = schema.get(part, {}) if isinstance(schema, dict) else {}
    return recipe


def validate_recipe(recipe: dict, schema: dict = DEFAULTS, path: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` on keys unknown to :data:`DEFAULTS` and on basic inconsistencies."""
    for k, v in recipe.items():
        here = path + (k,)
        if _is_free(here):
            continue
        if k not in schema:
            raise ValueError(f"unknown recipe key {'.'.join(here)!r}; valid keys: {sorted(schema)}")
        if isinstance(schema[k], dict) and schema[k] and isinstance(v, dict):
            validate_recipe(v, schema[k], here)
    if not path:
        m = recipe["model"]
        if bool(m.get("name")) == bool(m.get("class")):
            raise ValueError("recipe model needs exactly one of model.name (registry name) or "
                             "model.class ('package.module:Class' or 'path/to/file.py:Class')")
        if not recipe["data"].get("type"):
            raise ValueError("recipe data.type is missing (image_folder, audio_folder or video_folder)")
        for key in ("max_steps", "batch_size", "grad_accum", "keep_last"):
            if not isinstance(recipe[key], int) or recipe[key] < (0 if key == "max_steps" else 1):
                raise ValueError(f"recipe {key} must be a positive integer, got {recipe[key]!r}")
        if not isinstance(recipe["stop_at_step"], int) or recipe["stop_at_step"] < 0:
            raise ValueError(f"recipe stop_at_step must be an integer >= 0, got {recipe['stop_at_step']!r}")
        if recipe["mixed_precision"] not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {recipe['mixed_precision']!r}")


def _intify(recipe: dict) -> dict:
    if recipe.get("mixed_precision") is False:  # YAML 1.1 reads a bare `no` as false
        recipe["mixed_precision"] = "no"
    for key in ("max_steps", "stop_at_step", "batch_size", "grad_accum", "keep_last", "log_every", "eval_every",
                "checkpoint_every", "num_workers", "seed"):
        v = recipe.get(key)
        if isinstance(v, float) and v.is_integer():
            recipe[key] = int(v)
    return recipe


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict:
    """Read a recipe (with ``inherit``), merge over :data:`DEFAULTS`, apply overrides, validate."""
    data = _read_yaml(Path(path))
    recipe = merge(DEFAULTS, data)
    recipe = _intify(apply_overrides(recipe, overrides))
    if not recipe.get("name"):
        recipe["name"] = Path(path).stem
    validate_recipe(recipe)
    return recipe


def load_smoke_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict:
    """The recipe shrunk for a 2-step CPU check: :data:`SMOKE`, then the recipe's ``smoke`` list,
    then ``overrides``."""
    own = load_recipe(path, overrides).get("smoke") or []
    if not isinstance(own, list) or not all(isinstance(o, str) for o in own):
        raise ValueError(f"{path}: smoke must be a list of 'key=value' strings")
    return load_recipe(path, [*SMOKE, *own, *overrides])
