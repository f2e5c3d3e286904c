"""Benchmark encode / decode speed and memory of registered tokenizers.

Examples:
  python scripts/benchmark.py --tokenizers 'titok_*' --batch-sizes 1,8 --sizes 256
  python scripts/benchmark.py --tokenizers wavtokenizer_small_75 --sizes 1,10,60 --device cuda --dtype bf16
  python scripts/benchmark.py --tokenizers flextok_d12_d12 --decode k=1,16,256 --decode steps=8
  python scripts/benchmark.py --compare-dmel --batch-sizes 1,8 --sizes 10,60 --threads 1 --repeats 31
    (the zoo dMel tokenizer against Apple's pip package ``dmel``: identical ids, speed, peak memory)
  python scripts/benchmark.py --precision --tokenizers 'titok_demo64.demo,wavtokenizer_demo75.demo' --dtype bf16,fp16
    (per stage against fp32: share of equal ids under reduced-precision encode, decode PSNR, speed)
  python scripts/benchmark.py --onnx --tokenizers 'titok_demo64.demo,wavtokenizer_demo75.demo' --threads 1
    (the exported ONNX graphs in onnxruntime against PyTorch on CPU: speed, equal ids, decode difference)
  python scripts/benchmark.py --profile --tokenizers wavtokenizer_small_75.libritts --sizes 10 --threads 1
    (where encode + decode spend their time per op class, with achieved GFLOP/s against one fp32 GEMM)
  python scripts/benchmark.py --compare-tokenize --tokenizers titok_demo64.demo --threads 2 --repeats 3
    (items/s of `zoo tokenize` against per-file loops of `encode` on the offline photos; add
     --device cuda --tokenizers titok_l32 --untrained for the GPU number with random weights)
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _parse_decode(items: list[str]) -> list[dict]:
    """``k=1,16 steps=8`` -> the cartesian product of decode keyword arguments."""
    keys, values = [], []
    for item in items:
        k, v = item.split("=", 1)
        keys.append(k)
        values.append([int(x) if x.lstrip("-").isdigit() else float(x) for x in v.split(",")])
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)] or [{}]


def main(argv=None) -> int:
    import zoo
    from eval.benchmark import Case, benchmark, write_report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizers", default="*", help="comma-separated registry names or globs")
    p.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="fp32", help="comma-separated: fp32,bf16,fp16 (autocast)")
    p.add_argument("--compile", action="store_true", help="torch.compile encode and decode")
    p.add_argument("--batch-sizes", default="1")
    p.add_argument("--sizes", default="", help="image side px / audio seconds / video frames (comma-separated)")
    p.add_argument("--decode", nargs="*", default=[], help="decode kwargs sweeps, e.g. k=1,16,256 steps=8")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-isolate", action="store_true", help="run cases in this process (peak memory shared; "
                   "with --compare-dmel: skip the peak-memory processes)")
    p.add_argument("--out", default="bench_out")
    p.add_argument("--onednn-cache", type=int, default=None, metavar="N",
                   help="ONEDNN_PRIMITIVE_CACHE_CAPACITY of the case processes (oneDNN's default 1024 keeps "
                        "scratch memory of cached primitives: 0 lowers the CPU peak by ~100 MB on TiTok-B-64 "
                        "for ~2%% more time)")
    p.add_argument("--precision", action="store_true",
                   help="per-stage precision report instead: ids equal to fp32 under each --dtype encode, decode "
                        "PSNR against fp32, encode / decode times (first --sizes value; packaged weights where "
                        "the entry ships them, seeded random otherwise)")
    p.add_argument("--onnx", action="store_true",
                   help="onnxruntime (exported graphs, CPU) against PyTorch instead (first --sizes value)")
    p.add_argument("--compare-dmel", action="store_true",
                   help="compare dmel.official with the installed `dmel` package instead (sizes = audio seconds)")
    p.add_argument("--profile", action="store_true",
                   help="op-class breakdown of encode + decode with achieved GFLOP/s (random weights unless "
                   "--pretrained)")
    p.add_argument("--pretrained", action="store_true", help="--profile: load the pretrained weights")
    p.add_argument("--compare-tokenize", action="store_true",
                   help="items/s of zoo tokenize vs per-file encode loops (eval/tokenize_speed.py)")
    p.add_argument("--copies", type=int, default=8, help="--compare-tokenize: copies of the offline photos")
    p.add_argument("--untrained", action="store_true", help="--compare-tokenize: random weights (no download)")
    args = p.parse_args(argv)
    if args.onednn_cache is not None:  # read by oneDNN when the (spawned) case process first uses it
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.onednn_cache)
    if args.compare_dmel:
        return _compare_dmel(args)
    if args.compare_tokenize:
        return _compare_tokenize(args)

    names = _names(args.tokenizers)
    if args.precision:
        return _precision(args, names)
    if args.onnx:
        return _onnx(args, names)
    if args.profile:
        return _profile(args, names)
    sizes = [float(s) for s in args.sizes.split(",") if s] or [None]
    cases = [Case(name=n, batch_size=int(b), size=s, device=args.device, dtype=d, compile=args.compile,
                  repeats=args.repeats, warmup=args.warmup, decode_kwargs=kw, threads=args.threads)
             for n in names for b in args.batch_sizes.split(",") for s in sizes
             for d in args.dtype.split(",") for kw in _parse_decode(args.decode)]
    results = benchmark(cases, isolate=not args.no_isolate)
    out = write_report(results, args.out)
    print((out / "results.md").read_text())
    return 1 if any("error" in r for r in results) else 0


def _names(patterns: str) -> list[str]:
    """Comma-separated registry names or globs -> registry names (in order, no repeats)."""
    import zoo

    names = []
    for pattern in patterns.split(","):
        found = zoo.list_tokenizers(filter=pattern) or ([zoo.get_info(pattern).name] if "*" not in pattern else [])
        names += [n for n in found if n not in names]
    return names


def _precision(args, names: list[str]) -> int:
    import torch

    from eval.precision import precision_rows, write_precision_report

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [float(s) for s in args.sizes.split(",") if s] or [None]
    dtypes = [d for d in args.dtype.split(",") if d]
    kwargs = _parse_decode(args.decode)[0]
    rows = []
    for b in args.batch_sizes.split(","):
        rows += precision_rows(names, dtypes, batch_size=int(b), size=sizes[0], device=args.device,
                               repeats=args.repeats, warmup=args.warmup, decode_kwargs=kwargs)
    print(write_precision_report(rows, args.out).read_text())
    return 0


def _onnx(args, names: list[str]) -> int:
    from eval.onnx_benchmark import compare_onnx, write_onnx_report

    sizes = [float(s) for s in args.sizes.split(",") if s] or [None]
    rows = []
    for b in args.batch_sizes.split(","):
        rows += compare_onnx(names, batch_size=int(b), size=sizes[0], threads=args.threads, repeats=args.repeats,
                             warmup=args.warmup)
    print(write_onnx_report(rows, args.out).read_text())
    return 0


def _profile(args, names: list[str]) -> int:
    import torch

    import zoo
    from eval.benchmark import make_input
    from eval.op_profile import profile_ops, write_profile_report

    size = next((float(s) for s in args.sizes.split(",") if s), None)
    kwargs = _parse_decode(args.decode)[0]
    rows = []
    for name in names:
        torch.manual_seed(0)
        tok = zoo.create_tokenizer(name, pretrained=args.pretrained).eval()
        x = make_input(tok, zoo.get_info(name), int(args.batch_sizes.split(",")[0]), size)
        result = profile_ops(tok, x, decode_kwargs=kwargs, threads=args.threads, warmup=args.warmup)
        rows.append({"tokenizer": name, "input": "x".join(map(str, x.shape)), **result})
    print(write_profile_report(rows, args.out).read_text())
    return 0


def _compare_dmel(args) -> int:
    import importlib.util

    from eval.benchmark import compare_dmel, write_dmel_report

    if importlib.util.find_spec("dmel") is None:
        print("--compare-dmel needs Apple's dmel package (pip install dmel)", file=sys.stderr)
        return 2
    seconds = [float(s) for s in args.sizes.split(",") if s] or [10.0, 60.0]
    rows = compare_dmel([int(b) for b in args.batch_sizes.split(",")], seconds, repeats=args.repeats,
                        warmup=args.warmup, threads=args.threads, memory=not args.no_isolate)
    print(write_dmel_report(rows, args.out).read_text())
    return 0 if all(r["ids_identical"] for r in rows) else 1


def _compare_tokenize(args) -> int:
    from eval.tokenize_speed import compare_tokenize, write_tokenize_report

    name = "titok_demo64.demo" if args.tokenizers == "*" else args.tokenizers
    batch = 32 if args.batch_sizes == "1" else int(args.batch_sizes.split(",")[-1])  # --batch-sizes default: 32
    row = compare_tokenize(name, pretrained=not args.untrained, copies=args.copies, repeats=args.repeats,
                           threads=args.threads, batch_size=batch, device=args.device)
    print(write_tokenize_report(row, args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
