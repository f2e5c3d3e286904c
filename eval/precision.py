"""How much reduced precision changes a tokenizer, stage by stage, and what it gains in speed.

For one tokenizer and input batch, against the float32 run on the same device:
- encode in bf16 / fp16: the share of ids equal to the float32 ids;
- decode in bf16 / fp16 of the float32 ids: PSNR (dB) of the output against the float32 decode
  (data range = the tokenizer's ``input_range`` width: 1 for images, 2 for audio);
- median encode and decode times in each precision (see :func:`eval.benchmark.time_call`).
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

import torch

__all__ = ["id_agreement", "signal_psnr", "seeded_decode_kwargs", "measure_precision", "precision_rows", "write_precision_report"]


def id_agreement(ids: torch.Tensor, reference: torch.Tensor) -> float:
    """Share in [0, 1] of entries of ``ids`` equal to ``reference`` (same shape, any integer layout)."""
    if ids.shape != reference.shape:
        raise ValueError(f"ids {tuple(ids.shape)} and reference {tuple(reference.shape)} differ in shape")
    return float((ids == reference).double().mean())


def signal_psnr(preds: torch.Tensor, target: torch.Tensor, data_range: float) -> torch.Tensor:
    """Per-item PSNR in dB ``[B]`` of any-shape signals ``[B, ...]`` (inf where identical)."""
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
    mse = (preds.double() - target.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def seeded_decode_kwargs(tok, decode_kwargs: dict | None):
    """Decode keywords for each call: those of ``decode_kwargs`` that ``tok`` takes (one sweep can
    name family-specific ones, e.g. FlexTok's ``steps``); samplers that draw noise get a freshly
    seeded generator (identical noise in every precision, so only the arithmetic differs)."""
    params = inspect.signature(tok._decode).parameters
    base = {k: v for k, v in (decode_kwargs or {}).items() if k in params}
    seeded = "generator" in params and "noise" not in base

    def make() -> dict:
        kw = dict(base)
        if seeded:
            kw["generator"] = torch.Generator(tok.device).manual_seed(0)
        return kw

    return make


def measure_precision(tok, x: torch.Tensor, dtypes=("bf16", "fp16"), decode_kwargs: dict | None = None,
                      repeats: int = 3, warmup: int = 1, timing: bool = True) -> list[dict]:
    """One row per precision (``"fp32"`` first, the reference) for ``tok`` on batch ``x``.

    Row keys: dtype, id_share (encode agreement with fp32), decode_psnr_db_min / _mean (decode of
    the fp32 ids against the fp32 decode), encode_ms, decode_ms (None when ``timing`` is False).
    """
    from eval.benchmark import time_call

    from zoo.precision import precision_name, resolve_precision

    kwargs = seeded_decode_kwargs(tok, decode_kwargs)
    lo, hi = tok.input_range
    ref_tokens = tok.encode(x, dtype="fp32")
    ref_signal = tok.decode(ref_tokens, dtype="fp32", **kwargs())
    rows = []
    for dtype in ["fp32", *[d for d in dtypes if resolve_precision(d) != torch.float32]]:
        name = precision_name(resolve_precision(dtype))
        tokens = tok.encode(x, dtype=dtype)
        signal = tok.decode(ref_tokens, dtype=dtype, **kwargs())
        psnr = signal_psnr(signal, ref_signal, hi - lo)
        row = {"dtype": name, "id_share": id_agreement(tokens.ids, ref_tokens.ids),
               "decode_psnr_db_min": float(psnr.min()), "decode_psnr_db_mean": float(psnr.mean()),
               "output_dtype": str(signal.dtype).replace("torch.", ""), "encode_ms": None, "decode_ms": None}
        if timing:
            row["encode_ms"] = time_call(lambda: tok.encode(x, dtype=dtype), repeats, warmup, x.device)
            row["decode_ms"] = time_call(lambda: tok.decode(ref_tokens, dtype=dtype, **kwargs()), repeats, warmup,
                                         x.device)
        rows.append(row)
    return rows


def precision_rows(names: list[str], dtypes=("bf16", "fp16"), batch_size: int = 1, size: float | None = None,
                   device: str = "cpu", repeats: int = 3, warmup: int = 1, decode_kwargs: dict | None = None,
                   pretrained: bool | None = None) -> list[dict]:
    """:func:`measure_precision` for each registered tokenizer in ``names`` on the benchmark's real
    input (``eval.benchmark.make_input``); weights: ``pretrained=None`` loads those shipped inside
    the package (demo tokenizers, dMel) and seeds random ones for every other entry (no download)."""
    import zoo
    from eval.benchmark import make_input

    out = []
    for name in names:
        info = zoo.get_info(name)
        torch.manual_seed(0)
        packaged = info.source is not None and info.source.packaged is not None
        use_weights = packaged if pretrained is None else pretrained
        tok = zoo.create_tokenizer(name, pretrained=use_weights).to(device).eval()
        x = make_input(tok, info, batch_size, size).to(device)
        for row in measure_precision(tok, x, dtypes, decode_kwargs, repeats=repeats, warmup=warmup):
            out.append({"tokenizer": name, "family": info.family, "weights": "trained" if use_weights else "random",
                        "device": str(device), "batch": batch_size, "input_shape": list(x.shape), **row})
    return out


def _fmt(v, pattern: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "identical"
    return format(v, pattern)


def write_precision_report(rows: list[dict], out_dir: str | Path) -> Path:
    """``precision.json`` and ``precision.md`` (one table row per tokenizer and precision); returns the .md."""
    from eval.report import write_table

    def cells(r: dict) -> list[str]:
        ref = r["dtype"] == "fp32"
        share = "-" if ref else f"{100 * r['id_share']:.2f} %"
        psnr = "-" if ref else f"{_fmt(r['decode_psnr_db_min'], '.1f')} / {_fmt(r['decode_psnr_db_mean'], '.1f')}"
        return [r["tokenizer"], r["family"], r["weights"], r["device"], str(r["batch"]), r["dtype"], share, psnr,
                _fmt(r["encode_ms"], ".1f"), _fmt(r["decode_ms"], ".1f")]

    header = ["tokenizer", "family", "weights", "device", "batch", "precision", "ids equal to fp32 (encode)",
              "decode PSNR vs fp32 dB (min / mean)", "encode ms", "decode ms"]
    return write_table(rows, out_dir, "precision", header, cells)
