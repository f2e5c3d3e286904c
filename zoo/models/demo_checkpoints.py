"""Provenance of the zoo's own small pretrained demo checkpoints (packaged in ``zoo/weights/``).

Trained on the offline real data with the repository's trainer and the recipes in ``recipes/demo/``
(the recipe header and each entry's notes give the exact command); held-out photos / utterances
(``zoo.data.offline.photo_split`` / ``speech_split``) were never seen in training. The entries
(``titok_demo64.demo``, ``wavtokenizer_demo75.demo``, ``dmel_vocos_demo.demo``, ``mel_rvq_demo.demo``) sit
with their families' entries; their ``metrics`` are measured on those held-out items by ``eval/demo.py``
(``python -m zoo demo``) with the packaged (float16-stored) weights:

- ``psnr_heldout`` / ``ssim_heldout``: 8-bit PSNR (dB) / SSIM of the 5 held-out photos at 64x64
  (whole photo, centre crop); ``psnr_heldout_crops``: 25 closer-up 64x64 crops of them.
- ``stoi_heldout`` / ``pesq_heldout`` (wide-band) / ``pesq_nb_heldout`` (narrow-band, 8 kHz) /
  ``dnsmos_ovrl_heldout``: 6 held-out utterances (3 Dutch, 3 English; first 4 s).

A folder of ``zoo/weights/`` that is not a tokenizer entry may only hold the ``init_from`` weights
of a demo recipe (none at present).
"""
from __future__ import annotations

from ..hub import WeightSource

__all__ = ["DATA_IMAGES", "DATA_SPEECH", "demo_source", "demo_notes"]

DATA_IMAGES = ("random-scale (short side 64-160 px) 64x64 crops with flips of the 26 training photos of "
               "zoo.data.offline.photo_split(wallpapers=True) (mate-backgrounds + scikit-image + the plasma-workspace-"
               "wallpapers photographs; 5 held out)")
DATA_SPEECH = ("1 s crops of the {n} training utterances of zoo.data.offline.speech_split() (fillets-ng "
               "Dutch + English, peak-normalised; 103 held out)")


def demo_source(arch: str) -> WeightSource:
    """The packaged folder ``zoo/weights/<arch>`` (config.json + model.safetensors)."""
    return WeightSource(packaged=f"weights/{arch}", files={"weights": "model.safetensors", "config": "config.json"})


def demo_notes(arch: str, steps: int | str, data: str, minutes: str, extra: str = "") -> str:
    """The entry notes: recipe, commands, steps, data and training time of ``arch``."""
    cmd = f"OMP_NUM_THREADS=1 python scripts/train.py recipes/demo/{arch}.yaml"
    return (f"Zoo demo checkpoint (small, CPU-trained; for demos and tests, not a research model). "
            f"recipe recipes/demo/{arch}.yaml, command `{cmd}` then "
            f"`python -m zoo package {arch}=<output_dir>` (EMA weights, parameters stored as float16); "
            f"{steps} steps on {data}; trained in {minutes} on a shared 2-core CPU. {extra}").strip()
