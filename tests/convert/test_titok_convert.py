"""Loading official-format TiTok / One-D-Piece checkpoints: registry + local folder, offline HF cache,
and readable errors for mismatched checkpoints and bad configs."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import zoo
from zoo.checkpoint import CheckpointMismatchError
from zoo.convert import load_official
from zoo.convert.architecture import ArchitectureMismatchError
from zoo.convert.titok import titok_kwargs_from_official

from tests.conftest import load_golden, register_golden_entry


def _official_folder(case, dest, config_case=None):
    """An official-format model folder (config.json + model.safetensors) from a golden fixture."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case.state_dict_path, dest / "model.safetensors")
    shutil.copyfile((config_case or case).config_path, dest / "config.json")
    return dest


def _hf_snapshot(root, repo, revision, src_folder):
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / revision
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    for f in src_folder.iterdir():
        shutil.copyfile(f, snap / f.name)
    return snap


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty HF hub cache in tmp_path with HF_HUB_OFFLINE=1, and a private zoo cache."""
    import huggingface_hub.constants as hc

    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    return hub


def _golden_entry(monkeypatch, base, case):
    """A test-only copy of registry entry ``base`` with the golden fixture's (small) architecture."""
    return register_golden_entry(monkeypatch, base, load_official("titok", case.state_dict_path, case.config_path))


def test_create_tokenizer_from_local_official_folder(tmp_path, monkeypatch):
    case = load_golden("titok", "legacy_vq")
    folder = _official_folder(case, tmp_path / "titok_l32")
    # the fixture-size checkpoint is not the model the real entry advertises: refused, naming the difference
    with pytest.raises(ArchitectureMismatchError, match="holds another TiTok than expected"):
        zoo.create_tokenizer("titok_l32.in1k", pretrained=True, weights=folder)
    tok = zoo.create_tokenizer(_golden_entry(monkeypatch, "titok_l32.in1k", case), pretrained=True, weights=folder)
    assert not tok.training and tok.decoder_head == "proxy" and tok.pixel_decoder is not None
    x = case.inputs["image"]
    assert torch.equal(tok.encode(x).ids, case.expected["tokens"][:, 0])
    torch.testing.assert_close(tok.decode(tok.encode(x), clamp=False), case.expected["decoded"], rtol=0, atol=5e-3)


def test_create_tokenizer_from_offline_hf_cache(tmp_path, offline_hub, monkeypatch):
    case = load_golden("titok", "vq_direct")
    name = _golden_entry(monkeypatch, "titok_bl64_vq8k.in1k", case)
    info = zoo.get_info(name)
    rev = info.source.revision or "0123456789abcdef0123456789abcdef01234567"
    _hf_snapshot(offline_hub, info.source.hf_repo, rev, _official_folder(case, tmp_path / "src"))
    tok = zoo.create_tokenizer(name, pretrained=True)
    x = case.inputs["image"]
    assert torch.equal(tok.encode(x).ids, case.expected["tokens"][:, 0])
    # the conversion was cached in zoo format; a second load reads it (hub cache removed)
    shutil.rmtree(offline_hub / f"models--{info.source.hf_repo.replace('/', '--')}")
    again = zoo.create_tokenizer(name, pretrained=True)
    assert torch.equal(again.encode(x).ids, case.expected["tokens"][:, 0])


def test_pinned_revision_from_offline_hf_cache(tmp_path, offline_hub, monkeypatch):
    case = load_golden("titok", "legacy_vq")
    name = _golden_entry(monkeypatch, "titok_l32.in1k", case)
    info = zoo.get_info(name)
    assert info.source.revision and len(info.source.revision) == 40
    _hf_snapshot(offline_hub, info.source.hf_repo, info.source.revision, _official_folder(case, tmp_path / "src"))
    tok = zoo.create_tokenizer(name, pretrained=True)
    assert torch.equal(tok.encode(case.inputs["image"]).ids, case.expected["tokens"][:, 0])


