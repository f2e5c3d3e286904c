"""Registry-driven: every pretrained entry with an official source loads, through
``zoo.create_tokenizer(name, pretrained=True, weights=FOLDER)``, from a folder in the official file
layout (tests/official_layout.py), and the built model has the advertised token shape, codebook and
sample rate. The folders are written from a meta-device model and read inside ``load_on_meta`` (shapes
only): the released multi-GB architectures are converted without allocating their weights.
"""
from __future__ import annotations

import pytest
import torch

import zoo
from tests.official_layout import write_official_folder
from zoo.checkpoint import load_on_meta
from zoo.registry import get_info

OFFICIAL = [n for n in zoo.list_tokenizers(pretrained=True) if get_info(n).source.converter is not None]


def test_every_official_family_is_covered():
    families = {get_info(n).source.converter for n in OFFICIAL}
    assert {"titok", "onedpiece", "flextok", "fqgan", "tokenflow", "wavtokenizer", "larp", "dmel"} <= families


@pytest.mark.parametrize("name", OFFICIAL)
def test_entry_loads_what_it_advertises_from_an_official_folder(name, tmp_path, monkeypatch):
    info = get_info(name)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    folder = write_official_folder(name, tmp_path / "official")
    assert sorted(p.name for p in folder.iterdir()) == sorted(info.source.files.values())
    with load_on_meta():
        tok = zoo.create_tokenizer(name, pretrained=True, weights=folder)
    assert isinstance(tok, zoo.Tokenizer) and not tok.training
    cb = tok.codebook_size
    assert (tuple(cb) if isinstance(cb, (tuple, list)) else cb) == \
        (tuple(info.codebook_size) if isinstance(info.codebook_size, (tuple, list)) else info.codebook_size)
    if info.modality == "audio":
        assert tok.sample_rate == info.sample_rate
        assert tuple(tok.token_shape((info.sample_rate,))) == tuple(info.token_shape)
    else:
        assert tuple(tok.token_shape((3, *info.input_size))) == tuple(info.token_shape)
    # the same parameters as the entry's own (untrained) architecture, and no data was read or cached
    with torch.device("meta"):
        expected = zoo.create_tokenizer(name, pretrained=False).state_dict()
    got = tok.state_dict()
    assert {k: tuple(v.shape) for k, v in got.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    assert all(p.is_meta for p in tok.parameters())
    assert not (tmp_path / "zoo-cache").exists(), "weights= must not write the converted cache"


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    """The ds16 FQGAN file under the ds8 entry's name: refused, naming the difference (no silent
    other model)."""
    src = write_official_folder("fqgan_dual_ds16.in1k", tmp_path / "ds16")
    (src / "fqgan_dual_ds16.pt").rename(src / "fqgan_dual_ds8.pt")
    with load_on_meta(), pytest.raises(zoo.CheckpointMismatchError, match="ch_mult"):
        zoo.create_tokenizer("fqgan_dual_ds8.in1k", weights=src)


def test_a_stale_converted_cache_is_converted_again(tmp_path, monkeypatch, caplog):
    """A cached conversion of another architecture (an older converter's output) is not used: the
    official files (here an offline Hugging Face cache) are converted again."""
    import huggingface_hub.constants as hc

    from zoo.hub import converted_cache_dir

    name = "fqgan_dual_ds8.in1k"
    info = get_info(name)
    hub = tmp_path / "hub"
    repo = hub / f"models--{info.source.hf_repo.replace('/', '--')}"
    write_official_folder(name, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / (info.source.revision or "main")).write_text("0" * 40)
    for key, value in (("HF_HUB_CACHE", str(hub)), ("HF_HUB_OFFLINE", True)):
        monkeypatch.setattr(hc, key, value)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    zoo.create_tokenizer("fqgan_tiny.untrained").save_pretrained(converted_cache_dir(name, info.source))
    with load_on_meta(), caplog.at_level("WARNING"):
        tok = zoo.create_tokenizer(name, pretrained=True)
    assert "ignoring the cached conversion" in caplog.text
    assert tok.token_shape((3, 256, 256)) == (1024, 2)
