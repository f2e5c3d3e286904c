"""Explicit tokenizer sources (zoo.source): ``hf-hub:ORG/REPO[@REV]``, ``local-dir:PATH``, registry names.

The hub tests read a Hugging Face cache laid out here (``HF_HUB_OFFLINE=1``) holding two commits of a
zoo-format repo with different weights, so that loading the wrong commit (or mixing files of two
commits) fails."""
import json
from pathlib import Path

import pytest
import torch

import zoo
from tests.conftest import add_to_hf_cache
from zoo.cli import main
from zoo.source import HubRepo, LocalDir, RegistryName, UnknownTokenizerError, parse_source

REPO = "zoo-tests/titok-tiny"
OLD, NEW = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"


def test_grammar():
    assert parse_source("hf-hub:org/repo") == HubRepo("org/repo")
    assert parse_source("hf-hub:org/repo@v1.0") == HubRepo("org/repo", "v1.0")
    assert parse_source("hf-hub:org/repo@refs/pr/3") == HubRepo("org/repo", "refs/pr/3")
    assert parse_source("local-dir:some/dir") == LocalDir(Path("some/dir"))
    assert parse_source("local-dir:~/x").path == Path.home() / "x"
    assert parse_source(Path("some/dir")) == LocalDir(Path("some/dir"))
    assert parse_source("titok_tiny") == RegistryName("titok_tiny")
    assert parse_source("some/dir") == RegistryName("some/dir")  # no prefix: never a path
    for text in ("hf-hub:org/repo@v1", "local-dir:/a/b", "titok_tiny.untrained"):
        assert str(parse_source(text)) == text
    for bad in ("hf-hub:repo-without-org", "hf-hub:org/repo@", "hf-hub:a/b/c", "local-dir:", ""):
        with pytest.raises(ValueError):
            parse_source(bad)


def test_unregistered_name_is_an_error_even_when_a_folder_has_that_name(tmp_path, monkeypatch):
    torch.manual_seed(0)
    zoo.create_tokenizer("titok_tiny").save_pretrained(tmp_path / "mytok")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownTokenizerError, match=r"(?s)unknown tokenizer 'mytok'.*write local-dir:mytok"):
        parse_source("mytok").load()
    with pytest.raises(KeyError, match="local-dir:mytok"):  # the CLI: nothing is loaded silently
        main(["encode", "mytok", "x.png", "t.pt"])
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UnknownTokenizerError, match=f"local-dir:{tmp_path}"):
        parse_source(str(tmp_path / "model.safetensors")).registry_info()
    with pytest.raises(UnknownTokenizerError, match="write hf-hub:org/name"):
        parse_source("org/name").registry_info()
    with pytest.raises(UnknownTokenizerError, match="'hf_hub:' is not a source prefix"):
        parse_source("hf_hub:org/name").registry_info()
    assert parse_source("local-dir:mytok").load().config == zoo.from_pretrained(tmp_path / "mytok").config


