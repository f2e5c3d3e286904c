"""One name per config concept (docs/config_names.md): saved configs carry ``config_version``; older zoo
configs (the shipped demo configs, converted-official caches) are migrated on loading; a newer version,
an unknown key or an old key name in a recipe raise naming the problem."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import zoo
from zoo.config_names import CONFIG_VERSION, RENAMED, constructor_kwargs, migrate_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ("titok_demo64.demo", "wavtokenizer_demo75.demo", "dmel_vocos_demo.demo")


def as_version_1(config: dict) -> dict:
    """A current config written back in its version-1 form (old key names, no config_version)."""
    old = {new: old for old, new in RENAMED[1].get(config["tokenizer_class"], {}).items()}
    return {old.get(k, k): v for k, v in config.items() if k != "config_version"}


def test_glossary_document_lists_every_rename():
    """docs/config_names.md (linked from the README) names every current key and every old one it replaced."""
    doc = (ROOT / "docs" / "config_names.md").read_text()
    assert "docs/config_names.md" in (ROOT / "README.md").read_text()
    for version, classes in RENAMED.items():
        for cls, renames in classes.items():
            for old, new in renames.items():
                row = next((line for line in doc.splitlines() if line.startswith(f"| `{new}`")), None)
                assert row is not None, f"{new} has no glossary row"
                assert f"`{old}` ({cls}" in row, f"{cls}.{old} -> {new} is not listed in the row of {new}"
    for version, classes in RENAMED.items():  # every renamed-to key is a constructor argument today
        for cls, renames in classes.items():
            assert set(renames.values()) <= zoo.api.tokenizer_class(cls).config_keys(), cls


@pytest.mark.parametrize("name", DEMO)
def test_shipped_demo_config_version_1_migrates_to_the_same_model(name, tmp_path, photo_batch, speech_clip):
    """The packaged config.json in its version-1 form (old names; the shipped files are version 1) loads
    through the migration into the model that a current (version 2) config with the entry's kwargs loads
    around the same weights file: ids equal and outputs identical (the same kernels run on the same data,
    so exact equality holds)."""
    import shutil

    info = zoo.get_info(name)
    folder = ROOT / "zoo" / info.source.packaged
    shipped = json.loads((folder / "config.json").read_text())
    stored = as_version_1(migrate_config(shipped)) if "config_version" in shipped else shipped
    renamed = set(RENAMED[1].get(stored["tokenizer_class"], {})) & set(stored)
    assert renamed, f"{name}: its version-1 config holds no renamed key, the test would not test the migration"
    assert migrate_config(stored)["config_version"] == CONFIG_VERSION
    current_config = {"tokenizer_class": stored["tokenizer_class"], "config_version": CONFIG_VERSION, **info.kwargs}
    for version, config in ((1, stored), (2, current_config)):
        (tmp_path / f"v{version}").mkdir()
        (tmp_path / f"v{version}" / "config.json").write_text(json.dumps(config))
        shutil.copy(folder / "model.safetensors", tmp_path / f"v{version}" / "model.safetensors")
    migrated, current = zoo.from_pretrained(tmp_path / "v1"), zoo.from_pretrained(tmp_path / "v2")
    assert constructor_kwargs(stored) == json.loads(json.dumps(info.kwargs))
    assert migrated.config == current.config  # (with the constructor's defaults)
    assert not renamed & set(migrated.config)
    x = photo_batch if info.modality == "image" else speech_clip(migrated.sample_rate, 1.0)
    a, b = migrated.encode(x), current.encode(x)
    assert torch.equal(a.ids, b.ids)
    assert torch.equal(migrated.decode(a, **migrated.decode_noise_kwargs(0)),
                       current.decode(b, **current.decode_noise_kwargs(0)))


def test_save_then_load_round_trips_config_version_2(tmp_path):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("video1d_tiny.untrained").eval()
    tok.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config_version"] == CONFIG_VERSION == 2 and saved["tokenizer_class"] == "Video1DTokenizer"
    assert "enc_width" in saved and "encoder_dim" not in saved
    loaded = zoo.from_pretrained(tmp_path)
    assert loaded.config == tok.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in tok.state_dict().items())
    # the class-level loader migrates too
    (tmp_path / "config.json").write_text(json.dumps(as_version_1(saved)))
    again = type(tok).from_pretrained(tmp_path)
    assert again.config == tok.config


def test_newer_unknown_and_doubled_keys_are_refused(tmp_path):
    tok = zoo.create_tokenizer("titok_tiny.untrained")
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    with pytest.raises(ValueError, match=f"config_version {CONFIG_VERSION + 1}, newer than this zoo"):
        migrate_config({**config, "config_version": CONFIG_VERSION + 1})
    with pytest.raises(ValueError, match="config_version must be an int"):
        migrate_config({**config, "config_version": "2"})
    with pytest.raises(ValueError, match="no argument 'no_such_key'"):
        migrate_config({**config, "no_such_key": 1})
    # an old name in a current-version config: not migrated, refused with its new name
    with pytest.raises(ValueError, match=re.escape("'token_size' (now 'codebook_dim')")):
        migrate_config({**{k: v for k, v in config.items() if k != "codebook_dim"}, "token_size": 16})
    v1 = as_version_1(config)
    with pytest.raises(ValueError, match="both 'token_size' and its new name 'codebook_dim'"):
        migrate_config({**v1, "codebook_dim": 16})
    # the same errors come out of from_pretrained
    (tmp_path / "config.json").write_text(json.dumps({**config, "config_version": CONFIG_VERSION + 1}))
    with pytest.raises(ValueError, match="newer than this zoo"):
        zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "no_such_key": 1}))
    with pytest.raises(ValueError, match="no_such_key"):
        zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(v1))
    assert constructor_kwargs(v1) == {k: v for k, v in config.items() if k not in ("tokenizer_class", "config_version")}
    assert zoo.from_pretrained(tmp_path).config == tok.config


def test_converted_official_cache_in_version_1_is_migrated(tmp_path, monkeypatch):
    """A converted-official cache written before config_version (old key names) is migrated and used: no
    official file is needed (none is available offline here), and the cached weights come back as saved."""
    from tests.conftest import register_golden_entry
    from zoo.hub import converted_cache_dir

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    name = register_golden_entry(monkeypatch, "titok_l32.in1k", tok)
    cache = converted_cache_dir(name, zoo.get_info(name).source)
    tok.save_pretrained(cache)
    config = json.loads((cache / "config.json").read_text())
    (cache / "config.json").write_text(json.dumps(as_version_1(config)))
    loaded = zoo.create_tokenizer(name, pretrained=True)
    assert loaded.config == tok.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in tok.state_dict().items())


def test_recipe_with_an_old_key_names_the_new_one():
    from zoo.train.builders import build_model

    with pytest.raises(ValueError, match=re.escape("'token_size' (now 'codebook_dim')")):
        build_model({"class": "zoo.models.titok:TiTok", "kwargs": {"token_size": 6}})
    with pytest.raises(ValueError, match=re.escape("'dim' (now 'vocos_width')")):
        build_model({"name": "wavtokenizer_tiny_75.scratch", "kwargs": {"dim": 64}})
