"""dMel (apple/dmel) against the zoo: tokenising real speech at 16 kHz.

Official side: Apple's ``dmel`` package (the ``dmel/`` folder of a checkout when one is given,
else the installed PyPI package) with the settings of its ``run_example.py``; the call is
``DiscretizedLogMelFbank(x, lengths)`` (ids with its bos / eos frames). Zoo side:
``zoo.load_official("dmel", None, None).encode(x, bos_eos=True, lengths=lengths)``. dMel has no
weights; ids must be identical (the zoo reproduces the package's float32 decision points).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkout import OfficialSource
from .options import resolve

__all__ = ["SOURCE", "PRESETS", "resolve_options", "describe", "make_inputs", "build_official", "build_zoo",
           "check"]

SOURCE = OfficialSource(repo="apple/dmel", commit="134d9dea26099eca712a8cfd1e36329915df7442",
                        markers=("dmel/__init__.py",), installed_package="dmel")

PRESETS = {"10s": {"seconds": 10.0}, "60s": {"seconds": 60.0}}
SAMPLE_RATE = 16000


def resolve_options(preset: str, options: dict) -> dict:
    """Options: ``batch`` (clips per call, default 1)."""
    return {**resolve("dmel", options, {"batch": 1}, {"batch": (1, None)}), "seconds": PRESETS[preset]["seconds"]}


def describe(preset: str, options: dict) -> dict:
    return {"name": "dMel (vs the dmel package)", "operation": "encode", "batch": options["batch"],
            "input": f"{options['seconds']:g} s speech"}


def make_inputs(preset: str, options: dict) -> dict[str, torch.Tensor]:
    from ..benchmark import speech_input

    return {"audio": speech_input(SAMPLE_RATE, options["seconds"], options["batch"])}


class _Side:
    def __init__(self, fn, x: torch.Tensor):
        self.fn, self.x = fn, x

    def run(self):
        return self.fn(self.x)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        return {"ids": self.run()}


def _lengths(x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), x.shape[-1], dtype=torch.long)


def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path | None):
    from safetensors.torch import load_file

    from ..benchmark import official_dmel

    ref = official_dmel()
    return _Side(lambda x: ref(x, _lengths(x))[0], load_file(str(workdir / "inputs.safetensors"))["audio"])


def build_zoo(preset: str, workdir: Path, options: dict, seed: int = 0):
    import zoo
    from safetensors.torch import load_file

    tok = zoo.load_official("dmel", None, None).eval()
    return _Side(lambda x: tok.encode(x, bos_eos=True, lengths=_lengths(x)).ids,
                 load_file(str(workdir / "inputs.safetensors"))["audio"])


def check(preset: str, options: dict, official: dict, ours: dict) -> dict:
    """Ids identical (shape and every value)."""
    a, b = official["ids"], ours["ids"]
    same = a.shape == b.shape and torch.equal(a, b)
    n = int((a != b).sum()) if a.shape == b.shape else -1
    return {"ok": same, "ids_total": a.numel(), "ids_differ": n,
            "summary": "ids identical" if same else (f"{n}/{a.numel()} ids differ" if n >= 0 else
                                                     f"id shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")}
