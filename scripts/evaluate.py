#!/usr/bin/env python
"""Evaluate a tokenizer's reconstructions: thin CLI over :func:`eval.run.main`.

Example: ``python scripts/evaluate.py --tokenizer titok_l32.in1k --pretrained --data imagenet/val
--metrics rfid,psnr,ssim,lpips,usage --out runs/titok_eval`` (``accelerate launch
scripts/evaluate.py ...`` for several processes / GPUs).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
