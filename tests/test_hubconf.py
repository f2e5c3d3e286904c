"""torch.hub entrypoints are generated from the registry and load locally."""
import importlib.util
from pathlib import Path

import torch

import zoo

ROOT = Path(__file__).resolve().parents[1]


def load_hubconf():
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_registry_name_has_an_entrypoint_with_docstring():
    hub = load_hubconf()
    assert "torch" in hub.dependencies
    for name in zoo.list_tokenizers():
        arch, tag = name.split(".", 1)
        for entry in (arch, f"{arch}__{tag}".replace("-", "_")):
            fn = getattr(hub, entry)
            assert callable(fn) and "pretrained" in fn.__doc__, entry
        assert name in getattr(hub, f"{arch}__{tag}".replace("-", "_")).__doc__


def test_torch_hub_load_local_untrained():
    arch = "titok_tiny"
    tok = torch.hub.load(str(ROOT), arch, source="local", pretrained=False, trust_repo=True)
    assert isinstance(tok, zoo.Tokenizer) and tok.modality == "image"
    assert tok.config == zoo.create_tokenizer("titok_tiny").config
