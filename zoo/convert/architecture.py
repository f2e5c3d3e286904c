"""Agreement between the architecture a checkpoint stores and the one its caller expects.

Converters read the architecture from the checkpoint where it is stored (tensor shapes, the
official config, the training arguments some releases pickle into the file) and take what
the checkpoint does not store from ``arch``: the zoo constructor arguments the caller expects,
e.g. a registry entry's ``kwargs``. A setting known from both sides must agree; a
disagreement raises :class:`ArchitectureMismatchError` naming every differing setting, so a
registry entry never silently loads a different model than the one it advertises.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from ..checkpoint import CheckpointMismatchError

__all__ = ["ArchitectureMismatchError", "merge_settings", "check_stated", "check_same_architecture", "same_setting"]

log = logging.getLogger(__name__)


class ArchitectureMismatchError(CheckpointMismatchError, ValueError):
    """The checkpoint describes another architecture than the one expected, or two official
    sources of its settings (config, stored training arguments, weights) disagree."""


def same_setting(a: Any, b: Any) -> bool:
    """Equality of two setting values (lists == tuples, 2 == 2.0, booleans only equal booleans)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_setting(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(same_setting(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def merge_settings(found: Mapping[str, Any], arch: Mapping[str, Any] | None, *, source: str,
                   soft: Iterable[str] = ()) -> dict[str, Any]:
    """``arch`` updated with ``found`` (the checkpoint's values win), after checking agreement.

    found: settings read from the checkpoint. arch: the expected constructor arguments (None:
    nothing expected). soft: training-only settings (loss weights, dropout) that do not change
    the inference model: a disagreement keeps the checkpoint's value and logs a warning. Any
    other disagreement raises :class:`ArchitectureMismatchError`.
    """
    arch = dict(arch or {})
    soft = set(soft)
    hard, warn = [], []
    for key, value in found.items():
        if key in arch and not same_setting(value, arch[key]):
            (warn if key in soft else hard).append(f"{key}: checkpoint {value!r} vs expected {arch[key]!r}")
    if hard:
        raise ArchitectureMismatchError(f"{source} holds another architecture than expected: " + "; ".join(hard))
    if warn:
        log.warning("%s: training settings differ from the expected ones (the checkpoint's are used): %s",
                    source, "; ".join(warn))
    return {**arch, **found}


def check_stated(stated: Mapping[str, Any], found: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ArchitectureMismatchError` when a setting the checkpoint's config or stored
    arguments state (None: not stated) differs from the one read from its weights (``found``)."""
    bad = [f"{k}: stated {v!r} vs weights {found[k]!r}" for k, v in stated.items()
           if v is not None and not same_setting(v, found[k])]
    if bad:
        raise ArchitectureMismatchError(f"{source}: the stored settings disagree with the weights: " + "; ".join(bad))


def check_same_architecture(model: nn.Module, arch: Mapping[str, Any], *, source: str) -> None:
    """Raise :class:`ArchitectureMismatchError` unless ``type(model)(**arch)`` (built on the meta
    device: no memory) has exactly the state-dict keys and shapes of ``model``."""
    with torch.device("meta"):
        expected = type(model)(**arch).state_dict()
    got = model.state_dict()
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(got[k].shape)} vs expected {tuple(expected[k].shape)}"
                    for k in set(got) & set(expected) if got[k].shape != expected[k].shape)
    if missing or extra or shapes:
        parts = [f"{name} ({len(items)}): {', '.join(items[:8])}" + (" ..." if len(items) > 8 else "")
                 for name, items in (("absent from the checkpoint", missing), ("not expected", extra),
                                     ("shape differences", shapes)) if items]
        raise ArchitectureMismatchError(f"{source} holds another {type(model).__name__} than expected:\n  "
                                        + "\n  ".join(parts))
