"""onnxruntime against PyTorch: the exported graphs (``zoo.export``) timed on the same real input.

For each tokenizer: export to a temporary folder, then on the benchmark's real input
(``eval.benchmark.make_input``) time PyTorch ``encode`` / ``decode`` and onnxruntime's encoder /
decoder sessions (CPU execution provider, ``threads`` intra-op threads like PyTorch's), medians
after warm-ups, alternating the two sides; report the share of equal ids and the largest decode
difference (same ids into both decoders).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["compare_onnx", "write_onnx_report"]


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def compare_onnx(names: list[str], batch_size: int = 1, size: float | None = None, threads: int | None = None,
                 repeats: int = 5, warmup: int = 2, random_weights: bool = False) -> list[dict]:
    """One row per tokenizer: PyTorch and onnxruntime encode / decode ms, speed-ups, id agreement,
    max decode difference. Weights: packaged ones where the entry ships them (else seeded random)."""
    import zoo
    from eval.benchmark import make_input, time_call
    from eval.precision import id_agreement
    from zoo.api import Tokens
    from zoo.export import export_onnx

    if threads:
        torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    rows = []
    for name in names:
        info = zoo.get_info(name)
        packaged = info.source is not None and info.source.packaged is not None and not random_weights
        torch.manual_seed(0)
        tok = zoo.create_tokenizer(name, pretrained=packaged).eval()
        x = make_input(tok, info, batch_size, size)
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(tok, tmp, name=name)
            enc, dec = _session(Path(tmp) / "encoder.onnx", threads), _session(Path(tmp) / "decoder.onnx", threads)
            tokens = tok.encode(x)
            ids = tokens.ids.numpy()
            ort_ids = enc.run(None, {"x": x.numpy()})[0]
            ref = tok.decode(Tokens(ids=tokens.ids)).numpy()
            ort_out = dec.run(None, {"ids": ids})[0][..., : ref.shape[-1]]
            times = {}
            for _ in range(2):  # alternate the sides: drift on a shared machine hits both
                for key, fn in (("torch_encode_ms", lambda: tok.encode(x)),
                                ("ort_encode_ms", lambda: enc.run(None, {"x": x.numpy()})),
                                ("torch_decode_ms", lambda: tok.decode(Tokens(ids=tokens.ids))),
                                ("ort_decode_ms", lambda: dec.run(None, {"ids": ids}))):
                    times.setdefault(key, []).append(time_call(fn, max(1, repeats // 2), warmup, cpu))
        row = {"tokenizer": name, "weights": "trained" if packaged else "random", "batch": batch_size,
               "input_shape": list(x.shape), "threads": torch.get_num_threads(),
               "ids_equal": id_agreement(torch.from_numpy(ort_ids), tokens.ids),
               "decode_max_abs_diff": float(np.abs(ort_out - ref).max())}
        row.update({k: float(np.median(v)) for k, v in times.items()})
        row["encode_speedup"] = row["torch_encode_ms"] / row["ort_encode_ms"]
        row["decode_speedup"] = row["torch_decode_ms"] / row["ort_decode_ms"]
        rows.append(row)
    return rows


def write_onnx_report(rows: list[dict], out_dir: str | Path) -> Path:
    """``onnx_compare.json`` and ``onnx_compare.md``; returns the .md path."""
    from eval.report import write_table

    header = ["tokenizer", "weights", "batch", "input", "threads", "PyTorch encode ms", "onnxruntime encode ms",
              "PyTorch decode ms", "onnxruntime decode ms", "ids equal", "decode max diff"]
    return write_table(rows, out_dir, "onnx_compare", header, lambda r: [
        r["tokenizer"], r["weights"], str(r["batch"]), "x".join(map(str, r["input_shape"])), str(r["threads"]),
        f"{r['torch_encode_ms']:.1f}", f"{r['ort_encode_ms']:.1f} ({r['encode_speedup']:.2f}x)",
        f"{r['torch_decode_ms']:.1f}", f"{r['ort_decode_ms']:.1f} ({r['decode_speedup']:.2f}x)",
        f"{100 * r['ids_equal']:.2f} %", f"{r['decode_max_abs_diff']:.1e}"])
