"""Items/s of ``zoo tokenize`` against per-file loops of ``encode`` on the same files.

Three ways to tokenize the same folder of real photos (the offline corpus, linked ``copies``
times so that start-up costs are amortised), each giving identical ids:

- ``cli``: one ``python -m zoo encode`` process per file (what a shell loop over files does);
  measured on the first ``cli_files`` files only (it is slow);
- ``loop``: one process, the file read and encoded one at a time with the Python API
  (``tok.modality.load`` + ``tok.encode``), the tokenizer loaded once;
- ``tokenize``: :func:`zoo.tokenize.tokenize_dataset` (DataLoader readers, shape buckets, shards).

The loop and tokenize runs alternate ``repeats`` times; the medians are reported. Every method
gets the same thread budget (``threads``; the CLI processes through ``OMP_NUM_THREADS``).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

__all__ = ["photo_corpus", "compare_tokenize", "write_tokenize_report"]


def photo_corpus(root: str | os.PathLike, copies: int = 8) -> list[Path]:
    """The offline photos (mate-backgrounds JPEGs, scikit-image photos written as PNG next to
    ``root``) linked into ``copies`` folders under ``root``. Returns the linked files, sorted."""
    from PIL import Image

    from zoo.data.offline import photo_paths, skimage_photos

    root = Path(root)
    sources = root.parent / f"{root.name}_sources"
    sources.mkdir(parents=True, exist_ok=True)
    files = list(photo_paths())
    for name, arr in skimage_photos().items():
        Image.fromarray(arr).save(sources / f"{name}.png")
        files.append(sources / f"{name}.png")
    for c in range(copies):
        folder = root / f"copy{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for p in files:
            if not (folder / p.name).exists():
                (folder / p.name).symlink_to(p.resolve())
    return sorted(p for p in root.rglob("*") if p.is_file())


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished, waited-for children (DataLoader workers)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _loop(tok, paths: list[Path]) -> tuple[float, float]:
    """(items/s, CPU ms per item) of the per-file Python loop."""
    protocol = tok.modality.protocol(tok)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    for p in paths:
        x, _ = tok.modality.load(p, protocol)
        tok.encode(x[None].to(tok.device))
    return len(paths) / (time.perf_counter() - t0), (_cpu_seconds() - c0) * 1000 / len(paths)


def _tokenize(tok, name: str, root: Path, batch_size: int, workers: int | None) -> tuple[float, float]:
    """(items/s, CPU ms per item, readers included) of ``tokenize_dataset``."""
    from zoo.tokenize import tokenize_dataset

    out = Path(tempfile.mkdtemp(prefix="zoo-tokenize-bench-"))
    try:
        t0, c0 = time.perf_counter(), _cpu_seconds()
        manifest = tokenize_dataset(tok, root, out / "tokens", name=name, batch_size=batch_size, num_workers=workers,
                                    device=str(tok.device), progress=False)
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return manifest["num_inputs"] / seconds, cpu * 1000 / manifest["num_inputs"]


def _cli(name: str, pretrained: bool, paths: list[Path], threads: int | None, device: str) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else dict(os.environ)
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i, p in enumerate(paths):
            cmd = [sys.executable, "-m", "zoo", "encode", name, str(p), f"{tmp}/{i}.npy", "--device", device]
            subprocess.run(cmd + (["--pretrained"] if pretrained else []), check=True, env=env, cwd=root,
                           capture_output=True)
        return len(paths) / (time.perf_counter() - t0)


def compare_tokenize(name: str = "titok_demo64.demo", pretrained: bool = True, copies: int = 8, repeats: int = 3,
                     threads: int | None = 2, batch_size: int = 32, workers: int | None = None, device: str = "cpu",
                     cli_files: int = 8) -> dict:
    """Measure the three methods (module docstring) -> a dict of items/s, CPU ms per item (all
    processes: CPU time is what a busy machine cannot hide) and the settings."""
    import zoo

    if threads:
        torch.set_num_threads(threads)
    tok = zoo.create_tokenizer(name, pretrained=pretrained).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        paths = photo_corpus(Path(tmp) / "photos", copies)
        _loop(tok, paths[:4])  # warm-up: first-call kernel selection is not what is being compared
        loops, toks = [], []
        for _ in range(repeats):
            loops.append(_loop(tok, paths))
            toks.append(_tokenize(tok, name, Path(tmp) / "photos", batch_size, workers))
        cli = _cli(name, pretrained, paths[:cli_files], threads, device) if cli_files else None
    loop, tokenize = (statistics.median(r[0] for r in runs) for runs in (loops, toks))
    loop_cpu, tokenize_cpu = (statistics.median(r[1] for r in runs) for runs in (loops, toks))
    return {"tokenizer": name, "pretrained": pretrained, "device": device,
            "threads": threads or torch.get_num_threads(),
            "files": len(paths), "batch_size": batch_size, "workers": workers, "repeats": repeats,
            "loop_items_per_s": loop, "tokenize_items_per_s": tokenize, "cli_items_per_s": cli,
            "cli_files": cli_files, "speedup_vs_loop": tokenize / loop,
            "speedup_vs_cli": tokenize / cli if cli else None, "loop_cpu_ms_per_item": loop_cpu,
            "tokenize_cpu_ms_per_item": tokenize_cpu, "loop_runs": loops, "tokenize_runs": toks,
            "cpu": _cpu_name(), "load_average": os.getloadavg()}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def write_tokenize_report(row: dict, out_dir: str | os.PathLike) -> Path:
    """``tokenize_speed.json`` and ``tokenize_speed.md`` under ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenize_speed.json").write_text(json.dumps(row, indent=2))
    cli = f"{row['cli_items_per_s']:.2f}" if row["cli_items_per_s"] else "-"
    vs_cli = f"{row['speedup_vs_cli']:.1f}x" if row["speedup_vs_cli"] else "-"
    md = ("| tokenizer | device | threads | files | per-file CLI items/s | per-file loop items/s (CPU ms/item) | "
          "zoo tokenize items/s (CPU ms/item) | vs loop | vs CLI |\n|---|---|---|---|---|---|---|---|---|\n"
          f"| {row['tokenizer']} | {row['device']} | {row['threads']} | {row['files']} | {cli} | "
          f"{row['loop_items_per_s']:.1f} ({row['loop_cpu_ms_per_item']:.1f}) | {row['tokenize_items_per_s']:.1f} "
          f"({row['tokenize_cpu_ms_per_item']:.1f}) | {row['speedup_vs_loop']:.2f}x | {vs_cli} |\n\n"
          f"CPU: {row['cpu']}; load average at the end "
          f"{tuple(round(v, 1) for v in row['load_average'])}; "
          f"medians of {row['repeats']} alternating runs (CLI: {row['cli_files']} files, once).\n")
    path = out / "tokenize_speed.md"
    path.write_text(md)
    return path
