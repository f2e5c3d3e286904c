"""torch.hub entrypoints are generated from the registry and load locally."""
from pathlib import Path

import torch

import zoo

ROOT = Path(__file__).resolve().parents[1]


def test_every_registry_name_has_an_entrypoint():
    entries = set(torch.hub.list(str(ROOT), source="local"))
    for name in zoo.list_tokenizers():
        arch, tag = name.split(".", 1)
        assert arch in entries and f"{arch}__{tag}".replace("-", "_") in entries, name


def test_hub_load_untrained_and_docstring():
    name = min(zoo.list_tokenizers(), key=lambda n: sum(1 for _ in n))  # any entry
    arch = name.split(".")[0]
    doc = torch.hub.help(str(ROOT), arch, source="local")
    assert zoo.get_info(arch).name in doc and "pretrained" in doc
    tok = torch.hub.load(str(ROOT), arch, source="local", pretrained=False, trust_repo=True)
    assert isinstance(tok, zoo.Tokenizer) and tok.modality == zoo.get_info(arch).modality
