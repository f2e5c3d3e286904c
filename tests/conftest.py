"""Shared test fixtures: golden parity cases, real photos and speech."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("ZOO_GOLDEN", ROOT.parent / "shared" / "golden"))
#: fixtures the project made itself by running an official implementation locally (same layout)
LOCAL_GOLDEN = ROOT / "tests" / "golden"

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


@dataclass
class GoldenCase:
    """One parity fixture folder: ``case`` (case.json), ``inputs`` / ``expected`` tensors,
    and the paths of the official state dict and config."""

    path: Path
    case: dict
    inputs: dict
    expected: dict

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def state_dict_path(self) -> Path | None:
        p = self.path / "official_state_dict.safetensors"
        return p if p.exists() else None

    @property
    def config_path(self) -> Path | None:
        for name in ("official_config.json", "official_config.yaml"):
            if (self.path / name).exists():
                return self.path / name
        return None


def load_golden(family: str, case: str) -> GoldenCase:
    """Load ``../shared/golden/<family>/<case>``; skips (with the reason) when absent."""
    from safetensors.torch import load_file

    path = GOLDEN / family / case
    if not path.is_dir() and (LOCAL_GOLDEN / family / case).is_dir():
        path = LOCAL_GOLDEN / family / case
    if not path.is_dir():
        pytest.skip(f"golden fixture {path} is absent (the shared/ folder is not beside this checkout)")
    case_json = json.loads((path / "case.json").read_text())
    inputs = load_file(str(path / "inputs.safetensors")) if (path / "inputs.safetensors").exists() else {}
    expected = load_file(str(path / "expected.safetensors")) if (path / "expected.safetensors").exists() else {}
    return GoldenCase(path, case_json, inputs, expected)


def golden_cases(family: str) -> list[str]:
    """Names of the cases present for ``family`` (empty when the fixtures are absent)."""
    names = set()
    for d in (GOLDEN / family, LOCAL_GOLDEN / family):
        if d.is_dir():
            names |= {p.name for p in d.iterdir() if (p / "case.json").exists()}
    return sorted(names)


def pytest_collection_modifyitems(config, items):
    """``cuda``-marked tests need a CUDA device: skipped with the reason where there is none
    (``ZOO_CUDA_TESTS_ON_CPU=1`` runs them on the CPU instead: the device check's dry run)."""
    if torch.cuda.is_available() or os.environ.get("ZOO_CUDA_TESTS_ON_CPU") == "1":
        return
    skip = pytest.mark.skip(reason="no CUDA device here (torch.cuda.is_available() is False); "
                                   "scripts/device_check.sh runs these on a GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def photo_batch() -> torch.Tensor:
    """Four real photos ``[4, 3, 64, 64]`` in [0, 1] (mate-backgrounds)."""
    from zoo.data.offline import photos

    return photos(64, limit=4)


@pytest.fixture(scope="session")
def photo_256() -> torch.Tensor:
    """One real photo ``[1, 3, 256, 256]`` in [0, 1] (scikit-image astronaut)."""
    from zoo.data.offline import load_photo

    return load_photo("astronaut", 256)[None]


@pytest.fixture(scope="session")
def speech_clip():
    """Factory: ``speech_clip(sample_rate, seconds=1.0)`` -> ``[1, T]`` real speech (alsa-utils)."""
    from zoo.data.offline import load_speech, speech_paths

    path = speech_paths("alsa")[0]

    def make(sample_rate: int, seconds: float | None = 1.0) -> torch.Tensor:
        return load_speech(path, sample_rate, max_seconds=seconds)[None]

    return make


def register_golden_entry(monkeypatch, base: str, tok) -> str:
    """Register, for one test, a copy of the registry entry ``base`` (same weight source, files and
    converter) whose architecture is ``tok``'s, e.g. a small model converted from a golden fixture:
    the registry's folder / hub-cache / converted-cache mechanics can then be tested on fixture-sized
    checkpoints, which the real entry refuses (they are not the model it advertises). Returns its name."""
    from dataclasses import replace

    import zoo.registry as registry

    info = registry.get_info(base)
    name = f"{info.arch}_golden.test"
    kwargs = {k: v for k, v in tok.config.items() if k != "tokenizer_class"}
    # codebook and token shape are derived from these kwargs (tok's own); no input size: no token-shape check
    entry = replace(info, name=name, kwargs=kwargs, input_size=None)
    monkeypatch.setitem(registry._REGISTRY, name, entry)
    return name


@pytest.fixture
def hf_offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 and an empty HF cache at ``tmp_path / "hf"`` (the default ``cache_dir``);
    huggingface_hub reads both at import time, so its constants are patched too. Returns the cache root."""
    import huggingface_hub.constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def add_to_hf_cache(cache: Path, repo: str, commit: str, files: dict[str, bytes | Path],
                    refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay out one commit of ``repo`` in an HF hub cache the way huggingface_hub writes it (blobs +
    snapshots + refs; ``refs`` are branch or tag names pointing at ``commit``). ``files`` maps a file
    name to its bytes or to a file to copy. Returns the snapshot folder."""
    import hashlib

    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo_dir / "blobs").mkdir(exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo_dir / "refs" / ref).write_text(commit)
    for name, data in files.items():
        data = data.read_bytes() if isinstance(data, Path) else data
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).symlink_to(os.path.relpath(blob, (snap / name).parent))
    return snap
