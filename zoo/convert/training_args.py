"""Settings that official training scripts save inside their checkpoints.

The FQGAN and TokenFlow releases are training checkpoints: ``{"model": sd, "ema": sd, "args":
argparse.Namespace, ...}`` (optimizer and discriminator state may be there too), where ``args``
are the training script's command-line arguments (``vq_model``, ``codebook_size``,
``codebook_embed_dim``, ``commit_loss_beta``, ``teacher``, ``enhanced_decoder``, ...).
:func:`zoo.checkpoint.load_state_dict_file` reads the Namespace through an explicit allow-list
and returns it as a dict; :func:`checkpoint_settings` merges it with an official config.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from .architecture import ArchitectureMismatchError, same_setting

__all__ = ["unwrap_checkpoint", "checkpoint_settings"]


def unwrap_checkpoint(ckpt: Mapping) -> Mapping[str, torch.Tensor]:
    """The model weights of an official training checkpoint: ``ema`` if present, else ``model`` /
    ``state_dict`` (the order the official evaluation scripts use), else the mapping itself."""
    for key in ("ema", "model", "state_dict"):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            return ckpt[key]
    return ckpt


def checkpoint_settings(ckpt: Mapping | None, config: Mapping | None, *, source: str) -> dict[str, Any]:
    """The official config (a dict of ``ModelArgs`` / CLI names, or None) merged with the training
    arguments stored in the checkpoint (``ckpt["args"]``, when present). A setting given by both
    with different values raises :class:`~zoo.convert.architecture.ArchitectureMismatchError`."""
    stored = (ckpt or {}).get("args") if isinstance(ckpt, Mapping) else None
    if stored is not None and not isinstance(stored, Mapping):
        raise TypeError(f"{source}: 'args' should be the training arguments (a dict), got {type(stored).__name__}")
    settings = {k: v for k, v in dict(config or {}).items() if not k.startswith("_")}
    stored = dict(stored or {})
    clash = [f"{k}: config {settings[k]!r} vs checkpoint args {v!r}" for k, v in stored.items()
             if k in settings and not same_setting(settings[k], v)]
    if clash:
        raise ArchitectureMismatchError(f"{source}: the config disagrees with the training arguments stored in the "
                                        "checkpoint: " + "; ".join(clash))
    return {**stored, **settings}
