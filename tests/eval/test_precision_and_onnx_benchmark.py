"""The benchmark's precision and onnxruntime reports measure what they say (no timing assertions)."""
import json
import math

import pytest
import torch

from eval.precision import id_agreement, measure_precision, precision_rows, signal_psnr, write_precision_report


def test_id_agreement_and_psnr_definitions():
    a = torch.tensor([[1, 2, 3, 4]])
    assert id_agreement(a, a) == 1.0 and id_agreement(torch.tensor([[1, 0, 3, 0]]), a) == 0.5
    with pytest.raises(ValueError, match="differ in shape"):
        id_agreement(a, a[:, :2])
    x = torch.zeros(2, 100)
    y = x.clone()
    y[1] += 0.01  # MSE 1e-4, range 2 -> 10 log10(4 / 1e-4) = 46.02 dB
    psnr = signal_psnr(y, x, 2.0)
    assert math.isinf(psnr[0]) and psnr[1].item() == pytest.approx(46.0206, abs=1e-3)


def test_precision_rows_and_report(tmp_path):
    rows = precision_rows(["titok_tiny.untrained"], ["bf16", "fp32", "fp16"], batch_size=2, repeats=1, warmup=0)
    assert [r["dtype"] for r in rows] == ["fp32", "bf16", "fp16"]  # fp32 once, first: the reference
    ref = rows[0]
    assert ref["id_share"] == 1.0 and math.isinf(ref["decode_psnr_db_min"])
    for r in rows:
        assert 0.0 <= r["id_share"] <= 1.0 and r["encode_ms"] > 0 and r["decode_ms"] > 0
        assert r["output_dtype"] == "float32" and r["weights"] == "random" and r["input_shape"] == [2, 3, 64, 64]
    md = write_precision_report(rows, tmp_path).read_text()
    assert "| titok_tiny.untrained | titok | random | cpu | 2 | bf16 |" in md
    assert json.loads((tmp_path / "precision.json").read_text())[1]["dtype"] == "bf16"


def test_measure_precision_seeds_the_sampler_alike():
    """FlexTok draws noise: every precision decodes the same noise, so fp32 against fp32 is identical."""
    import zoo

    tok = zoo.create_tokenizer("flextok_tiny.untrained").eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    (row,) = measure_precision(tok, x, dtypes=("fp32",), decode_kwargs={"steps": 1, "length": 3}, timing=False)
    assert row["dtype"] == "fp32" and math.isinf(row["decode_psnr_db_min"]) and row["encode_ms"] is None


@pytest.mark.slow
def test_compare_onnx_rows_and_report(tmp_path):
    pytest.importorskip("onnxscript")
    from eval.onnx_benchmark import compare_onnx, write_onnx_report

    (row,) = compare_onnx(["titok_tiny.untrained"], batch_size=2, threads=1, repeats=2, warmup=0)
    assert row["ids_equal"] >= 0.99 and row["decode_max_abs_diff"] < 1e-4
    assert row["torch_encode_ms"] > 0 and row["ort_decode_ms"] > 0
    assert row["encode_speedup"] == row["torch_encode_ms"] / row["ort_encode_ms"]
    md = write_onnx_report([row], tmp_path).read_text()
    assert "titok_tiny.untrained" in md and (tmp_path / "onnx_compare.json").exists()
