"""Inputs of ``zoo tokenize``: folders, jsonl manifests, WebDataset tars, the rank split; id types."""
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.modality import AUDIO, IMAGE
from zoo.tokenize import tokenize_dataset
from zoo.tokenize.inputs import expand_braces, list_inputs, open_item, rank_items
from zoo.tokenize.shards import id_dtype

from .corpus import assert_ids_match, key_to_ids


def png_bytes(name: str, side: int = 40) -> bytes:
    from zoo.data.offline import skimage_photos

    buf = io.BytesIO()
    Image.fromarray(skimage_photos()[name]).resize((side, side)).save(buf, format="PNG")
    return buf.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_id_dtype_is_the_smallest_that_holds_the_codebook():
    assert id_dtype(256) == np.uint8 and id_dtype(257) == np.uint16 and id_dtype(64000) == np.uint16
    assert id_dtype(65537) == np.uint32 and id_dtype((16,) * 80) == np.uint8 and id_dtype((16384, 4096)) == np.uint16


def test_brace_patterns_and_rank_split_are_deterministic_and_disjoint():
    assert expand_braces("s-{000..002}.tar") == ["s-000.tar", "s-001.tar", "s-002.tar"]
    assert expand_braces("{a,b}/x-{1..2}.tar") == ["a/x-1.tar", "a/x-2.tar", "b/x-1.tar", "b/x-2.tar"]
    items = list(range(11))
    parts = [rank_items(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and all(len(p) in (3, 4) for p in parts)
    assert parts == [rank_items(items, r, 3) for r in range(3)]
    with pytest.raises(ValueError):
        rank_items(items, 3, 3)


def test_folder_labels_only_for_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(png_bytes("astronaut"))
    (tmp_path / "flat" / "sub").mkdir()
    (tmp_path / "flat" / "sub" / "b.png").write_bytes(png_bytes("coffee"))
    (tmp_path / "flat" / ".hidden.png").write_bytes(png_bytes("coffee"))
    flat = list_inputs(tmp_path / "flat", IMAGE)
    assert [i.key for i in flat.items] == ["a.png", "sub/b.png"] and flat.label_map is None and not flat.labels
    classes = list_inputs(tmp_path, IMAGE)  # every file sits under "flat/": one class
    assert classes.label_map == {"flat": 0} and {i.label for i in classes.items} == {0}
    with pytest.raises(FileNotFoundError, match="no audio files"):
        list_inputs(tmp_path, AUDIO)


def test_jsonl_manifest_labels_and_bad_lines(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes("astronaut"))
    (tmp_path / "img" / "b.png").write_bytes(png_bytes("coffee"))
    lines = [json.dumps({"path": "img/a.png", "label": "dog"}), json.dumps({"path": "img/b.png", "label": "cat"}),
             json.dumps({"path": "img/missing.png", "label": "cat"}), "{not json", json.dumps({"label": 3})]
    (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    listing = list_inputs(tmp_path / "list.jsonl", IMAGE)
    assert listing.label_map == {"cat": 0, "dog": 1}
    assert [(i.key, i.label, i.error is None) for i in listing.items] == [
        ("img/a.png", 1, True), ("img/b.png", 0, True), ("img/missing.png", 0, True),
        ("list.jsonl:4", None, False), ("list.jsonl:5", None, False)]
    tok = zoo.create_tokenizer("titok_tiny")
    manifest = tokenize_dataset(tok, tmp_path / "list.jsonl", tmp_path / "out", name="titok_tiny", num_workers=0,
                                progress=False)
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [e["key"] for e in errors] == ["img/missing.png", "list.jsonl:4", "list.jsonl:5"]
    assert "FileNotFoundError" in errors[0]["error"] and errors[1]["stage"] == "list"
    assert manifest["label_map"] == {"cat": 0, "dog": 1} and manifest["num_rows"] == 2


def test_webdataset_tars_by_glob(tmp_path):
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    for shard in range(2):
        with tarfile.open(tmp_path / f"train-{shard:03d}.tar", "w") as tar:
            for j, name in enumerate(names[2 * shard:2 * shard + 2]):
                key = f"s{shard}/{name}"
                add(tar, f"{key}.png", png_bytes(name))
                add(tar, f"{key}.cls", str(2 * shard + j).encode())
                add(tar, f"{key}.json", b"{}")
            add(tar, f"s{shard}/textonly.txt", b"caption without an image")
    add_bad = tarfile.open(tmp_path / "train-002.tar", "w")
    add(add_bad, "broken.jpg", b"\xff\xd8\xff not really a jpeg")
    add_bad.close()
    listing = list_inputs(str(tmp_path / "train-{000..002}.tar"), IMAGE)
    keys = [i.key for i in listing.items]
    assert keys == ["s0/astronaut", "s0/coffee", "s0/textonly", "s1/chelsea", "s1/rocket", "s1/textonly", "broken"]
    item = listing.items[0]
    assert item.label == 0 and Image.open(open_item(item)).size == (40, 40)
    assert [i.key for i in list_inputs(str(tmp_path / "train-*.tar"), IMAGE, rank=1, world_size=2).items] == keys[3:6]

    tok = zoo.create_tokenizer("titok_tiny")
    tokenize_dataset(tok, str(tmp_path / "train-*.tar"), tmp_path / "out", name="titok_tiny", num_workers=0,
                     progress=False)
    got = key_to_ids(tmp_path / "out")
    assert sorted(k for k, _ in got) == ["s0/astronaut", "s0/coffee", "s1/chelsea", "s1/rocket"]
    want = {}
    for key, _ in got:
        x, _ = IMAGE.load(open_item(next(i for i in listing.items if i.key == key)), tok)
        want[(key, None)] = tok.encode(x[None]).ids[0].numpy()
    assert_ids_match(got, want)
    errors = {json.loads(line)["key"]: json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").open()}
    assert sorted(errors) == ["broken", "s0/textonly", "s1/textonly"]
    assert "no image file" in errors["s0/textonly"]["error"] and errors["broken"]["stage"] == "read"
    assert errors["broken"]["source"].endswith("train-002.tar:broken.jpg")


def test_video_folder_and_precision_options(tmp_path):
    import torch

    from zoo.data.offline import load_photo
    from zoo.data.video import photo_clip, write_video
    from zoo.modality import VIDEO

    (tmp_path / "clips").mkdir()
    for name, frames, photo in (("pan.mp4", 12, "astronaut"), ("short.mp4", 6, "coffee")):
        clip = photo_clip(load_photo(photo, 96), frames=frames, size=48, start=(-0.2, 0, 0.6), end=(0.2, 0, 0.6))
        write_video(tmp_path / "clips" / name, clip, fps=8)
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    tok = zoo.create_tokenizer("video1d_tiny")  # 8 frames of 32x32
    manifest = tokenize_dataset(tok, tmp_path / "clips", tmp_path / "out", name="video1d_tiny", num_workers=1,
                                progress=False)
    got = key_to_ids(tmp_path / "out")
    want = {(k, None): tok.encode(VIDEO.load(tmp_path / "clips" / k, tok)[0][None]).ids[0].numpy()
            for k in ("pan.mp4", "short.mp4")}
    assert_ids_match(got, want)
    assert manifest["num_errors"] == 1 and manifest["protocol"]["frames"] == 8
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        tokenize_dataset(tok, tmp_path / "clips", tmp_path / "fp16", dtype="fp16", device="cpu", progress=False)
    with pytest.raises(ValueError, match="images only"):
        tokenize_dataset(tok, tmp_path / "clips", tmp_path / "flip", flip=True, progress=False)
    threads = torch.get_num_threads()
    bf16 = tokenize_dataset(tok, tmp_path / "clips", tmp_path / "bf16", name="video1d_tiny", dtype="bf16",
                            device="cpu", num_workers=1, progress=False)
    assert bf16["protocol"]["dtype"] == "bf16" and bf16["num_rows"] == 2 and bf16["ids_dtype"] == "uint8"
    assert all(v.shape == (32,) for v in key_to_ids(tmp_path / "bf16").values())
    assert torch.get_num_threads() == threads  # the encoder's thread count is restored after the readers
