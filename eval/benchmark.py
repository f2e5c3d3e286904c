"""Speed and memory of encode / decode for registered tokenizers.

Each case (tokenizer, batch size, input size, dtype) runs in a fresh spawned process so that
the peak resident memory (CPU: ``ru_maxrss``; CUDA: ``max_memory_allocated``) belongs to that
case alone. Times are medians over ``repeats`` runs after ``warmup`` runs, under
``torch.inference_mode()``, with CUDA synchronisation around each run.
"""
from __future__ import annotations

import inspect
import json
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

__all__ = ["Case", "Result", "run_case", "benchmark", "time_call", "peak_memory_mb", "write_report",
           "compare_dmel", "write_dmel_report"]


@dataclass
class Case:
    """One measurement. size: image side (px), audio seconds, or video frames."""

    name: str
    batch_size: int = 1
    size: float | None = None
    device: str = "cpu"
    dtype: str = "fp32"            # fp32 | bf16 | fp16 (autocast)
    compile: bool = False
    repeats: int = 5
    warmup: int = 2
    decode_kwargs: dict = field(default_factory=dict)   # e.g. {"k": 64, "steps": 8}
    threads: int | None = None


@dataclass
class Result:
    case: Case
    encode_ms: float
    decode_ms: float
    items_per_s: float
    real_time_factor: float | None   # audio / video: processing seconds per signal second
    peak_mem_mb: float
    baseline_mem_mb: float           # resident memory before the model was built (CPU), 0 on CUDA
    params_m: float
    num_tokens: int
    input_shape: tuple
    onednn_cache: str | None = None  # ONEDNN_PRIMITIVE_CACHE_CAPACITY of the measuring process (None: default)


def time_call(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time (ms) of ``fn()``; synchronises CUDA around each call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak, else the resident-set high-water mark."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    # ru_maxrss is the kernel's high-water mark, synced from per-thread RSS counters only every few
    # dozen page faults: it can trail the current RSS by some pages, so take the larger of the two
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current_memory_mb())  # KiB on Linux