def test_missing_offline_weights_name_the_repo(offline_hub):
    with pytest.raises(zoo.WeightsNotFoundError, match="yucornetto/tokenizer_titok_s128_imagenet"):
        zoo.create_tokenizer("titok_s128.in1k", pretrained=True)


def test_onedpiece_entry_decodes_prefixes(tmp_path, monkeypatch):
    tail = load_golden("onedpiece", "legacy_tail")
    folder = _official_folder(load_golden("titok", "legacy_vq"), tmp_path / "odp", config_case=tail)
    name = register_golden_entry(monkeypatch, "onedpiece_s256.in1k",
                                 load_official("onedpiece", folder / "model.safetensors", folder / "config.json"))
    tok = zoo.create_tokenizer(name, weights=folder)
    assert tok.tail_drop and type(tok).variable_length_arg == "length"
    tokens = tok.encode(tail.inputs["image"])
    for length in tail.case["lengths"]:
        torch.testing.assert_close(tok.decode(tokens, length=length, clamp=False), tail.expected[f"decoded_L{length}"],
                                   rtol=0, atol=5e-3)


# ----------------------------------------------------------------- mismatches and bad configs
@pytest.fixture(scope="module")
def vq_direct():
    from safetensors.torch import load_file

    case = load_golden("titok", "vq_direct")
    return load_file(str(case.state_dict_path)), json.loads(case.config_path.read_text())


def test_missing_key_is_named(vq_direct):
    sd, cfg = vq_direct
    sd = dict(sd)
    del sd["decoder.transformer.1.mlp.c_fc.bias"]
    with pytest.raises(CheckpointMismatchError, match=r"decoder\.transformer\.blocks\.1\.mlp\.fc1\.bias") as e:
        load_official("titok", sd, cfg)
    assert "official names: decoder.transformer.1.mlp.c_fc.bias" in str(e.value)


def test_unexpected_and_misshaped_keys_are_named(vq_direct):
    sd, cfg = vq_direct
    sd = dict(sd, **{"decoder.extra_head.weight": torch.zeros(3)})
    sd["decoder.mask_token"] = torch.zeros(1, 1, 7)
    with pytest.raises(CheckpointMismatchError) as e:
        load_official("titok", sd, cfg)
    assert "decoder.extra_head.weight" in str(e.value) and "decoder.mask_token" in str(e.value)


def test_shape_inference_needs_its_keys(vq_direct):
    sd, cfg = vq_direct
    sd = {k: v for k, v in sd.items() if k != "latent_tokens"}
    with pytest.raises(CheckpointMismatchError, match="latent_tokens"):
        load_official("titok", sd, cfg)


def test_config_disagreeing_with_weights_is_named(vq_direct):
    sd, cfg = vq_direct
    vae_cfg = json.loads(json.dumps(cfg))
    vae_cfg["model"]["vq_model"]["quantize_mode"] = "vae"
    with pytest.raises(CheckpointMismatchError, match="quantize.embedding.weight"):
        load_official("titok", sd, vae_cfg)
    crop_cfg = json.loads(json.dumps(cfg))
    crop_cfg["dataset"]["preprocessing"]["crop_size"] = 256
    with pytest.raises(ValueError, match="crop_size"):
        load_official("titok", sd, crop_cfg)
    with pytest.raises(ValueError, match="model.vq_model"):
        load_official("titok", sd, {"model": {"something": 1}})
    with pytest.raises(ValueError, match="config.json"):
        load_official("titok", sd, None)
    bad_mode = json.loads(json.dumps(cfg))
    bad_mode["model"]["vq_model"]["quantize_mode"] = "fsq"
    with pytest.raises(ValueError, match="quantize_mode"):
        load_official("titok", sd, bad_mode)


def test_legacy_without_pixel_decoder_is_named():
    from safetensors.torch import load_file

    case = load_golden("titok", "legacy_vq")
    sd = {k: v for k, v in load_file(str(case.state_dict_path)).items() if not k.startswith("pixel_")}
    cfg = json.loads(case.config_path.read_text())
    with pytest.raises(CheckpointMismatchError, match="pixel_decoder"):
        load_official("titok", sd, cfg)
    cfg["model"]["vq_model"]["finetune_decoder"] = False  # a stage-1 checkpoint: proxy logits only
    tok = load_official("titok", sd, cfg)
    assert tok.pixel_decoder is None and tok.decoder_head == "proxy"
    with pytest.raises(ValueError, match="proxy_weights"):
        tok.decode(tok.encode(case.inputs["image"]))


