"""Write a registry entry's weights folder in the official file layout, from a meta-device model.

The files have the names of ``entry.source.files`` and the formats the official repositories ship
(safetensors + config.json for TiTok / One-D-Piece / FlexTok / LARP, a training ``.pt`` with
``{"model", "ema", "args": argparse.Namespace}`` for FQGAN and TokenFlow, a Lightning ``.ckpt`` +
training yaml for WavTokenizer), produced by each converter's inverse (``to_official_*``). No weight
data is written: safetensors files are sparse (a valid header, a hole for the data) and torch files
hold meta tensors, so the released multi-GB architectures cost a few kB; read them back inside
:func:`zoo.checkpoint.load_on_meta`.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import yaml

from zoo.convert import flextok_layout, fqgan, larp, titok, tokenflow, wavtokenizer
from zoo.registry import get_info

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
           torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def write_sparse_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """A valid safetensors file whose data region is a hole (reads as zeros; no disk blocks)."""
    header, offset = {}, 0
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
    return path


def _training_checkpoint(path: Path, sd: dict[str, torch.Tensor], args: dict) -> None:
    torch.save({"model": sd, "ema": sd, "steps": 0, "args": argparse.Namespace(**args)}, path)


def write_official_folder(name: str, folder: str | os.PathLike) -> Path:
    """The official-layout folder of registry entry ``name`` (files named as ``entry.source.files``)."""
    info = get_info(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        model = info.builder(**info.kwargs)
    files, family = info.source.files, info.source.converter
    weights = folder / files["weights"] if "weights" in files else None
    config = folder / files["config"] if "config" in files else None
    if family in ("titok", "onedpiece"):
        write_sparse_safetensors(weights, titok.to_official_state_dict(model))
        config.write_text(json.dumps(titok.to_official_config(model), indent=1))
    elif family == "flextok":
        cfg = flextok_layout.to_official_config(model)
        # the released file also carries its config, stringified, in the safetensors header
        write_sparse_safetensors(weights, flextok_layout.to_official_state_dict(model),
                                 metadata={k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in cfg.items()})
        config.write_text(json.dumps(cfg, indent=1))
    elif family == "larp":
        write_sparse_safetensors(weights, larp.to_official_state_dict(model))
        config.write_text(json.dumps(larp.to_official_config(model), indent=1))
    elif family == "fqgan":
        _training_checkpoint(weights, fqgan.to_official_state_dict(model), fqgan.to_official_args(model))
    elif family == "tokenflow":
        _training_checkpoint(weights, tokenflow.to_official_state_dict(model), tokenflow.to_official_args(model))
    elif family == "wavtokenizer":
        torch.save({"epoch": 0, "global_step": 0, "state_dict": wavtokenizer.to_official_state_dict(model)}, weights)
        if config is not None:
            config.write_text(yaml.safe_dump(wavtokenizer.to_official_config(model)))
    elif files:
        raise NotImplementedError(f"no official layout writer for the {family!r} files of {name}")
    return folder
