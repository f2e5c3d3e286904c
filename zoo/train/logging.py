"""Metric logging of the main process: ``metrics.csv`` (long format: step, tag, value) and TensorBoard.

On resume, :meth:`MetricLogger.truncate` drops CSV rows written after the checkpoint step by
the interrupted run, so the CSV of a resumed run equals that of an uninterrupted one.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

__all__ = ["MetricLogger", "read_metrics"]


class MetricLogger:
    """``log(step, {tag: float})``; writes ``<output_dir>/metrics.csv`` and ``<output_dir>/tb/``."""

    def __init__(self, output_dir: str | os.PathLike, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.csv"
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # pragma: no cover - tensorboard is a listed dependency
                raise ImportError("tensorboard logging needs the 'tensorboard' package "
                                  "(pip install tensorboard) or set tensorboard=false") from e
            self._tb = SummaryWriter(str(Path(output_dir) / "tb"))

    def truncate(self, step: int) -> None:
        """Keep only rows with ``step <= step`` (called when resuming from checkpoint ``step``)."""
        if not self.enabled or not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f)]
        keep = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(keep)
        os.replace(tmp, self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled or not values:
            return
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "tag", "value"])
            for k, v in values.items():
                w.writerow([step, k, repr(float(v))])
        if self._tb is not None:
            for k, v in values.items():
                if math.isfinite(float(v)):
                    self._tb.add_scalar(k, float(v), step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` -> ``{tag: [(step, value), ...]}``."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["tag"], []).append((int(row["step"]), float(row["value"])))
    return out
