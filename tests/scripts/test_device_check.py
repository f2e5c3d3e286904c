"""The device check's CPU-runnable parts: both shell scripts parse, the probes measure on the CPU.
(The whole flow runs here with ``bash scripts/device_check.sh --dry-run``: minutes, not a unit test.)"""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["device_check.sh", "device_prepare.sh"])
def test_scripts_parse(script):
    bash = shutil.which("bash")
    assert bash, "bash is needed for the device scripts"
    subprocess.run([bash, "-n", str(ROOT / "scripts" / script)], check=True)


def test_device_check_rejects_unknown_options():
    out = subprocess.run(["bash", str(ROOT / "scripts" / "device_check.sh"), "--bogus"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "usage" in out.stderr


@pytest.mark.slow
def test_probes_on_cpu():
    pytest.importorskip("torch_fidelity")
    from eval.gpu_probes import fid_feature_throughput, flextok_attention

    row = fid_feature_throughput("cpu", batch_size=1, repeats=1, warmup=0)
    assert row["images_per_s"] > 0 and row["batch"] == 1 and row["device"] == "cpu"
    rows = flextok_attention("flextok_tiny.untrained", "cpu", batch_size=1, repeats=1, warmup=0)
    assert [r["backend"] for r in rows] == ["sdpa", "flex"] and rows[0]["ids_equal_to_sdpa"] == 1.0
    assert rows[1]["ids_equal_to_sdpa"] >= 0.99 and all(r["encode_ms"] > 0 for r in rows)
