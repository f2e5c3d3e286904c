"""scripts/compare_official.py and eval.official: validation, the missing-checkout error, the allocator
settings, the interleaving / median logic, the README renderer; dMel end to end (the `dmel` package
is installed); the other families end to end when ZOO_OFFICIAL_<FAMILY> points at a checkout."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eval.official import FAMILIES, get_family
from eval.official.checkout import OfficialCheckoutError, require_checkout
from eval.official.compare import compare
from eval.official.protocol import (RAISED_THRESHOLD, allocator_env, interleaved_order, median_times,
                                    speedup_summary, thread_env)
from eval.official.report import render_markdown, speedup_text

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compare_official.py"


def _run_script(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


# ----------------------------------------------------------------------------- validation
def test_unknown_family_preset_and_protocol_values_are_refused():
    with pytest.raises(ValueError, match="unknown family"):
        get_family("vqgan")
    with pytest.raises(ValueError, match="unknown preset 'l16'"):
        compare("titok", "l16", None)
    with pytest.raises(ValueError, match="rounds >= 1"):
        compare("dmel", "10s", None, rounds=0)
    with pytest.raises(ValueError, match="allocator settings"):
        compare("dmel", "10s", None, settings=("jemalloc",))
    with pytest.raises(ValueError, match="unknown options"):
        compare("dmel", "10s", None, options={"steps": 3})
    with pytest.raises(ValueError, match="op must be one of"):
        get_family("flextok").resolve_options("d12_d12", {"op": "train"})
    with pytest.raises(ValueError, match=r"length must lie in \[1, 256\], got 300"):
        get_family("onedpiece").resolve_options("s256", {"length": 300})
    assert get_family("flextok").resolve_options("d12_d12", {"steps": "8", "apg": False})["steps"] == 8


def test_every_family_names_its_official_repository():
    for name in FAMILIES:
        fam = get_family(name)
        assert fam.SOURCE.repo.count("/") == 1 and len(fam.SOURCE.commit) == 40 and fam.PRESETS


# ----------------------------------------------------------------------------- missing checkout
def test_missing_checkout_says_how_to_get_one(tmp_path):
    src = get_family("titok").SOURCE
    with pytest.raises(OfficialCheckoutError, match="git clone https://github.com/bytedance/1d-tokenizer") as e:
        require_checkout("titok", src, None)
    assert src.commit in str(e.value) and "tokenizer-zoo[compare]" in str(e.value)
    with pytest.raises(OfficialCheckoutError, match="not found"):
        require_checkout("titok", src, tmp_path / "nowhere")
    (tmp_path / "modeling").mkdir()
    (tmp_path / "modeling" / "titok.py").write_text("")
    with pytest.raises(OfficialCheckoutError, match="lacks modeling/modules/maskgit_vqgan.py"):
        require_checkout("titok", src, tmp_path)


def test_dmel_needs_no_checkout_when_the_package_is_installed():
    if importlib.util.find_spec("dmel") is None:
        pytest.skip("the dmel package is not installed (pip install dmel)")
    assert require_checkout("dmel", get_family("dmel").SOURCE, None) is None


def test_script_without_checkout_exits_2_with_the_instructions():
    out = _run_script("--family", "wavtokenizer")
    assert out.returncode == 2
    assert "git clone https://github.com/jishengpeng/WavTokenizer" in out.stderr
    bad = _run_script("--family", "dmel", "--set", "batch")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


# ----------------------------------------------------------------------------- allocator / timing
def test_allocator_env_sets_exactly_the_settings_variables():
    base = {"PATH": "/bin", "MALLOC_TOP_PAD_": "1", "MALLOC_MMAP_THRESHOLD_": "5", "GLIBC_TUNABLES": "x=1"}
    default = allocator_env("default", base)
    assert default == {"PATH": "/bin"}
    raised = allocator_env("raised", base)
    assert raised == {"PATH": "/bin", "MALLOC_MMAP_THRESHOLD_": str(RAISED_THRESHOLD),
                      "MALLOC_TRIM_THRESHOLD_": str(RAISED_THRESHOLD)}
    assert base["MALLOC_TOP_PAD_"] == "1"  # the input is not modified
    assert thread_env(1, {})["OMP_NUM_THREADS"] == "1" and thread_env(3, {})["MKL_NUM_THREADS"] == "3"
    with pytest.raises(ValueError):
        allocator_env("tcmalloc", base)
    with pytest.raises(ValueError):
        thread_env(0, {})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator variables and /proc are Linux's")
def test_raised_thresholds_keep_large_blocks_in_the_heap():
    """The probe the workers record: a freed 64 MiB block is unmapped by glibc's default and re-faulted
    on the next allocation; with the raised thresholds it stays in the heap."""
    code = "from eval.official.worker import allocator_probe; import json; print(json.dumps(allocator_probe()))"
    kept = {}
    for setting in ("default", "raised"):
        env = allocator_env(setting, dict(os.environ, PYTHONPATH=str(ROOT)))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        kept[setting] = json.loads(out.stdout.strip().splitlines()[-1])["blocks_kept_in_heap"]
    assert kept == {"default": False, "raised": True}


def test_interleaving_alternates_who_goes_first():
    assert interleaved_order(3) == ["official", "zoo", "zoo", "official", "official", "zoo"]
    order = interleaved_order(4)
    assert order.count("official") == order.count("zoo") == 4
    with pytest.raises(ValueError):
        interleaved_order(0)


def test_medians_and_speedups():
    calls = [{"wall_ms": w, "cpu_ms": w - 1} for w in (10.0, 30.0, 20.0, 1000.0, 15.0)]
    m = median_times(calls)
    assert m == {"wall_ms": 20.0, "cpu_ms": 19.0, "n": 5}  # the median ignores the outlier
    s = speedup_summary({"default": {"official": {"wall_ms": 30.0, "cpu_ms": 30.0}, "zoo": {"wall_ms": 20.0, "cpu_ms": 15.0}},
                         "raised": {"official": {"wall_ms": 22.0, "cpu_ms": 22.0}, "zoo": {"wall_ms": 20.0, "cpu_ms": 11.0}}})
    assert s["by_setting"]["default"]["wall"] == pytest.approx(1.5) and s["min_wall"] == pytest.approx(1.1)
    assert s["min_cpu"] == pytest.approx(2.0) and s["holds_under_all"]
    with pytest.raises(ValueError):
        median_times([])


# ----------------------------------------------------------------------------- README rows
def _result(official=(3000.0, 2800.0), zoo=(2000.0, 2100.0), ok=True):
    settings = {s: {"official": {"wall_ms": o, "cpu_ms": o}, "zoo": {"wall_ms": z, "cpu_ms": z}}
                for s, o, z in zip(("default", "raised"), official, zoo)}
    return {"family": "titok", "preset": "b64", "options": {"batch": 1},
            "description": {"name": "TiTok-B-64", "operation": "encode + decode", "batch": 1, "input": "256x256 photo"},
            "machine": {"cpu": "Test CPU 9000", "vendor": "GenuineIntel", "flags": ["avx2", "avx512f"], "torch": "2.9.1",
                        "isa_env": {}},
            "threads": 1, "rounds": 7, "warmup": 2, "date": "2026-12-05T10:00:00+00:00", "settings": settings,
            "speedup": speedup_summary(settings), "check": {"ok": ok, "summary": "ids identical; image max abs diff 3e-05"}}


def test_readme_rows_state_the_machine_and_count_only_what_holds_under_both_settings():
    good = _result()
    md = render_markdown([good])
    assert "Measured on Test CPU 9000 (GenuineIntel; avx2, avx512f), torch 2.9.1, 1 thread." in md
    assert "median of 7 interleaved calls per side after 2 warm-ups" in md
    row = [line for line in md.splitlines() if line.startswith("| TiTok-B-64")][0]
    assert "| 3000 / 2800 | 2000 / 2100 | **1.33x** (1.50x / 1.33x); CPU time 1.50x / 1.33x |" in row  # smaller counts
    assert row.count("|") == md.splitlines()[3].count("|")  # no stray column separators
    mixed = _result(official=(3000.0, 1900.0))
    assert speedup_text(mixed).startswith("none (1.50x / 0.90x)")
    failed = render_markdown([_result(ok=False)])
    assert "FAILED: ids identical" in failed
    one = copy.deepcopy(good)
    del one["settings"]["raised"]
    one["speedup"] = speedup_summary({"default": one["settings"]["default"]})
    assert "not counted" in speedup_text(one)


def test_script_renders_saved_results(tmp_path):
    paths = []
    for i, r in enumerate((_result(), _result(official=(4000.0, 4000.0)))):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(r))
    out = _run_script("--render", *map(str, paths))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("| TiTok-B-64 |") == 2 and out.stdout.count("Measured on") == 1


# ----------------------------------------------------------------------------- checks of the families
def test_wavtokenizer_near_ties_are_decided_in_float64():
    from eval.official.wavtokenizer import near_tie

    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    e_a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    e_b = torch.tensor([[2.0, 1e-4], [2.0, 1.0]])  # row 0: |x-a|^2 = 1 vs 1 + 1e-8; row 1: 1 vs 2
    dx = torch.tensor([1e-6, 1e-6])
    assert near_tie(x, e_a, e_b, dx).tolist() == [True, False]
    assert near_tie(x, e_a, e_b, torch.tensor([1.0, 1.0])).tolist() == [True, True]  # latents that far apart


def test_titok_check_reports_ids_and_image_differences():
    from eval.official.titok import IMAGE_ATOL, check

    ids = torch.randint(0, 4096, (1, 32))
    img = torch.rand(1, 3, 8, 8)
    ok = check("l32", {}, {"ids": ids, "image": img}, {"ids": ids.clone(), "image": img + 1e-5,
                                                        "image_from_official_ids": img})
    assert ok["ok"] and ok["ids_equal"]
    other = ids.clone()
    other[0, 3] = (other[0, 3] + 1) % 4096
    bad = check("l32", {}, {"ids": ids, "image": img}, {"ids": other, "image": img, "image_from_official_ids": img})
    assert not bad["ok"] and bad["ids_differ"] == 1
    far = check("l32", {}, {"ids": ids, "image": img}, {"ids": ids, "image": img + 2 * IMAGE_ATOL,
                                                         "image_from_official_ids": img})
    assert not far["ok"]


def test_flextok_config_has_the_official_layout():
    """The written config equals the Hydra config of the golden fixture (made by running the official
    code) at the fixture's sizes, except the VAE source (built from the base config here)."""
    from eval.official.flextok_config import official_flextok_config
    from tests.conftest import load_golden

    case = load_golden("flextok", "tiny")
    golden = json.loads(case.config_path.read_text())
    ours = official_flextok_config(2, 2, image_size=32, registers=16)
    for key in ("hf_hub_path", "scaling_factor"):
        golden["vae"].pop(key), ours["vae"].pop(key)
    assert ours == golden


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_dmel_end_to_end_against_the_installed_package(tmp_path):
    if importlib.util.find_spec("dmel") is None:
        pytest.skip("the dmel package is not installed (pip install dmel)")
    out = _run_script("--family", "dmel", "--presets", "10s", "--rounds", "2", "--warmup", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    r = json.loads((tmp_path / "dmel_10s_b1.json").read_text())
    assert r["check"]["ok"] and r["check"]["summary"] == "ids identical"
    assert set(r["settings"]) == {"default", "raised"}
    for entry in r["settings"].values():
        assert entry["official"]["n"] == entry["zoo"]["n"] == 2
        assert all(c["wall_ms"] > 0 and c["cpu_ms"] >= 0 for c in entry["zoo"]["calls"])
    assert r["settings"]["raised"]["zoo"]["allocator_probe"]["blocks_kept_in_heap"]
    assert "| dMel (vs the dmel package) | encode | 1 | 10 s speech |" in (tmp_path / "rows.md").read_text()


_CHECKOUT_CASES = [("titok", "s128", []), ("onedpiece", "s256", ["--set", "length=32"]),
                   ("wavtokenizer", "40", ["--set", "seconds=2"]), ("flextok", "d12_d12", ["--set", "steps=1"])]


@pytest.mark.slow
@pytest.mark.parametrize("family,preset,extra", _CHECKOUT_CASES, ids=[c[0] for c in _CHECKOUT_CASES])
def test_end_to_end_with_an_official_checkout(tmp_path, family, preset, extra):
    var = f"ZOO_OFFICIAL_{family.upper()}"
    src = os.environ.get(var)
    if not src:
        pytest.skip(f"set {var} to a checkout of https://github.com/{get_family(family).SOURCE.repo} to run this test")
    out = _run_script("--family", family, "--official-src", src, "--presets", preset, "--rounds", "1", "--warmup", "0",
                      "--settings", "default", "--out", str(tmp_path), *extra)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(next(tmp_path.glob(f"{family}_{preset}_*.json")).read_text())
    assert r["check"]["ok"], r["check"]["summary"]


def test_readme_comparison_block_is_rendered_from_the_saved_results():
    """The README's comparison table is exactly what --render makes of benchmarks/official/*.json."""
    from eval.official.report import README_BEGIN, README_END

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) + len(README_BEGIN) + 1:readme.index(README_END)]
    files = sorted((ROOT / "benchmarks" / "official").glob("*.json"))
    assert files, "no saved comparison results in benchmarks/official"
    results = [json.loads(f.read_text()) for f in files]
    assert block == render_markdown(results), ("run: python scripts/compare_official.py --render "
                                               "benchmarks/official/*.json --write-readme README.md")
    assert all(r["check"]["ok"] for r in results)