def current_memory_mb() -> float:
    """Resident memory of this process now (Linux ``/proc/self/statm``), in MiB."""
    import os

    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_input(tok, info, batch_size: int, size: float | None) -> torch.Tensor:
    """Real data at the requested size: a photo, a speech clip (looped), or a photo-pan clip."""
    from zoo.data.offline import load_photo, load_speech, speech_paths

    if tok.modality == "image":
        side = int(size or (info.input_size or (256,))[-1])
        return load_photo("astronaut", side)[None].repeat(batch_size, 1, 1, 1)
    if tok.modality == "audio":
        seconds = float(size or 1.0)
        n = int(seconds * tok.sample_rate)
        clip = load_speech(speech_paths("alsa")[1], tok.sample_rate)
        clip = clip.repeat(n // clip.numel() + 1)[:n]
        return clip[None].repeat(batch_size, 1)
    t, h, w = info.input_size or (16, 128, 128)
    t = int(size or t)
    photo = load_photo("coffee", (h + 2 * t, w + 2 * t))
    clip = torch.stack([photo[:, i:i + h, 2 * i:2 * i + w] for i in range(t)], dim=1)
    return clip[None].repeat(batch_size, 1, 1, 1, 1)


def _signal_seconds(tok, x: torch.Tensor) -> float | None:
    if tok.modality == "audio":
        return x.shape[-1] / tok.sample_rate
    if tok.modality == "video":
        return x.shape[2] / 8.0  # clips are taken as 8 fps
    return None


def run_case(case: Case) -> Result:
    """Measure one case in this process (see :func:`benchmark` for process isolation)."""
    import zoo

    if case.threads:
        torch.set_num_threads(case.threads)
    device = torch.device(case.device)
    baseline = 0.0 if device.type == "cuda" else current_memory_mb()
    info = zoo.get_info(case.name)
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(case.name, pretrained=False).to(device).eval()
    params = sum(p.numel() for p in tok.parameters()) / 1e6
    x = make_input(tok, info, case.batch_size, case.size).to(device)
    if case.compile:
        tok._encode = torch.compile(tok._encode)
        tok._decode = torch.compile(tok._decode)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[case.dtype]
    decode_kwargs = dict(case.decode_kwargs)
    if "generator" in inspect.signature(tok._decode).parameters:
        decode_kwargs.setdefault("generator", torch.Generator(device).manual_seed(0))

    def autocast():
        return torch.autocast(device.type, dtype=amp, enabled=amp is not None)

    with autocast():
        tokens = tok.encode(x)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def enc():
        with autocast():
            tok.encode(x)

    def dec():
        with autocast():
            tok.decode(tokens, **decode_kwargs)

    enc_ms = time_call(enc, case.repeats, case.warmup, device)
    dec_ms = time_call(dec, case.repeats, case.warmup, device)
    seconds = _signal_seconds(tok, x)
    total_s = (enc_ms + dec_ms) / 1000
    rtf = total_s / (seconds * case.batch_size) if seconds else None
    return Result(case, enc_ms, dec_ms, case.batch_size / total_s, rtf, peak_memory_mb(device), baseline, params,
                  int(tokens.ids[0].numel()), tuple(x.shape), os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"))


def _worker(case: Case, queue) -> None:
    try:
        queue.put(("ok", asdict(run_case(case))))
    except Exception as e:  # reported, not hidden: the parent prints and records it
        queue.put(("error", f"{type(e).__name__}: {e}"))


def benchmark(cases: list[Case], isolate: bool = True, progress: bool = True) -> list[dict]:
    """Run ``cases``; each in a fresh spawned process when ``isolate`` (true peak memory)."""
    from tqdm import tqdm

    out = []
    ctx = mp.get_context("spawn")
    for case in tqdm(cases, desc="benchmark", disable=not progress):
        if not isolate:
            out.append(asdict(run_case(case)))
            continue
        queue = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(case, queue))
        proc.start()
        status, payload = queue.get()
        proc.join()
        if status == "error":
            out.append({"case": asdict(case), "error": payload})
        else:
            out.append(payload)
    return out


def write_report(results: list[dict], out_dir: str | Path) -> Path:
    """``results.json``, ``results.md`` (a table) and ``cost.png`` (time vs input size)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    lines = ["| tokenizer | device | dtype | batch | size | tokens | encode ms | decode ms | items/s | RTF | "
             "peak MB (baseline) | params M |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["case"]
        if "error" in r:
            lines.append(f"| {c['name']} | {c['device']} | {c['dtype']} | {c['batch_size']} | {c['size']} | "
                         f"error: {r['error'][:60]} |||||||")
            continue
        rtf = "-" if r["real_time_factor"] is None else f"{r['real_time_factor']:.3f}"
        extra = f" {c['decode_kwargs']}" if c["decode_kwargs"] else ""
        lines.append(f"| {c['name']}{extra} | {c['device']} | {c['dtype']}{' +compile' if c['compile'] else ''} | "
                     f"{c['batch_size']} | {c['size']} | {r['num_tokens']} | {r['encode_ms']:.1f} | "
                     f"{r['decode_ms']:.1f} | {r['items_per_s']:.2f} | {rtf} | {r['peak_mem_mb']:.0f} "
                     f"({r['baseline_mem_mb']:.0f}) | "
                     f"{r['params_m']:.1f} |")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    _plot(results, out_dir / "cost.png")
    return out_dir


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        if "error" in r:
            continue
        c = r["case"]
        x = c["decode_kwargs"].get("k") or c["decode_kwargs"].get("length") or c["size"] or r["num_tokens"]
        label = f"{c['name']} b{c['batch_size']} {c['dtype']}"
        series.setdefault(label, []).append((float(x), r["encode_ms"] + r["decode_ms"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xlabel("input size (px / s / frames) or tokens")
    ax.set_ylabel("encode + decode (ms)")
    ax.set_title("Cost against input size")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- dMel vs the dmel package
def _official_dmel():
    """Apple's ``dmel`` package (PyPI) with the official example's settings (``run_example.py``)."""
    import dmel

    logmel = dmel.LogMelFbank(sampling_freq=16000, n_fft=1024, frame_size_ms=50, frame_stride_ms=12.5,
                              n_filterbank=80, low_freq=80, high_freq=7600)
    return dmel.DiscretizedLogMelFbank(logmelfbank=logmel, n_bits=4, quantize_min_value=-7, quantize_max_value=2)


def _dmel_pair():
    """(official callable, zoo callable): ``[B, T]`` 16 kHz audio -> ids ``[B, F + 2, 80]`` with bos / eos."""
    import zoo

    ref = _official_dmel()
    tok = zoo.load_official("dmel", None, None).eval()

    def lengths(x):
        return torch.full((x.shape[0],), x.shape[-1], dtype=torch.long)

    return (lambda x: ref(x, lengths(x))[0]), (lambda x: tok.encode(x, bos_eos=True, lengths=lengths(x)).ids)


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to the current RSS (Linux); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _dmel_peak_worker(side: str, batch: int, seconds: float, threads: int | None, queue) -> None:
    """Peak extra resident memory (MiB) of one tokenisation, in a fresh process."""
    try:
        if threads:
            torch.set_num_threads(threads)
        official, ours = _dmel_pair()
        fn = official if side == "official" else ours
        x = _dmel_input(batch, seconds)
        with torch.inference_mode():
            fn(x[:, :16000])  # first-call allocations (plans, windows) are not per-input memory
        import gc

        gc.collect()
        before = _status_mb("VmRSS")
        if not _reset_peak_rss():
            queue.put(("ok", float("nan")))
            return
        with torch.inference_mode():
            fn(x)
        queue.put(("ok", _status_mb("VmHWM") - before))
    except Exception as e:  # reported by the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


def _dmel_input(batch: int, seconds: float) -> torch.Tensor:
    from zoo.data.offline import load_speech, speech_paths

    clip = load_speech(speech_paths("alsa")[1], 16000)
    n = int(seconds * 16000)
    clip = clip.repeat(n // clip.numel() + 1)[:n]
    return clip[None].repeat(batch, 1).contiguous()


def compare_dmel(batch_sizes=(1, 8), seconds=(10.0, 60.0), repeats: int = 30, warmup: int = 2,
                 threads: int | None = None, memory: bool = True, block: int = 5) -> list[dict]:
    """The zoo dMel tokenizer against the ``dmel`` package on the same real speech.

    For each (batch, seconds): checks that the ids (with bos / eos, the package's output) are
    identical, times both interleaved in blocks of ``block`` calls (official, zoo, zoo, official, ...
    so CPU contention hits both alike, each block after one untimed call so that neither side pays
    for the caches the other one evicted; medians of about ``repeats`` calls after ``warmup``, as wall
    time and as process CPU time, which other processes on a shared machine disturb far less), and,
    with ``memory``, measures the peak
    extra resident memory of one call of each in a fresh spawned process.
    Raises ImportError when the ``dmel`` package is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("dmel") is None:
        raise ImportError("compare_dmel needs Apple's dmel package: pip install dmel")
    if threads:
        torch.set_num_threads(threads)
    official, ours = _dmel_pair()
    ctx = mp.get_context("spawn")
    out = []
    for b in batch_sizes:
        for sec in seconds:
            x = _dmel_input(int(b), float(sec))
            with torch.inference_mode():
                ref_ids, our_ids = official(x), ours(x)
                for _ in range(warmup):
                    official(x), ours(x)
                times = {"official": [], "zoo": []}
                cpu = {"official": [], "zoo": []}
                for i in range(-(-repeats // block)):
                    order = (("official", official), ("zoo", ours))
                    for name, fn in (order if i % 2 == 0 else order[::-1]):
                        fn(x)  # the other implementation just evicted the caches: re-warm, untimed
                        for _ in range(block):
                            c0, t0 = time.process_time(), time.perf_counter()
                            fn(x)
                            times[name].append((time.perf_counter() - t0) * 1000)
                            cpu[name].append((time.process_time() - c0) * 1000)
            row = {"tokenizer": "dmel.official", "batch": int(b), "seconds": float(sec),
                   "threads": torch.get_num_threads(),
                   "official_ms": statistics.median(times["official"]), "zoo_ms": statistics.median(times["zoo"]),
                   "official_cpu_ms": statistics.median(cpu["official"]), "zoo_cpu_ms": statistics.median(cpu["zoo"]),
                   "ids_identical": bool(ref_ids.shape == our_ids.shape and torch.equal(ref_ids, our_ids))}
            row["speedup"] = row["official_ms"] / row["zoo_ms"]
            row["cpu_speedup"] = row["official_cpu_ms"] / row["zoo_cpu_ms"]
            if memory:
                for side in ("official", "zoo"):
                    queue = ctx.Queue()
                    proc = ctx.Process(target=_dmel_peak_worker, args=(side, int(b), float(sec), threads, queue))
                    proc.start()
                    status, value = queue.get()
                    proc.join()
                    row[f"{side}_peak_mb"] = value if status == "ok" else float("nan")
                    if status != "ok":
                        row[f"{side}_peak_error"] = value
            out.append(row)
    return out


def write_dmel_report(rows: list[dict], out_dir: str | Path) -> Path:
    """``dmel_compare.json`` and ``dmel_compare.md`` (a table) in ``out_dir``; returns the .md path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dmel_compare.json").write_text(json.dumps(rows, indent=2))
    lines = ["| tokenizer | batch | audio s | threads | dmel package ms | zoo ms | speed-up | package CPU ms | zoo CPU ms | "
             "CPU speed-up | package peak MB | zoo peak MB | ids identical |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peak = [f"{r[k]:.0f}" if isinstance(r.get(k), float) and r[k] == r[k] else "-"
                for k in ("official_peak_mb", "zoo_peak_mb")]
        lines.append(f"| {r['tokenizer']} | {r['batch']} | {r['seconds']:g} | {r['threads']} | {r['official_ms']:.1f} | "
                     f"{r['zoo_ms']:.1f} | {r['speedup']:.2f}x | {r['official_cpu_ms']:.1f} | {r['zoo_cpu_ms']:.1f} | "
                     f"{r['cpu_speedup']:.2f}x | {peak[0]} | {peak[1]} | "
                     f"{'yes' if r['ids_identical'] else 'NO'} |")
    path = out_dir / "dmel_compare.md"
    path.write_text("\n".join(lines) + "\n")
    return path
