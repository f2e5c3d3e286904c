"""One-D-Piece (turingmotors/One-D-Piece) against the zoo: encode + decode of real photos.

The same protocol as :mod:`eval.official.titok` with ``modeling.one_d_piece.OneDPiece`` built from
the checkout's ``configs/one-d-piece_*.yaml`` and the zoo's ``"onedpiece"`` converter; ``length``
(tokens kept at decode, default all) is passed to both decoders.
"""
from __future__ import annotations

from pathlib import Path

from .checkout import OfficialSource
from .options import resolve
from .titok import check, image_runners, make_inputs  # noqa: F401 (check, make_inputs: family interface)
from .titok import describe as _describe

__all__ = ["SOURCE", "PRESETS", "resolve_options", "describe", "make_inputs", "build_official", "build_zoo", "check"]

SOURCE = OfficialSource(
    repo="turingmotors/One-D-Piece", commit="473665d1ec5d4f96e07f1c379166f668ee17b961",
    markers=("modeling/one_d_piece.py", "modeling/titok.py", "configs/one-d-piece_l256.yaml"),
    packages=("omegaconf", "einops", "huggingface_hub"))

PRESETS = {
    "l256": {"config": "configs/one-d-piece_l256.yaml", "name": "One-D-Piece-L-256"},
    "b256": {"config": "configs/one-d-piece_b256.yaml", "name": "One-D-Piece-B-256"},
    "s256": {"config": "configs/one-d-piece_s256.yaml", "name": "One-D-Piece-S-256"},
}


def resolve_options(preset: str, options: dict) -> dict:
    """Options: ``batch`` (photos per call, default 1), ``length`` (tokens decoded, default all 256)."""
    return resolve("onedpiece", options, {"batch": 1, "length": None}, {"batch": (1, None), "length": (1, 256)})


def describe(preset: str, options: dict) -> dict:
    d = _describe(preset, options, PRESETS)
    if options["length"] is not None:
        d["operation"] = f"encode + decode of the first {options['length']} tokens"
    return d


def _runners(options: dict):
    kw = {} if options["length"] is None else {"length": options["length"]}
    return image_runners("modeling.one_d_piece", "OneDPiece", "onedpiece", kw)


def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path):
    return _runners(options)[0](preset, workdir, seed, options, root, PRESETS)


def build_zoo(preset: str, workdir: Path, options: dict, seed: int = 0):
    return _runners(options)[1](preset, workdir, options, seed)
