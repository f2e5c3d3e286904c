"""What a measurement ran on: CPU model and the instruction-set flags that change kernel choice."""
from __future__ import annotations

import os
import platform
import subprocess

__all__ = ["machine_info", "KERNEL_FLAGS"]

#: lscpu flags that decide which fp32 GEMM / convolution kernels oneDNN and MKL pick
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_bf16", "amx_int8")
#: environment variables that cap the instruction set the libraries use
ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def machine_info() -> dict:
    """``{"cpu": model name, "vendor", "flags": the present :data:`KERNEL_FLAGS`, "logical_cpus",
    "torch", "torch_cpu_capability", "python", "isa_env": set ISA caps}`` (lscpu on Linux)."""
    import torch

    info = _lscpu()
    flags = set(info.get("Flags", "").split())
    return {
        "cpu": info.get("Model name") or platform.processor() or "unknown",
        "vendor": info.get("Vendor ID", "unknown"),
        "flags": [f for f in KERNEL_FLAGS if f in flags],
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "isa_env": {k: os.environ[k] for k in ISA_VARS if k in os.environ},
    }
