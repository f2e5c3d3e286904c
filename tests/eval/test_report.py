"""report.json / report.md and the PNG figures, on real photos and speech."""
from __future__ import annotations

import json
import math

import torch

from eval.report import audio_comparison, frame_strips, recon_grid, to_jsonable, tokens_curve, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_write_report_json_and_markdown(tmp_path):
    report = {"tokenizer": "x.tiny", "modality": "image", "num_samples": 3,
              "metrics": {"psnr": {"value": torch.tensor(21.5), "protocol": {"definition": "per image | mean"}},
                          "pfid": {"value": 3.25, "label": "pFID(alpha=0.5, delta=100, seed=0)",
                                   "protocol": {"alpha": 0.5, "delta": 100, "seed": 0}},
                          "usage": {"value": {"usage": torch.tensor(0.5), "position_entropy_bits": torch.ones(3)},
                                    "protocol": {}},
                          "bad": {"value": float("nan"), "protocol": {}}},
              "skipped": {"lpips": "WeightsNotFoundError: ..."},
              "curve": {"arg": "length", "tokens": [1, 2], "psnr": [torch.tensor(10.0), 12.0]}}
    jpath, mpath = write_report(tmp_path, report)
    data = json.loads(jpath.read_text())
    assert data["metrics"]["psnr"]["value"] == 21.5 and data["metrics"]["bad"]["value"] is None
    assert data["metrics"]["usage"]["value"]["position_entropy_bits"] == [1.0, 1.0, 1.0]
    md = mpath.read_text()
    assert "| pFID(alpha=0.5, delta=100, seed=0) | 3.2500 |" in md
    assert "per image / mean" in md and "lpips" in md and "| 2 | 12.0000 |" in md
    assert to_jsonable(float("inf")) == "inf" and math.isnan(float("nan"))


def test_figures_are_pngs(tmp_path, photo_batch, speech_clip):
    recon = torch.nn.functional.avg_pool2d(photo_batch, 3, 1, 1)
    paths = [recon_grid(tmp_path / "grid.png", photo_batch, recon, title="t")]
    clips = torch.stack([photo_batch[:2]] * 4, 2)             # [2, 3, 4, 64, 64]
    paths.append(frame_strips(tmp_path / "strips.png", clips, clips.flip(-1)))
    wave = speech_clip(16000, 0.5)[0]
    paths.append(audio_comparison(tmp_path / "audio.png", wave, 0.5 * wave, 16000))
    paths.append(tokens_curve(tmp_path / "curve.png", [1, 2, 4], {"PSNR": [10.0, 12.0, float("nan")], "rFID": [9, 8, 7]}))
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 2000
