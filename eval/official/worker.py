"""One side (official or zoo) of a comparison, served from its own long-lived process.

The parent (:mod:`eval.official.compare`) starts a :class:`Worker` per side and allocator setting;
the child builds its side once (:func:`serve`), then answers commands over a pipe:
``("run",)`` -> one timed call ``{"wall_ms", "cpu_ms", "minor_faults"}`` (page faults: what glibc's
default allocator costs); ``("outputs", path_or_None)`` -> the
side's outputs saved to a safetensors file (the zoo side also decodes the official ids read from
``path``); ``("stop",)`` -> memory figures, then exit. Every call runs under
``torch.inference_mode()`` on both sides.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import traceback
from pathlib import Path

__all__ = ["Worker", "WorkerError", "serve", "allocator_probe"]


class WorkerError(RuntimeError):
    """A side failed to build or run (the message carries the child's traceback)."""


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def allocator_probe(mb: int = 64, repeats: int = 4) -> dict:
    """Minor page faults per ``mb`` MiB ``malloc``, filled and freed ``repeats`` times after a first
    one (glibc's own malloc / free through ctypes): about ``mb * 256`` when glibc unmaps the block on
    every free (its default for blocks above 32 MiB), near 0 when the raised thresholds keep it in the
    heap. It shows that the setting reached the process; the kernel may still reclaim idle heap pages
    (e.g. DAMON), so PyTorch's own temporaries can fault under either setting."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return {"alloc_mb": mb, "error": "libc not found"}
    libc = ctypes.CDLL(name)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    n = mb << 20

    def once() -> None:
        p = libc.malloc(n)
        if not p:
            raise MemoryError(f"malloc({n}) failed")
        ctypes.memset(p, 1, n)
        libc.free(p)

    once()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        once()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / repeats
    pages = n // 4096
    return {"alloc_mb": mb, "faults_per_alloc": faults, "pages_per_alloc": pages,
            "blocks_kept_in_heap": faults < 0.25 * pages}


def serve(conn, spec: dict) -> None:
    """Child entry point: build ``spec['side']`` of ``spec['family']``, then answer commands."""
    import torch

    from . import get_family
    from .checkout import official_on_path

    try:
        torch.set_num_threads(int(spec["threads"]))
        family = get_family(spec["family"])
        workdir = Path(spec["workdir"])
        t0 = time.perf_counter()
        with torch.inference_mode():
            if spec["side"] == "official":
                root = Path(spec["src"]) if spec["src"] else None
                official_on_path(root)
                runner = family.build_official(spec["preset"], workdir, int(spec["seed"]), spec["options"], root)
            else:
                runner = family.build_zoo(spec["preset"], workdir, spec["options"], int(spec["seed"]))
        info = {"build_s": time.perf_counter() - t0, "rss_after_build_mb": _status_mb("VmRSS"),
                "threads": torch.get_num_threads(), "allocator_probe": allocator_probe()}
        conn.send(("ready", info))
    except BaseException:  # reported to the parent, which raises it with the traceback
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        cmd = conn.recv()
        try:
            if cmd[0] == "run":
                with torch.inference_mode():
                    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    c0, t0 = time.process_time(), time.perf_counter()
                    runner.run()
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
                conn.send(("ok", {"wall_ms": wall * 1000, "cpu_ms": cpu * 1000, "minor_faults": faults}))
            elif cmd[0] == "outputs":
                from safetensors.torch import load_file, save_file

                other = load_file(cmd[1]) if cmd[1] else None
                with torch.inference_mode():
                    out = runner.outputs(other)
                path = workdir / f"{spec['side']}_outputs.safetensors"
                save_file({k: v.detach().contiguous() for k, v in out.items()}, str(path))
                conn.send(("ok", str(path)))
            elif cmd[0] == "stop":
                conn.send(("ok", {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
                return
            else:
                conn.send(("error", f"unknown command {cmd[0]!r}"))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


class Worker:
    """A spawned child process running :func:`serve` with the environment ``env``.

    glibc reads its allocator variables once, at process start, so the child gets ``env`` as its
    whole environment (spawn starts a fresh interpreter with the parent's ``os.environ``, which is
    swapped for the duration of ``start``).
    """

    def __init__(self, spec: dict, env: dict[str, str]):
        self.spec = spec
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, spec), daemon=True)
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(env)
            self.proc.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        child.close()
        self.info = self._reply("build")

    def _reply(self, what: str):
        try:
            status, payload = self.conn.recv()
        except EOFError:
            self.proc.join(5)
            raise WorkerError(f"{self.spec['side']} worker died during {what} (exit code {self.proc.exitcode})") from None
        if status == "error":
            self.close()
            raise WorkerError(f"{self.spec['side']} side of {self.spec['family']} failed during {what}:\n{payload}")
        return payload

    def call(self, *cmd):
        self.conn.send(cmd)
        return self._reply(cmd[0])

    def stop(self) -> dict:
        out = self.call("stop")
        self.proc.join(30)
        return out

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
