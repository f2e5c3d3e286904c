"""The benchmark harness measures what it says (no timing assertions: speed is not unit-tested)."""
import json

import torch

import zoo
from eval.benchmark import Case, make_input, run_case, time_call, write_report


def smallest_image_tokenizer() -> str:
    """A tiny untrained image tokenizer (the registry has ``*tiny*`` entries for CPU tests)."""
    names = zoo.list_tokenizers("*tiny*", modality="image")
    assert names, "expected at least one tiny image tokenizer in the registry"
    return names[0]


def test_time_call_runs_warmup_and_repeats():
    calls = []
    ms = time_call(lambda: calls.append(1), repeats=3, warmup=2, device=torch.device("cpu"))
    assert len(calls) == 5 and ms >= 0


def test_run_case_and_report(tmp_path):
    name = smallest_image_tokenizer()
    res = run_case(Case(name=name, batch_size=2, size=64, repeats=1, warmup=0))
    assert res.input_shape == (2, 3, 64, 64)
    assert res.encode_ms > 0 and res.decode_ms > 0 and res.items_per_s > 0
    assert res.peak_mem_mb >= res.baseline_mem_mb > 0
    assert res.params_m == sum(p.numel() for p in zoo.create_tokenizer(name).parameters()) / 1e6
    from dataclasses import asdict

    out = write_report([asdict(res), {"case": asdict(Case(name="broken")), "error": "ValueError: x"}], tmp_path)
    data = json.loads((out / "results.json").read_text())
    assert data[0]["case"]["name"] == name and "error" in data[1]
    md = (out / "results.md").read_text()
    assert name in md and "error: ValueError" in md and (out / "cost.png").stat().st_size > 1000


def test_audio_input_is_real_speech_of_requested_length():
    names = zoo.list_tokenizers(modality="audio")
    if not names:
        import pytest
        pytest.skip("no audio tokenizer registered yet")
    tok = zoo.create_tokenizer(names[0])
    x = make_input(tok, zoo.get_info(names[0]), 2, 1.5)
    assert x.shape == (2, int(1.5 * tok.sample_rate)) and x.abs().max() > 0.05


def test_compare_dmel_against_the_package(tmp_path):
    import pytest

    pytest.importorskip("dmel")
    from eval.benchmark import compare_dmel, write_dmel_report

    rows = compare_dmel(batch_sizes=(2,), seconds=(1.5,), repeats=1, warmup=0, memory=False)
    (row,) = rows
    assert row["ids_identical"] is True  # real speech, the package's own output with bos / eos
    assert row["batch"] == 2 and row["seconds"] == 1.5
    assert row["official_ms"] > 0 and row["zoo_ms"] > 0 and row["official_cpu_ms"] >= 0
    assert row["speedup"] == row["official_ms"] / row["zoo_ms"]
    md = write_dmel_report(rows, tmp_path).read_text()
    assert "| dmel.official | 2 | 1.5 |" in md and "| yes |" in md
    assert json.loads((tmp_path / "dmel_compare.json").read_text())[0]["ids_identical"] is True


def _benchmark_script():
    """``scripts/benchmark.py`` imported as a module (it is a script, not a package module)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("benchmark_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_benchmark_script_compare_dmel(tmp_path, capsys):
    import sys

    import pytest

    pytest.importorskip("dmel")
    script = _benchmark_script()
    code = script.main(["--compare-dmel", "--batch-sizes", "1", "--sizes", "1", "--repeats", "1", "--warmup", "0",
                        "--no-isolate", "--out", str(tmp_path)])
    assert code == 0
    assert "dmel package ms" in capsys.readouterr().out
    assert (tmp_path / "dmel_compare.md").exists() and sys.modules.get("dmel") is not None


def test_benchmark_script_sets_the_onednn_cache_of_case_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")  # restored (unset) after the test
    script = _benchmark_script()
    args = ["--tokenizers", smallest_image_tokenizer(), "--sizes", "64", "--repeats", "1", "--warmup", "0",
            "--threads", "1", "--out", str(tmp_path)]
    assert script.main([*args, "--onednn-cache", "0"]) == 0  # a spawned case process
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [r["onednn_cache"] for r in rows] == ["0"]
