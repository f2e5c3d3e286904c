#!/usr/bin/env python
"""Train a tokenizer from a recipe: ``scripts/train.py RECIPE [key=value ...] [--resume]``.

Runs under plain ``python`` (CPU or one GPU), ``accelerate launch`` or ``torchrun``.
See ``zoo/train/cli.py`` for the options.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zoo.train.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
