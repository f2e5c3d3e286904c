"""Weight resolution (zoo.hub): local folders and files, and a pre-populated Hugging Face cache (no network)."""
import pytest

from tests.conftest import add_to_hf_cache
from zoo.hub import WeightSource, WeightsNotFoundError, hub_file, hub_folder, local_file, resolve_source

REPO, REV = "zoo-tests/tiny", "0123456789abcdef0123456789abcdef01234567"
NEWER = "89abcdef0123456789abcdef0123456789abcdef"


def test_local_folder_and_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert local_file(tmp_path, "model.safetensors") == tmp_path / "model.safetensors"
    assert local_file(tmp_path / "model.safetensors", "model.safetensors") == tmp_path / "model.safetensors"
    with pytest.raises(WeightsNotFoundError, match="config.json.*not found in the local folder"):
        local_file(tmp_path, "config.json")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        local_file(tmp_path / "nope" / "x", "x")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        local_file("zoo-tests/tiny", "model.safetensors")  # a local path is never taken for a hub repo


def test_prepopulated_hf_cache_offline(hf_offline):
    add_to_hf_cache(hf_offline, REPO, REV, {"config.json": b"{}", "model.safetensors": b"w"})
    path = hub_file(REPO, "config.json", revision=REV)
    assert path.read_bytes() == b"{}"
    assert hub_file(REPO, "model.safetensors").read_bytes() == b"w"  # via refs/main


def test_hub_folder_takes_every_file_from_one_commit(hf_offline):
    add_to_hf_cache(hf_offline, REPO, REV, {"config.json": b"old", "model.safetensors": b"w-old"}, refs=("v1",))
    add_to_hf_cache(hf_offline, REPO, NEWER, {"config.json": b"new", "model.safetensors": b"w-new",
                                              "sub/extra.bin": b"e"})
    main = hub_folder(REPO, ("config.json", "model.safetensors"))
    assert main.name == NEWER and (main / "model.safetensors").read_bytes() == b"w-new"
    for rev in ("v1", REV):  # a tag and a commit
        old = hub_folder(REPO, ("config.json", "model.safetensors"), revision=rev)
        assert old.name == REV and (old / "config.json").read_bytes() == b"old"
    assert hub_folder(REPO, ("sub/extra.bin", "config.json")) == main  # a file in a sub-folder
    with pytest.raises(WeightsNotFoundError, match=f"(?s)extra.bin.*{REPO}"):
        hub_folder(REPO, ("config.json", "sub/extra.bin"), revision="v1")  # absent at that commit


def test_offline_error_names_repo_file_and_remedy(hf_offline):
    with pytest.raises(WeightsNotFoundError) as e:
        hub_file("someone/missing-model", "model.safetensors", revision="abc")
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


def test_resolve_source_reads_the_hub_at_the_pinned_revision(hf_offline):
    add_to_hf_cache(hf_offline, REPO, REV, {"w.ckpt": b"pinned"}, refs=())
    add_to_hf_cache(hf_offline, REPO, NEWER, {"w.ckpt": b"main"})
    src = WeightSource(hf_repo=REPO, revision=REV, files={"weights": "w.ckpt"}, converter="x")
    assert resolve_source(src)["weights"].read_bytes() == b"pinned"
    assert resolve_source(src, revision=NEWER)["weights"].read_bytes() == b"main"
