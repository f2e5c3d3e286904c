"""Tokenizers composed from ``zoo.layers`` and ``zoo.quant``.

Importing this package imports every model module, which registers its classes and registry
entries; model modules import heavy optional dependencies lazily.
"""
import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
