"""Registry entries of the dMel family: Apple's official configuration, untrained Vocos vocoders to train,
and the zoo's packaged ``dmel_vocos_demo.demo``."""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .demo_checkpoints import DATA_SPEECH, demo_notes, demo_source
from .dmel import OFFICIAL_DMEL_CONFIG, DMel

_PAPER = "https://arxiv.org/abs/2407.15835"
_LICENSE = "apple-amlr (official dmel package licence; the zoo re-implementation is the zoo's)"
_COMPRESSION = "80 frames/s x 80 channels x 4 bits = 25.6 kbit/s vs 16 kHz x 16 bit (256 kbit/s)"

#: builder kwargs of the packaged demo, identical to its config.json (tests/test_demo.py checks it)
DMEL_VOCOS_DEMO = dict(OFFICIAL_DMEL_CONFIG, mel_floor=1e-10, vocoder="vocos", griffin_lim_iters=32,
                       vocos_width=192, vocos_mlp_hidden=576, vocos_depth=6, mel_weight=45.0)

ENTRIES = (
    TokenizerInfo(
        name="dmel.official", builder=DMel, modality="audio", family="dmel", kwargs=dict(OFFICIAL_DMEL_CONFIG),
        compression=_COMPRESSION, license=_LICENSE, paper=_PAPER,
        source=WeightSource(packaged="convert/dmel.py", files={}, converter="dmel"),
        notes="Apple's dMel (github.com/apple/dmel @134d9dea, PyPI dmel 1.0.1) with the official example's "
              "settings (12.5 ms stride). The tokenizer has no learned weights: its 'pretrained weights' are the "
              "official configuration, so the source is the packaged converter zoo/convert/dmel.py (no file is "
              "downloaded; pretrained=True and load_official('dmel', None, None) build the same thing). Decoding "
              "uses Griffin-Lim (untrained); Apple released no vocoder. token_shape is for 1 s."),
    TokenizerInfo(
        name="dmel_vocos.scratch", builder=DMel, modality="audio", family="dmel",
        kwargs=dict(OFFICIAL_DMEL_CONFIG, vocoder="vocos", vocos_width=512, vocos_mlp_hidden=1536, vocos_depth=8),
        compression=_COMPRESSION, license="Apache-2.0", paper=_PAPER,
        notes="official dMel tokens with an untrained Vocos vocoder (512 wide, 8 ConvNeXt blocks) to train "
              "with the recipes"),
    TokenizerInfo(
        name="dmel_vocos_tiny.scratch", builder=DMel, modality="audio", family="dmel",
        kwargs=dict(OFFICIAL_DMEL_CONFIG, vocoder="vocos", vocos_width=64, vocos_mlp_hidden=192, vocos_depth=2),
        compression=_COMPRESSION, license="Apache-2.0", paper=_PAPER,
        notes="official dMel tokens with a tiny untrained Vocos vocoder for CPU recipes and tests"),
    TokenizerInfo(
        name="dmel_vocos_demo.demo", builder=DMel, modality="audio", family="dmel", kwargs=dict(DMEL_VOCOS_DEMO),
        compression=_COMPRESSION, source=demo_source("dmel_vocos_demo"), license="Apache-2.0", paper=_PAPER,
        metrics={"stoi_heldout": 0.807, "pesq_heldout": 1.84, "pesq_nb_heldout": 2.73, "dnsmos_ovrl_heldout": 1.21},
        notes=demo_notes(
            "dmel_vocos_demo", 3000, DATA_SPEECH.format(n=1704), "32 min",
            "Official dMel tokens (no learned tokenizer weights) + a trained Vocos vocoder (192 x 6 ConvNeXt, "
            "ISTFT head), dMel mel L1 loss only (a run adding MPD + MRD discriminators scored lower held-out STOI / "
            "PESQ). The untrained Griffin-Lim decoder of dmel.official still scores higher on held-out STOI, PESQ and "
            "DNSMOS; this vocoder decodes ~2x faster.")),
)
register_tokenizers(ENTRIES)
