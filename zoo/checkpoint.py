"""Safe, atomic reading and writing of state dicts.

Reading never unpickles arbitrary objects: ``.safetensors`` with plain reads of its validated
header and data (:func:`read_safetensors`), anything else through ``torch.load(weights_only=True)``
with one allow-listed class, ``argparse.Namespace`` (the training arguments that FQGAN and TokenFlow
store in their released ``.pt`` files; returned as plain dicts). Writing goes to a temporary file in the same
folder, then ``os.replace`` (atomic on POSIX), so a killed process never leaves a torn file.
Inside :func:`load_on_meta`, files are read as meta tensors (shapes and dtypes, no data) and
modules loaded from them stay on the meta device: the architecture a checkpoint describes can be
built and inspected without reading its weights.
Building a module inside :func:`parameters_on_meta` and then loading it with
:func:`load_state_dict_strict` adopts the checkpoint tensors as parameters: the weights are held
once (not a random init plus a copy), which keeps the peak memory of loading large models low.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import nn

__all__ = ["atomic_path", "state_dict_sha256", "save_state_dict", "load_state_dict_file", "load_state_dict_strict",
           "parameters_on_meta", "read_safetensors", "load_on_meta", "CheckpointMismatchError",
           "ALLOWED_PICKLE_GLOBALS"]

#: the only non-tensor class a pickled checkpoint may hold: the training CLI arguments that
#: FQGAN and TokenFlow store under ``"args"`` (instances become plain dicts on loading)
ALLOWED_PICKLE_GLOBALS = (argparse.Namespace,)

_ON_META: ContextVar[bool] = ContextVar("zoo_load_on_meta", default=False)


@contextmanager
def load_on_meta() -> Iterator[None]:
    """Inside this context checkpoint files are read as meta tensors (safetensors: the header only;
    torch files: ``map_location="meta"``) and :func:`load_state_dict_strict` leaves modules on the
    meta device. Use it to build the exact architecture a (possibly huge) checkpoint describes,
    e.g. ``with load_on_meta(): tok = zoo.create_tokenizer(name, weights=folder)``, then read
    ``tok.token_shape(...)``, ``tok.codebook_size`` or parameter counts; such a model cannot run."""
    token = _ON_META.set(True)
    try:
        yield
    finally:
        _ON_META.reset(token)


class CheckpointMismatchError(RuntimeError):
    """A state dict does not fit a module: names the missing, unexpected and mis-shaped keys."""


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path`` (with permission
    bits ``mode`` when given; the temporary file is private, 0600, until then)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state dict's content: for each key in sorted order its name, dtype, shape and raw
    bytes. Identifies the weights actually used, whatever file format or conversion they came from."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


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

    ``.safetensors`` via :func:`read_safetensors`; ``.pt/.pth/.bin/.ckpt`` via
    ``torch.load(weights_only=True)`` with :data:`ALLOWED_PICKLE_GLOBALS` allowed (an
    ``argparse.Namespace`` comes back as a plain dict); any other pickled class is refused with
    :class:`CheckpointMismatchError` naming it. A Lightning-style ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper is returned as is: unwrapping is the converter's business.
    Inside :func:`load_on_meta` every tensor is a meta tensor.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if _ON_META.get():
        map_location = "meta"
    if path.suffix == ".safetensors":
        tensors = read_safetensors(path, meta=torch.device(map_location).type == "meta")
        return tensors if torch.device(map_location).type in ("cpu", "meta") else \
            {k: v.to(map_location) for k, v in tensors.items()}
    try:
        with torch.serialization.safe_globals(list(ALLOWED_PICKLE_GLOBALS)):
            loaded = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        why = (f"it pickles the class {refused.group(1)}, which is not allow-listed (allowed: "
               f"{', '.join(c.__module__ + '.' + c.__qualname__ for c in ALLOWED_PICKLE_GLOBALS)}); the zoo "
               "never executes pickled code" if refused else
               "corrupted, or it holds pickled objects other than tensors, which the zoo refuses to execute")
        raise CheckpointMismatchError(f"{path} could not be read with torch.load(weights_only=True): {why}.\n"
                                      f"(cause: {type(e).__name__}: {str(e).splitlines()[0][:300]})") from e
    return _plain(loaded)


def _plain(obj):
    """``argparse.Namespace`` objects (anywhere in dicts / lists / tuples) -> plain dicts."""
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn,
                       "F8_E5M2": torch.float8_e5m2}
_MAX_HEADER_BYTES = 100_000_000


def read_safetensors(path: str | os.PathLike, meta: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file as a CPU tensor in its own memory, read with plain
    file reads (no memory map: a converter that fuses or reshapes weights then holds each byte
    once, instead of its result plus the mapped pages of the original file). The header is
    checked: a truncated or inconsistent file raises :class:`CheckpointMismatchError`.
    meta: read only the header and return meta tensors of the stored shapes and dtypes."""
    path = Path(path)
    if sys.byteorder != "little" and not meta:  # the format is little-endian; let the library swap bytes
        from safetensors.torch import load_file

        return load_file(str(path))
    size = path.stat().st_size

    def bad(why: str) -> CheckpointMismatchError:
        return CheckpointMismatchError(f"{path} is not a readable safetensors file: {why}")

    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise bad(f"{size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, _MAX_HEADER_BYTES):
            raise bad(f"header length {n} exceeds the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise bad(f"header is not JSON ({e})") from None
        if not isinstance(header, dict):
            raise bad("header is not a JSON object")
        header.pop("__metadata__", None)
        data_bytes = size - 8 - n
        entries = []
        for name, info in header.items():
            dtype = _SAFETENSORS_DTYPES.get(info.get("dtype")) if isinstance(info, dict) else None
            shape, offsets = (info.get("shape"), info.get("data_offsets")) if isinstance(info, dict) else (None, None)
            if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise bad(f"tensor {name!r} has an unsupported dtype or shape: {info}")
            if not (isinstance(offsets, list) and len(offsets) == 2 and 0 <= offsets[0] <= offsets[1] <= data_bytes):
                raise bad(f"tensor {name!r} has data offsets {offsets} outside the {data_bytes} data bytes")
            if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
                raise bad(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} of {info['dtype']}")
            entries.append((offsets[0], name, dtype, shape))
        out = {}
        for begin, name, dtype, shape in sorted(entries, key=lambda e: e[0]):
            t = torch.empty(shape, dtype=dtype, device="meta" if meta else "cpu")
            if t.numel() and not meta:
                f.seek(8 + n + begin)
                if f.readinto(memoryview(t.view(-1).view(torch.uint8).numpy())) != t.numel() * dtype.itemsize:
                    raise bad(f"tensor {name!r} is truncated")
            out[name] = t
    return {name: out[name] for name in header}  # header order (safetensors writes it sorted)


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
    on_meta = _ON_META.get()
    if on_meta or any(t.is_meta for _, t in _named_tensors(module)):
        # parameters built by parameters_on_meta(): adopt the checkpoint tensors (cast to the module's
        # dtype, contiguous) instead of copying them into a second allocation
        adopted, seen = {}, set()
        for k, v in state_dict.items():
            v = v.to(own[k].dtype).contiguous() if v.is_floating_point() else v.contiguous()
            if v.is_meta:  # no storage to share
                adopted[k] = v
                continue
            where = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
            # one checkpoint tensor under two keys must not tie two independent parameters
            adopted[k] = v.clone() if where in seen else v
            seen.add(where)
        tied: dict[int, list[str]] = {}
        for name, p in module.named_parameters(remove_duplicate=False):
            tied.setdefault(id(p), []).append(name)
        module.load_state_dict(adopted, strict=True, assign=True)
        for names in (n for n in tied.values() if len(n) > 1):  # assign un-ties shared parameters: re-tie
            shared = module.get_parameter(names[0])
            for name in names[1:]:
                owner, _, leaf = name.rpartition(".")
                setattr(module.get_submodule(owner), leaf, shared)
        left = sorted(n for n, t in _named_tensors(module) if t.is_meta)
        if left and not on_meta:
            raise CheckpointMismatchError(f"{source}: {len(left)} tensor(s) of {type(module).__name__} are still on the "
                                          f"meta device after loading (non-persistent buffers must not be built "
                                          f"under parameters_on_meta): {left[:12]}")
    else:
        module.load_state_dict(state_dict, strict=True)
    return module


def _named_tensors(module: nn.Module):
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Inside this context every ``nn.Parameter`` registered on a module lives on the meta device
    (no memory, initialisers are no-ops); buffers stay real, so non-persistent tables (sin-cos
    position embeddings, mel filters) are computed as usual. Load the module with
    :func:`load_state_dict_strict` afterwards, which adopts the checkpoint tensors. It patches
    ``nn.Module.register_parameter`` while active: do not build unrelated modules in other threads
    meanwhile."""
    original = nn.Module.register_parameter

    def register_on_meta(self, name, param):
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = original
