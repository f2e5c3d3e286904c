"""``zoo tokenize`` on real photos and speech: ids equal single-file ``encode``, corrupted inputs end in
errors.jsonl, labels, manifest, TokenDataset, augmentation, resume after SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.tokenize import tokenize_dataset

from .corpus import assert_ids_match, image_corpus, key_to_ids, speech_corpus

ROOT = Path(__file__).resolve().parents[2]
IMAGE_TOK = "titok_demo64.demo"
AUDIO_TOK = "wavtokenizer_demo75.demo"


def single_file_ids(tokenizer: str, folder: Path, keys: list[str], tmp: Path) -> dict:
    """Ids of ``python -m zoo encode`` (the CLI entry point, in this process) for each file."""
    out = {}
    for i, key in enumerate(keys):
        assert main(["encode", tokenizer, str(folder / key), str(tmp / f"{i}.npy"), "--pretrained"]) == 0
        out[(key, None)] = np.load(tmp / f"{i}.npy")[0]
    return out


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    good, bad = image_corpus(root)
    return root, good, bad


@pytest.fixture(scope="module")
def photos_run(photos_dir, tmp_path_factory):
    root, good, bad = photos_dir
    out = tmp_path_factory.mktemp("photos_out") / "tokens"
    assert main(["tokenize", IMAGE_TOK, str(root), str(out), "--pretrained", "--batch-size", "3",
                 "--shard-size", "4", "--num-workers", "2"]) == 0
    return out


@pytest.mark.slow
def test_photos_match_single_file_encode_and_errors_are_recorded(photos_dir, photos_run, tmp_path, capsys):
    root, good, bad = photos_dir
    out = photos_run
    got = key_to_ids(out)
    assert_ids_match(got, single_file_ids(IMAGE_TOK, root, good, tmp_path))
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["key"] for e in errors) == bad
    assert all(e["stage"] == "read" and "cannot read image" in e["error"] for e in errors)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_inputs"] == len(good) + len(bad) and manifest["num_rows"] == len(good)
    assert manifest["num_errors"] == len(bad) and manifest["ignored_files"] == 1  # README.txt
    assert sum(s["rows"] for s in manifest["shards"]) == len(good)
    assert [s["inputs"] for s in manifest["shards"]] == [4, 4, 4]
    assert manifest["label_map"] == {"landscape": 0, "objects": 1}
    assert manifest["ids_dtype"] == "uint16" and manifest["columns"] == ["key", "ids", "shape", "label"]
    tok = zoo.create_tokenizer(IMAGE_TOK, pretrained=True)
    from zoo.checkpoint import state_dict_sha256

    ident = manifest["tokenizer"]
    assert ident["name"] == IMAGE_TOK and ident["weights_sha256"] == state_dict_sha256(tok.state_dict())
    assert ident["revision"].startswith("packaged:") and len(ident["config_sha256"]) == 64
    assert manifest["zoo_version"] == zoo.__version__ and manifest["protocol"]["size"] == [64, 64]

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out / "part-00000-00000.parquet")
    assert table.schema.field("ids").type.value_type == pa.uint16()  # smallest type holding 64,000 codes
    labels = dict(zip(table.column("key").to_pylist(), table.column("label").to_pylist()))
    assert all(labels[k] == (0 if k.startswith("landscape/") else 1) for k in labels)


@pytest.mark.slow
def test_token_dataset_and_parquet_readers(photos_run):
    from zoo.data import TokenDataset

    out = photos_run
    want = key_to_ids(out)
    ds = TokenDataset(out)
    assert len(ds) == len(want) and ds.label_map == {"landscape": 0, "objects": 1}
    for i in range(len(ds)):
        item = ds[i]
        assert item["ids"].dtype == torch.long and item["ids"].shape == (64,)
        assert np.array_equal(item["ids"].numpy(), want[(item["key"], None)])
        assert item["label"] == (0 if item["key"].startswith("landscape/") else 1)
    assert isinstance(ds._ids, np.memmap)  # memory-mapped, not loaded
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    assert sum(b["ids"].shape[0] for b in loader) == len(ds)
    import datasets  # a dev dependency (not one of the zoo's): the shards load as a Hugging Face dataset
    hf = datasets.load_dataset("parquet", data_files=str(out / "part-*.parquet"), split="train")
    assert {r["key"]: r["ids"] for r in hf} == {k: v.tolist() for (k, _), v in want.items()}


@pytest.mark.slow
def test_speech_of_varied_lengths_matches_single_file_encode(tmp_path):
    root = tmp_path / "speech"
    good, bad = speech_corpus(root)
    out = tmp_path / "tokens"
    manifest = tokenize_dataset(AUDIO_TOK, root, out, pretrained=True, batch_size=4, shard_size=3, num_workers=2,
                                progress=False)
    got = key_to_ids(out)
    assert_ids_match(got, single_file_ids(AUDIO_TOK, root, good, tmp_path))
    assert len({v.shape for v in got.values()}) >= 4  # varied lengths really were bucketed apart
    errors = {json.loads(line)["key"]: json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()}
    assert sorted(errors) == bad and "no samples" in errors["empty.ogg"]["error"]
    assert manifest["protocol"]["sample_rate"] == 24000 and "num_samples" in manifest["columns"]
    import pyarrow.dataset as pads

    table = pads.dataset(sorted(str(p) for p in out.glob("part-*.parquet"))).to_table()
    from zoo.modality import AUDIO

    tok = zoo.create_tokenizer(AUDIO_TOK, pretrained=True)
    for key, n in zip(table.column("key").to_pylist(), table.column("num_samples").to_pylist()):
        assert n == AUDIO.load(root / key, tok)[0].shape[-1]


@pytest.mark.slow
def test_flip_and_ten_crop_views(photos_dir, tmp_path):
    from zoo.data.transforms import center_crop
    from zoo.modality import IMAGE, InputProtocol

    root, good, _ = photos_dir
    tok = zoo.create_tokenizer(IMAGE_TOK, pretrained=True)
    tokenize_dataset(tok, root, tmp_path / "flip", flip=True, batch_size=8, num_workers=0, progress=False)
    tokenize_dataset(tok, root, tmp_path / "ten", ten_crop=True, batch_size=8, num_workers=0, progress=False)
    flip, ten = key_to_ids(tmp_path / "flip"), key_to_ids(tmp_path / "ten")
    assert sorted(flip) == sorted((k, v) for k in good for v in ("center", "center_flip"))
    assert len(ten) == 10 * len(good)
    want_flip, want_ten = {}, {}
    for key in good:
        x, _ = IMAGE.load(root / key, tok)
        want_flip[(key, "center")] = tok.encode(x[None]).ids[0].numpy()
        want_flip[(key, "center_flip")] = tok.encode(x.flip(-1)[None]).ids[0].numpy()
        big, _ = IMAGE.load(root / key, InputProtocol("image", size=(70, 70)))  # 1.1 x 64
        want_ten[(key, "center")] = tok.encode(center_crop(big, 64)[None]).ids[0].numpy()
        want_ten[(key, "top_left_flip")] = tok.encode(big[:, :64, :64].flip(-1)[None]).ids[0].numpy()
    assert_ids_match(flip, want_flip)
    assert_ids_match({k: ten[k] for k in want_ten}, want_ten)
    manifest = json.loads((tmp_path / "ten" / "manifest.json").read_text())
    assert manifest["protocol"]["augment"]["ten_crop_scale"] == 1.1 and "view" in manifest["columns"]


def _shards(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("part-*.parquet"))


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_dataset(photos_dir, tmp_path):
    import pyarrow.parquet as pq

    root, good, bad = photos_dir
    args = ["tokenize", IMAGE_TOK, str(root), None, "--pretrained", "--batch-size", "1", "--shard-size", "1",
            "--num-workers", "0", "--quiet"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert main([str(full) if a is None else a for a in args]) == 0
    n_shards = len(_shards(full))
    assert n_shards == len(good) + len(bad)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "zoo", *[str(killed) if a is None else a for a in args]],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while len(_shards(killed)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = _shards(killed)
    assert 2 <= len(written) < n_shards, f"the run was not killed mid-way ({len(written)} of {n_shards} shards)"
    assert not (killed / "manifest.json").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        main([str(killed) if a is None else a for a in args])
    before = {name: (killed / name).stat().st_mtime_ns for name in written}
    assert main([str(killed) if a is None else a for a in args] + ["--resume"]) == 0
    assert all((killed / name).stat().st_mtime_ns == t for name, t in before.items())  # completed shards kept
    assert _shards(killed) == _shards(full) and not list(killed.glob(".part-*"))
    for name in _shards(full):
        assert pq.read_table(killed / name).equals(pq.read_table(full / name)), name
    assert (killed / "errors.jsonl").read_text() == (full / "errors.jsonl").read_text()
    m_full, m_killed = (json.loads((d / "manifest.json").read_text()) for d in (full, killed))
    assert m_killed == m_full


def test_resume_refuses_changed_settings(photos_dir, tmp_path):
    root, _, _ = photos_dir
    tok = zoo.create_tokenizer("titok_tiny")
    out = tmp_path / "out"
    tokenize_dataset(tok, root / "objects", out, name="titok_tiny", shard_size=2, num_workers=0, progress=False)
    with pytest.raises(ValueError, match="shard_size"):
        tokenize_dataset(tok, root / "objects", out, name="titok_tiny", shard_size=3, num_workers=0, resume=True,
                         progress=False)
    (root / "objects" / "extra.png").write_bytes((root / "objects" / "astronaut.png").read_bytes())
    try:
        with pytest.raises(ValueError, match="input"):
            tokenize_dataset(tok, root / "objects", out, name="titok_tiny", shard_size=2, num_workers=0,
                             resume=True, progress=False)
    finally:
        (root / "objects" / "extra.png").unlink()