def test_kwargs_come_from_shapes_not_size_names(vq_direct):
    sd, cfg = vq_direct
    kw = titok_kwargs_from_official(sd, cfg)
    # the config says small / base (512 / 768 wide); the fixture weights are 128 / 192 wide
    assert (kw["enc_width"], kw["enc_depth"], kw["enc_heads"]) == (128, 2, 2)
    assert (kw["dec_width"], kw["dec_depth"], kw["dec_heads"]) == (192, 2, 3)
    assert kw["num_tokens"] == 8 and kw["codebook_dim"] == 16 and kw["codebook_size"] == 64
    assert kw["image_size"] == 64 and kw["decoder_head"] == "pixel" and not kw["legacy_readout"]


def test_stage1_checkpoint_merged_with_vqgan_weights(tmp_path):
    """A stage-1 legacy checkpoint + the MaskGIT-VQGAN file decodes like the full legacy checkpoint."""
    from safetensors.torch import load_file

    from zoo.checkpoint import save_state_dict

    case = load_golden("titok", "legacy_vq")
    full = load_file(str(case.state_dict_path))
    stage1 = {k: v for k, v in full.items() if not k.startswith("pixel_")}
    vqgan = {k[len("pixel_"):]: v for k, v in full.items() if k.startswith("pixel_")}
    save_state_dict(vqgan, tmp_path / "vqgan.safetensors")
    cfg = json.loads(case.config_path.read_text())
    cfg["model"]["vq_model"]["finetune_decoder"] = False
    tok = load_official("titok", stage1, cfg, vqgan_weights=tmp_path / "vqgan.safetensors")
    torch.testing.assert_close(tok.decode(tok.encode(case.inputs["image"]), clamp=False), case.expected["decoded"],
                               rtol=0, atol=5e-3)
    with pytest.raises(CheckpointMismatchError, match="already has"):
        load_official("titok", full, cfg, vqgan_weights=tmp_path / "vqgan.safetensors")


def test_unknown_converter_options_are_named(vq_direct):
    sd, cfg = vq_direct
    with pytest.raises(TypeError, match="proxy_weight"):
        load_official("titok", sd, cfg, proxy_weight="x")


def test_registry_entry_loads_a_converted_zoo_format_folder(tmp_path, offline_hub, monkeypatch):
    case = load_golden("titok", "legacy_vq")
    converted = load_official("titok", case.state_dict_path, case.config_path)
    converted.save_pretrained(tmp_path / "converted")
    tok = zoo.create_tokenizer(register_golden_entry(monkeypatch, "titok_l32.in1k", converted),
                               weights=tmp_path / "converted")
    assert torch.equal(tok.encode(case.inputs["image"]).ids, case.expected["tokens"][:, 0])
    # the same folder as an (offline) HF cache snapshot of the entry's repo
    name = register_golden_entry(monkeypatch, "titok_s128.in1k", converted)
    info = zoo.get_info(name)
    _hf_snapshot(offline_hub, info.source.hf_repo, "f" * 40, tmp_path / "converted")
    tok = zoo.create_tokenizer(name, pretrained=True)
    torch.testing.assert_close(tok.decode(tok.encode(case.inputs["image"]), clamp=False), case.expected["decoded"],
                               rtol=0, atol=5e-3)


def test_key_mapping_is_invertible():
    from safetensors.torch import load_file

    from zoo.convert.titok import _official_name, map_official_keys

    sd = load_file(str(load_golden("titok", "legacy_vq").state_dict_path))
    mapped = map_official_keys(sd)
    assert len(mapped) == len(sd)
    assert sorted(_official_name(k) for k in mapped) == sorted(sd)