def test_from_pretrained_takes_folders_only(tmp_path, monkeypatch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("titok_tiny")
    tok.save_pretrained(tmp_path / "t")
    x = torch.rand(1, 3, 64, 64)
    for source in (tmp_path / "t", str(tmp_path / "t"), f"local-dir:{tmp_path / 't'}", LocalDir(tmp_path / "t")):
        assert torch.equal(zoo.from_pretrained(source).encode(x).ids, tok.encode(x).ids)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(zoo.WeightsNotFoundError, match=r"no folder org/repo; .*write hf-hub:org/repo"):
        zoo.from_pretrained("org/repo")
    with pytest.raises(zoo.WeightsNotFoundError, match=r"zoo.create_tokenizer\('titok_tiny'\)"):
        zoo.from_pretrained("titok_tiny")
    with pytest.raises(TypeError, match="create_tokenizer"):
        zoo.from_pretrained(RegistryName("titok_tiny"))
    with pytest.raises(ValueError, match="no revision"):
        zoo.from_pretrained(tmp_path / "t", revision="main")
    with pytest.raises(ValueError, match="applies to registry names"):
        parse_source(f"local-dir:{tmp_path / 't'}").load(weights=tmp_path / "t")


@pytest.fixture
def hub_repo(hf_offline, tmp_path):
    """Two commits of a zoo-format repo in the offline HF cache: OLD (tag v1) and NEW (main), with
    different weights. Returns {commit: tokenizer}."""
    toks = {}
    for seed, commit, refs in ((0, OLD, ("v1",)), (1, NEW, ("main",))):
        torch.manual_seed(seed)
        toks[commit] = zoo.create_tokenizer("titok_tiny")
        folder = tmp_path / f"saved-{commit[:4]}"
        toks[commit].save_pretrained(folder)
        add_to_hf_cache(hf_offline, REPO, commit, {n: folder / n for n in ("config.json", "model.safetensors")},
                        refs=refs)
    return toks


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_hub_repo_loads_the_asked_revision(hub_repo):
    assert _same_weights(zoo.from_pretrained(f"hf-hub:{REPO}"), hub_repo[NEW])
    for rev in ("v1", OLD):
        assert _same_weights(zoo.from_pretrained(f"hf-hub:{REPO}@{rev}"), hub_repo[OLD])
        assert _same_weights(zoo.from_pretrained(f"hf-hub:{REPO}", revision=rev), hub_repo[OLD])
    assert not _same_weights(hub_repo[OLD], hub_repo[NEW])
    cls = type(hub_repo[OLD])
    assert _same_weights(cls.from_pretrained(HubRepo(REPO, "v1")), hub_repo[OLD])
    with pytest.raises(ValueError, match="'v1'.*'main'"):
        zoo.from_pretrained(f"hf-hub:{REPO}@v1", revision="main")
    with pytest.raises(zoo.WeightsNotFoundError, match=f"(?s){REPO}.*config.json.*HF_HUB_OFFLINE"):
        zoo.from_pretrained(f"hf-hub:{REPO}@v2")


def test_cli_and_tokenize_read_hub_repos(hub_repo, tmp_path):
    from zoo.data.offline import load_photo
    from torchvision.utils import save_image

    src = tmp_path / "photo.png"
    save_image(load_photo("astronaut", 64), str(src))
    assert main(["encode", f"hf-hub:{REPO}@v1", str(src), str(tmp_path / "old.pt")]) == 0
    assert main(["encode", f"hf-hub:{REPO}", str(src), str(tmp_path / "new.pt")]) == 0
    old = torch.load(tmp_path / "old.pt", weights_only=True)["ids"]
    x = hub_repo[OLD].modality.load(src, hub_repo[OLD].modality.protocol(hub_repo[OLD]))[0][None]
    assert torch.equal(old, hub_repo[OLD].encode(x).ids)
    assert not torch.equal(old, torch.load(tmp_path / "new.pt", weights_only=True)["ids"])
    with pytest.raises(ValueError, match="applies to registry names"):
        main(["encode", f"hf-hub:{REPO}", str(src), str(tmp_path / "w.pt"), "--weights", str(tmp_path)])

    from zoo.tokenize import tokenize_dataset

    (tmp_path / "in").mkdir()
    save_image(load_photo("astronaut", 64), str(tmp_path / "in" / "a.png"))
    manifest = tokenize_dataset(f"hf-hub:{REPO}@v1", tmp_path / "in", tmp_path / "tok", num_workers=0,
                                progress=False)
    ident = json.loads((tmp_path / "tok" / "manifest.json").read_text())["tokenizer"]
    assert manifest["num_errors"] == 0 and ident["revision"] == f"hf-hub:{REPO}@{OLD}"  # the commit, not the tag
    assert ident["name"] == REPO


def test_eval_loads_every_kind_of_source(hub_repo, tmp_path):
    from eval.run import build_parser, load_tokenizer

    def load(*argv):
        return load_tokenizer(build_parser().parse_args(["--tokenizer", *argv, "--data", "x", "--out", "y"]))

    tok, info = load(f"hf-hub:{REPO}", "--revision", "v1")
    assert info is None and _same_weights(tok, hub_repo[OLD])
    hub_repo[NEW].save_pretrained(tmp_path / "new")
    tok, info = load(f"local-dir:{tmp_path / 'new'}")
    assert info is None and _same_weights(tok, hub_repo[NEW])
    tok, info = load("titok_tiny")
    assert info.name == "titok_tiny.untrained" and type(tok) is type(hub_repo[NEW])
    with pytest.raises(ValueError, match="builder keywords"):
        load(f"local-dir:{tmp_path / 'new'}", "--tokenizer-kwargs", '{"num_tokens": 8}')
    with pytest.raises(UnknownTokenizerError, match=f"local-dir:{tmp_path / 'new'}"):
        load(str(tmp_path / "new"))


def test_create_tokenizer_takes_source_prefixes(hub_repo, tmp_path):
    """As timm's create_model: a prefixed name loads that zoo-format folder / repo."""
    assert _same_weights(zoo.create_tokenizer(f"hf-hub:{REPO}@v1"), hub_repo[OLD])
    assert _same_weights(zoo.create_tokenizer(f"hf-hub:{REPO}", pretrained=True), hub_repo[NEW])
    hub_repo[OLD].save_pretrained(tmp_path / "local")
    assert _same_weights(zoo.create_tokenizer(f"local-dir:{tmp_path / 'local'}"), hub_repo[OLD])
    with pytest.raises(ValueError, match="builder keywords"):
        zoo.create_tokenizer(f"local-dir:{tmp_path / 'local'}", num_tokens=8)
    with pytest.raises(ValueError, match="own weights"):
        zoo.create_tokenizer(f"hf-hub:{REPO}", weights=tmp_path / "local")
