"""The op-class profile of ``scripts/benchmark.py --profile``: FLOPs counted on both linear paths,
classes that cover the whole time, and the report."""
import sys
from pathlib import Path

import pytest
import torch

from eval.op_profile import _flop_counts, op_class, profile_ops, write_profile_report
from zoo.layers.linear import linear

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name,cls", [("aten::addmm", "linear / matmul"),
                                      ("mkldnn::_linear_pointwise", "linear / matmul"), ("aten.mm", "linear / matmul"),
                                      ("aten::mkldnn_convolution", "convolution"),
                                      ("aten.convolution", "convolution"), ("aten::mkldnn_rnn_layer", "recurrent"),
                                      ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
                                      ("aten::native_group_norm", "other"), ("aten::copy_", "other")])
def test_op_class(name, cls):
    assert op_class(name) == cls


@pytest.mark.parametrize("fast", ["1", "0"])
def test_linear_flops_are_counted_on_the_onednn_and_the_aten_path(monkeypatch, fast):
    """The zoo's oneDNN inference linear has no FLOP formula in torch: the profile registers one, so
    both paths count 2 * rows * in * out."""
    monkeypatch.setenv("ZOO_FAST_LINEAR", fast)
    x, w, b = torch.randn(3, 70, 256), torch.randn(384, 256), torch.randn(384)
    with torch.inference_mode():
        counts = _flop_counts(lambda: linear(x, w, b))
    assert sum(counts.values()) == 2 * 3 * 70 * 256 * 384
    assert {op_class(k) for k in counts} == {"linear / matmul"}


def test_attention_flops_are_counted():
    q = k = v = torch.randn(2, 4, 50, 32)
    with torch.inference_mode():
        counts = _flop_counts(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert sum(n for name, n in counts.items() if op_class(name) == "attention") == 4 * 2 * 4 * 50 * 50 * 32


def test_profile_of_a_tiny_tokenizer_on_a_photo(tmp_path):
    import zoo
    from eval.benchmark import make_input

    torch.manual_seed(0)
    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    x = make_input(tok, zoo.get_info("titok_tiny.untrained"), 2, None)
    before = torch.get_num_threads()
    r = profile_ops(tok, x, threads=1)
    assert torch.get_num_threads() == before
    classes = r["classes"]
    assert {"linear / matmul", "convolution", "other"} <= set(classes)
    assert sum(c["share"] for c in classes.values()) == pytest.approx(1.0)
    assert sum(c["ms"] for c in classes.values()) == pytest.approx(r["total_ms"])
    assert classes["linear / matmul"]["gflop"] > 0 and classes["linear / matmul"]["gflops"] > 0
    assert classes["other"]["gflops"] is None and r["gemm_gflops"] > 0
    md = write_profile_report([{"tokenizer": "titok_tiny.untrained", "input": "2x3x32x32", **r}], tmp_path)
    assert "| titok_tiny.untrained |" in md.read_text() and (tmp_path / "profile.json").is_file()


def test_benchmark_cli_profile(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import benchmark
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert benchmark.main(["--profile", "--tokenizers", "titok_tiny.untrained", "--threads", "1", "--warmup", "1",
                           "--out", str(tmp_path)]) == 0
    assert "linear / matmul" in capsys.readouterr().out
    assert (tmp_path / "profile.md").is_file()
