"""Where encode + decode spend their time, and how close the heavy ops run to the CPU's GEMM speed.

One tokenizer call is profiled twice on the same input: once under
:class:`torch.utils.flop_counter.FlopCounterMode` (floating-point operations per op, counted from
the shapes) and once under :mod:`torch.profiler` (self CPU time per kernel). Both are grouped into
op classes (linear / matmul, convolution, attention, recurrent, everything else), which gives the
achieved GFLOP/s of each class. The reference is the speed of one large fp32 GEMM measured in the
same process with the same threads (``gemm_gflops``): a class near 100 % of it cannot get much faster
in fp32 by rewriting the model, only by doing less work or using a lower precision.

``python scripts/benchmark.py --profile --tokenizers titok_l32.in1k --threads 1``
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["OP_CLASSES", "op_class", "gemm_gflops", "profile_ops", "write_profile_report"]

#: op class -> substrings of profiler / dispatcher op names (first match wins, in this order)
OP_CLASSES: dict[str, tuple[str, ...]] = {
    "attention": ("scaled_dot_product", "flash_attention", "efficient_attention"),
    "recurrent": ("rnn", "lstm", "gru"),
    "convolution": ("conv",),
    "linear / matmul": ("linear", "addmm", "baddbmm", "bmm", "::mm", "aten.mm", "matmul"),
}


def op_class(name: str) -> str:
    """The :data:`OP_CLASSES` class of an op name (``"aten::addmm"``, ``"aten.convolution"``), else ``"other"``."""
    low = name.lower()
    for cls, keys in OP_CLASSES.items():
        if any(k in low for k in keys):
            return cls
    return "other"


def gemm_gflops(m: int = 512, k: int = 1024, n: int = 4096, repeats: int = 10) -> float:
    """GFLOP/s of one ``[m, k] x [k, n]`` fp32 ``torch.mm`` on the CPU, current threads (median of ``repeats``)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / sorted(times)[len(times) // 2] / 1e9


def _linear_pointwise_flops(input_shape, weight_shape, *args, **kwargs) -> int:
    """oneDNN's fused linear (``mkldnn::_linear_pointwise``, the zoo's fp32 CPU inference linear)."""
    rows = 1
    for s in input_shape[:-1]:
        rows *= s
    return 2 * rows * weight_shape[0] * weight_shape[1]


def _cpu_flash_attention_flops(q_shape, k_shape, v_shape, *args, **kwargs) -> int:
    """``softmax(q k^T) v`` on the CPU kernel: ``[B, H, Lq, D] x [B, H, Lk, D]`` twice."""
    b, h, lq, d = q_shape
    return 4 * b * h * lq * k_shape[-2] * d


def _register_formulas() -> None:
    """FLOP formulas for the CPU kernels that :mod:`torch.utils.flop_counter` does not know."""
    from torch.utils import flop_counter

    for ns, name, formula in (("mkldnn", "_linear_pointwise", _linear_pointwise_flops),
                              ("aten", "_scaled_dot_product_flash_attention_for_cpu", _cpu_flash_attention_flops)):
        op = getattr(getattr(torch.ops, ns), name, None)
        if op is not None and op.default not in flop_counter.flop_registry and op not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(op)(formula)


def _flop_counts(fn) -> dict[str, int]:
    from torch.utils.flop_counter import FlopCounterMode

    _register_formulas()
    with FlopCounterMode(display=False) as counter:
        fn()
    return {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}


def _self_times_ms(fn) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}


def profile_ops(tok, x: torch.Tensor, decode_kwargs: dict | None = None, threads: int | None = None,
                warmup: int = 1) -> dict[str, Any]:
    """Profile ``decode(encode(x))``: per op class ms, share of the time, GFLOP and GFLOP/s.

    Returns ``{"total_ms", "gemm_gflops", "classes": {cls: {"ms", "share", "gflop", "gflops",
    "of_gemm"}}, "top_ops": [(name, ms), ...]}``; ``gflops`` / ``of_gemm`` are None for classes
    without counted FLOPs.
    """
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _profile(tok, x, dict(decode_kwargs or {}), warmup)
    finally:
        torch.set_num_threads(before)


def _profile(tok, x: torch.Tensor, kwargs: dict, warmup: int) -> dict[str, Any]:
    def call():
        with torch.inference_mode():
            tok.decode(tok.encode(x), **kwargs)

    for _ in range(warmup):
        call()
    flops = _flop_counts(call)
    times = _self_times_ms(call)
    peak = gemm_gflops()
    total = sum(times.values())
    classes: dict[str, dict[str, Any]] = {}
    for name, ms in times.items():
        c = classes.setdefault(op_class(name), {"ms": 0.0, "gflop": 0.0})
        c["ms"] += ms
    for name, n in flops.items():
        c = classes.setdefault(op_class(name), {"ms": 0.0, "gflop": 0.0})
        c["gflop"] += n / 1e9
    for c in classes.values():
        c["share"] = c["ms"] / total if total else 0.0
        c["gflops"] = c["gflop"] / (c["ms"] / 1e3) if c["gflop"] and c["ms"] else None
        c["of_gemm"] = c["gflops"] / peak if c["gflops"] else None
    top = sorted(times.items(), key=lambda kv: -kv[1])[:8]
    return {"total_ms": total, "gemm_gflops": peak, "threads": torch.get_num_threads(),
            "classes": dict(sorted(classes.items(), key=lambda kv: -kv[1]["ms"])), "top_ops": top}


def write_profile_report(rows: list[dict], out: str | Path) -> Path:
    """``rows``: ``{"tokenizer", "input", **profile_ops(...)}``; writes profile.json / profile.md, returns the .md."""
    import json

    from zoo.checkpoint import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "profile.json") as tmp:
        Path(tmp).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    lines = ["| tokenizer | input | threads | op class | ms | share | GFLOP | GFLOP/s | of fp32 GEMM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for cls, c in r["classes"].items():
            rate = "-" if c["gflops"] is None else f"{c['gflops']:.0f}"
            of = "-" if c["of_gemm"] is None else f"{100 * c['of_gemm']:.0f} %"
            lines.append(f"| {r['tokenizer']} | {r['input']} | {r['threads']} | {cls} | {c['ms']:.0f} | "
                         f"{100 * c['share']:.0f} % | {c['gflop']:.1f} | {rate} | {of} |")
    lines.append("")
    lines += [f"- {r['tokenizer']}: fp32 GEMM reference {r['gemm_gflops']:.0f} GFLOP/s; slowest kernels: "
              + ", ".join(f"{n} {ms:.0f} ms" for n, ms in r["top_ops"][:5]) for r in rows]
    path = out / "profile.md"
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
