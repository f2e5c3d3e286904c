"""Comparison results (JSON, see :func:`eval.official.compare.compare`) -> README markdown rows."""
from __future__ import annotations

__all__ = ["machine_line", "render_rows", "render_markdown", "speedup_text", "README_BEGIN", "README_END",
           "replace_readme_block"]

#: markers of the README block rendered from saved results
README_BEGIN = "<!-- official-comparison:begin (scripts/compare_official.py --render ... --write-readme) -->"
README_END = "<!-- official-comparison:end -->"

_HEADER = ("| tokenizer | operation | batch | input | official ms (default / raised malloc) | "
           "zoo ms (default / raised malloc) | speed-up, both settings | outputs |")
_RULE = "|---|---|---|---|---|---|---|---|"


def machine_line(result: dict) -> str:
    """``CPU (flags), torch X, N thread(s)``: where and how a result was measured."""
    m = result["machine"]
    flags = ", ".join(m["flags"]) or "no AVX2"
    caps = "".join(f", {k}={v}" for k, v in m.get("isa_env", {}).items())
    return (f"{m['cpu']} ({m['vendor']}; {flags}{caps}), torch {m['torch']}, {result['threads']} thread"
            f"{'s' if result['threads'] != 1 else ''}")


def _ms(result: dict, side: str) -> str:
    def fmt(ms: float) -> str:
        return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"

    return " / ".join(fmt(result["settings"][s][side]["wall_ms"]) for s in result["settings"])


def speedup_text(result: dict) -> str:
    """``**1.42x** (1.45x / 1.42x); CPU time 1.44x / 1.40x``: the smaller of the allocator settings'
    wall-time speed-ups (bold when the zoo is faster under all of them), then each setting's in
    order; ``none`` when the zoo is not faster under every setting. The process CPU-time ratios
    follow (what other processes on a shared machine disturb least)."""
    s = result["speedup"]
    each = " / ".join(f"{v['wall']:.2f}x" for v in s["by_setting"].values())
    cpu = "; CPU time " + " / ".join(f"{v['cpu']:.2f}x" for v in s["by_setting"].values())
    if len(s["by_setting"]) < 2:
        return f"{s['min_wall']:.2f}x (one allocator setting only: not counted){cpu}"
    if s["min_wall"] <= 1.0:
        return f"none ({each}){cpu}"
    return f"**{s['min_wall']:.2f}x** ({each}){cpu}"


def render_rows(results: list[dict]) -> list[str]:
    """One table row per result (header and rule not included)."""
    rows = []
    for r in results:
        d = r["description"]
        check = r.get("check", {})
        outputs = check.get("summary", "not checked")
        if check and not check.get("ok", False):
            outputs = f"FAILED: {outputs}"
        rows.append(f"| {d['name']} | {d['operation']} | {d['batch']} | {d['input']} | {_ms(r, 'official')} | "
                    f"{_ms(r, 'zoo')} | {speedup_text(r)} | {outputs} |")
    return rows


def render_markdown(results: list[dict]) -> str:
    """The README block: where it was measured (one line per distinct machine), the protocol, the table."""
    if not results:
        raise ValueError("no results to render")
    machines = []
    for r in results:
        line = machine_line(r)
        if line not in machines:
            machines.append(line)
    protocols: dict[tuple[int, int], list[str]] = {}
    for r in results:
        names = protocols.setdefault((r["rounds"], r["warmup"]), [])
        if r["description"]["name"] not in names:
            names.append(r["description"]["name"])
    dates = sorted({r["date"][:10] for r in results})
    head = [f"Measured on {m}." for m in machines]
    parts = [f"median of {n} interleaved calls per side after {w} warm-up{'s' if w != 1 else ''}"
             + (f" ({', '.join(names)})" if len(protocols) > 1 else "")
             for (n, w), names in sorted(protocols.items(), reverse=True)]
    head.append("Protocol: " + "; ".join(parts) + ", under glibc's default allocator and with "
                f"MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ raised ({', '.join(dates)}).")
    return "\n".join(head + ["", _HEADER, _RULE] + render_rows(results)) + "\n"


def replace_readme_block(readme: str, block: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END` replaced by ``block``."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no comparison block: add the lines\n{README_BEGIN}\n{README_END}")
    return readme[:start + len(README_BEGIN)] + "\n" + block + readme[end:]
