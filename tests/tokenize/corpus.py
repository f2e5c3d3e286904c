"""Small real-data corpora for the ``zoo tokenize`` tests: photos of many sizes in class folders,
speech of varied lengths, and the corrupted inputs the issue lists."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

#: photos of several sizes (mate-backgrounds: 1280x1024 .. 2560x1920; scikit-image: 300x451 .. 512x512)
MATE = ("Aqua.jpg", "Dune.jpg", "GreenMeadow.jpg", "Wood.jpg", "Storm.jpg")
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket")
#: fillets-ng Dutch utterances (stereo, 22.05 kHz) of different lengths; one zero-length file
SPEECH = ("experiments/nl/bank-v-jeste.ogg", "airplane/nl/let-m-divna.ogg", "alibaba/nl/kni-m-amfornictvi.ogg",
          "airplane/nl/let-m-sedadlo.ogg", "alibaba/nl/kni-m-hromado.ogg")
EMPTY_SPEECH = "elevator1/nl/zd1-m-cesta.ogg"


def image_corpus(root: Path) -> tuple[list[str], list[str]]:
    """Class folders ``landscape/`` (mate photos) and ``objects/`` (scikit-image photos as PNG, one
    grayscale) plus a truncated JPEG, a zero-byte ``.jpg`` and a text file named ``.jpg``.
    Returns (readable keys, corrupted keys)."""
    from PIL import Image

    from zoo.data.offline import MATE_DIR, skimage_photos

    (root / "landscape").mkdir(parents=True)
    (root / "objects").mkdir()
    good = []
    for name in MATE:
        shutil.copy(MATE_DIR / name, root / "landscape" / name)
        good.append(f"landscape/{name}")
    photos = skimage_photos()
    for i, name in enumerate(SKIMAGE):
        img = Image.fromarray(photos[name])
        (img.convert("L") if i == 1 else img).save(root / "objects" / f"{name}.png")
        good.append(f"objects/{name}.png")
    data = (MATE_DIR / "Garden.jpg").read_bytes()
    (root / "landscape" / "truncated.jpg").write_bytes(data[: len(data) // 4])
    (root / "objects" / "empty.jpg").write_bytes(b"")
    (root / "objects" / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    (root / "objects" / "README.txt").write_text("not an image: ignored\n")
    return sorted(good), sorted(["landscape/truncated.jpg", "objects/empty.jpg", "objects/notes.jpg"])


def speech_corpus(root: Path) -> tuple[list[str], list[str]]:
    """Real speech of varied lengths (two copies of one clip, so that a batch holds two items),
    the zero-length fillets-ng utterance and a truncated file. Returns (readable keys, bad keys)."""
    from zoo.data.offline import FILLETS_DIR

    root.mkdir(parents=True)
    good = []
    for rel in SPEECH:
        name = rel.replace("/nl/", "_")
        shutil.copy(FILLETS_DIR / rel, root / name)
        good.append(name)
    shutil.copy(FILLETS_DIR / SPEECH[1], root / "copy_of_divna.ogg")
    good.append("copy_of_divna.ogg")
    shutil.copy(FILLETS_DIR / EMPTY_SPEECH, root / "empty.ogg")
    data = (FILLETS_DIR / SPEECH[2]).read_bytes()
    (root / "truncated.ogg").write_bytes(data[:200])
    return sorted(good), ["empty.ogg", "truncated.ogg"]


def key_to_ids(root: Path) -> dict[tuple, np.ndarray]:
    """``{(key, view): ids}`` of every row of a tokenize output (pyarrow, all shards)."""
    import pyarrow.dataset as pads

    table = pads.dataset(sorted(str(p) for p in Path(root).glob("part-*.parquet")), format="parquet").to_table()
    views = table.column("view").to_pylist() if "view" in table.column_names else [None] * table.num_rows
    shapes = table.column("shape").to_pylist()
    out = {}
    for key, view, ids, shape in zip(table.column("key").to_pylist(), views, table.column("ids").to_pylist(), shapes):
        assert (key, view) not in out, f"duplicate row {key} {view}"
        out[(key, view)] = np.asarray(ids).reshape(shape)
    return out


def assert_ids_match(got: dict, want: dict) -> None:
    """Same keys; ids equal except at near-ties. Batched and single-item encodes run the same model
    on the same inputs but kernels may block a batch of B differently from a batch of 1, changing
    float results by ~1e-6 relative; an id can change only when its latent lies that close to a
    decision boundary (FSQ rounding / nearest code). Measured here: 0 differences (AVX-512 and
    ONEDNN_MAX_CPU_ISA=AVX2, 1 and 2 threads); we allow 1 + 1 per 1000 ids."""
    assert sorted(got) == sorted(want)
    assert all(got[k].shape == want[k].shape for k in want)
    total = sum(v.size for v in want.values())
    differ = sum(int((got[k] != want[k]).sum()) for k in want)
    assert differ <= 1 + total // 1000, f"{differ} of {total} ids differ"
