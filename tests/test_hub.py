"""Weight resolution from local folders, files and a pre-populated Hugging Face cache (no network)."""
import pytest

from zoo.hub import WeightSource, WeightsNotFoundError, resolve_file, resolve_source

REPO, REV = "zoo-tests/tiny", "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 (huggingface_hub reads it at import time, so patch its constant too)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def make_hf_cache(root, files: dict[str, bytes]):
    """Lay out an HF hub cache the way huggingface_hub writes it (blobs + snapshots + refs)."""
    repo_dir = root / f"models--{REPO.replace('/', '--')}"
    snap = repo_dir / "snapshots" / REV
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(REV)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


def test_local_folder_and_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert resolve_file(tmp_path, "model.safetensors") == tmp_path / "model.safetensors"
    assert resolve_file(tmp_path / "model.safetensors", "model.safetensors") == tmp_path / "model.safetensors"
    with pytest.raises(WeightsNotFoundError, match="config.json.*not found in the local folder"):
        resolve_file(tmp_path, "config.json")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_file(tmp_path / "nope" / "x", "x")


def test_prepopulated_hf_cache_offline(tmp_path, offline):
    make_hf_cache(tmp_path, {"config.json": b"{}", "model.safetensors": b"w"})
    path = resolve_file(REPO, "config.json", revision=REV, cache_dir=tmp_path)
    assert path.read_bytes() == b"{}"
    assert resolve_file(REPO, "model.safetensors", cache_dir=tmp_path).read_bytes() == b"w"  # via refs/main


def test_offline_error_names_repo_file_and_remedy(tmp_path, offline):
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_file("someone/missing-model", "model.safetensors", revision="abc", cache_dir=tmp_path)
    msg = str(e.value)
    assert "someone/missing-model" in msg and "model.safetensors" in msg and "abc" in msg
    assert "weights=" in msg and "HF_HUB_OFFLINE" in msg


def test_resolve_source_prefers_weights_override(tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"1")
    (tmp_path / "c.yaml").write_bytes(b"2")
    src = WeightSource(hf_repo="a/b", revision=REV, files={"weights": "w.ckpt", "config": "c.yaml"}, converter="x")
    files = resolve_source(src, weights=tmp_path)
    assert files == {"weights": tmp_path / "w.ckpt", "config": tmp_path / "c.yaml"}
    files = resolve_source(src, weights=tmp_path / "w.ckpt")
    assert files["config"] == tmp_path / "c.yaml"
