"""Safe, atomic reading and writing of state dicts.

Reading never unpickles arbitrary objects: ``.safetensors`` through safetensors, anything
else through ``torch.load(weights_only=True)``. Writing goes to a temporary file in the same
folder, then ``os.replace`` (atomic on POSIX), so a killed process never leaves a torn file.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import nn

__all__ = ["atomic_path", "save_state_dict", "load_state_dict_file", "load_state_dict_strict",
           "CheckpointMismatchError"]


class CheckpointMismatchError(RuntimeError):
    """A state dict does not fit a module: names the missing, unexpected and mis-shaped keys."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike,
                    metadata: dict[str, str] | None = None) -> Path:
    """Atomically write ``state_dict`` as safetensors (tied tensors are stored once each)."""
    from safetensors.torch import save_file

    tensors, seen = {}, {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        tensors[k] = v.clone().contiguous() if key in seen or not v.is_contiguous() else v
        seen[key] = k
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def load_state_dict_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a checkpoint file without executing pickled code.

    ``.safetensors`` via safetensors; ``.pt/.pth/.bin/.ckpt`` via ``torch.load(weights_only=True)``.
    A Lightning-style ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is returned as is:
    unwrapping is the converter's business.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(map_location))
        except Exception as e:  # safetensors raises its own error types for corrupted headers
            raise CheckpointMismatchError(f"{path} is not a readable safetensors file: {e}") from e
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointMismatchError(
            f"{path} could not be read with torch.load(weights_only=True) (corrupted, or it holds pickled "
            f"objects other than tensors, which the zoo refuses to execute): {e}") from e


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor] | str | os.PathLike,
                           source: str = "state dict") -> nn.Module:
    """``module.load_state_dict(sd, strict=True)`` with a readable report of every mismatch."""
    if not isinstance(state_dict, Mapping):
        state_dict = load_state_dict_file(state_dict)
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or shapes:
        def fmt(name, items):
            if not items:
                return ""
            more = f" ... and {len(items) - 12} more" if len(items) > 12 else ""
            return f"\n  {name} ({len(items)}): " + ", ".join(items[:12]) + more

        raise CheckpointMismatchError(
            f"{source} does not match {type(module).__name__}:" + fmt("missing keys", missing)
            + fmt("unexpected keys", unexpected) + fmt("shape mismatches", shapes))
    module.load_state_dict(state_dict, strict=True)
    return module
