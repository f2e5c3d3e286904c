"""``torchrun`` with 2 processes (gloo on CPU) gives the same dataset as 1 process, as key -> ids maps."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .corpus import assert_ids_match, image_corpus, key_to_ids, speech_corpus

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], launcher: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, *launcher, "-m", "zoo", "tokenize", *args, "--quiet"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def errors(out: Path) -> dict:
    return {e["key"]: e["error"] for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize("modality", ["image", "audio"])
def test_two_processes_equal_one(tmp_path, modality):
    if modality == "image":
        tok, (good, bad) = "titok_demo64.demo", image_corpus(tmp_path / "in")
    else:
        tok, (good, bad) = "wavtokenizer_demo75.demo", speech_corpus(tmp_path / "in")
    common = [tok, str(tmp_path / "in"), None, "--pretrained", "--batch-size", "2", "--shard-size", "2",
              "--num-workers", "1"]
    one, two = tmp_path / "one", tmp_path / "two"
    run([str(one) if a is None else a for a in common], [])
    run([str(two) if a is None else a for a in common],
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    a, b = key_to_ids(one), key_to_ids(two)
    # each rank batches other items together than the single process does: equal up to near-ties
    assert sorted(a) == sorted((k, None) for k in good)
    assert_ids_match(b, a)
    assert errors(one) == errors(two) and sorted(errors(two)) == bad
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (one, two))
    assert m2["world_size"] == 2 and {s["rank"] for s in m2["shards"]} == {0, 1}
    assert m1["num_inputs"] == m2["num_inputs"] == len(good) + len(bad) and m1["num_rows"] == m2["num_rows"]
    assert m1["tokenizer"] == m2["tokenizer"] and m1["label_map"] == m2["label_map"]
