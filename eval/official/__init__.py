"""Comparisons against the official implementations, run from a checkout the user supplies.

One module per family (``titok`` also serves One-D-Piece), each exposing ``SOURCE``
(:class:`~eval.official.checkout.OfficialSource`), ``PRESETS`` (published configurations),
``make_inputs(preset, options)`` (real photos / speech), ``build_official`` / ``build_zoo``
(run in the worker processes, see :mod:`eval.official.worker`) and ``check`` (outputs).
:func:`eval.official.compare.compare` runs one comparison; ``scripts/compare_official.py`` is
its command line.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["FAMILIES", "get_family"]

#: family name -> module (under eval.official) implementing it
FAMILIES = {"titok": "titok", "onedpiece": "onedpiece", "wavtokenizer": "wavtokenizer", "flextok": "flextok",
            "dmel": "dmel"}


def get_family(name: str) -> ModuleType:
    """The module implementing the comparison of ``name`` (see :data:`FAMILIES`)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{FAMILIES[name]}")
