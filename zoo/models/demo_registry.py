"""Registry entries of the zoo's own small pretrained demo tokenizers (packaged in ``zoo/weights/``).

Trained on the offline real data with the repository's trainer and the recipes in ``recipes/demo/``
(the recipe header and each entry's notes give the exact command); held-out photos / utterances
(``zoo.data.offline.photo_split`` / ``speech_split``) were never seen in training. ``metrics`` are
measured on those held-out items by ``eval/demo.py`` (``python -m zoo demo``) with the packaged
(float16-stored) weights:

- ``psnr_heldout`` / ``ssim_heldout``: 8-bit PSNR (dB) / SSIM of the 5 held-out photos at 64x64
  (whole photo, centre crop); ``psnr_heldout_crops``: 25 closer-up 64x64 crops of them.
- ``stoi_heldout`` / ``pesq_heldout`` (wide-band) / ``pesq_nb_heldout`` (narrow-band, 8 kHz) /
  ``dnsmos_ovrl_heldout``: 6 held-out utterances (3 Dutch, 3 English; first 4 s).

``zoo/weights/titok_demo64_stage1`` is not a tokenizer entry: it is the first training stage of
``titok_demo64.demo`` (``recipes/demo/titok_demo64_stage1.yaml``), shipped because the second
stage's recipe starts from it.
"""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import register_tokenizer
from .dmel import OFFICIAL_DMEL_CONFIG, DMel
from .titok import TiTok
from .wavtokenizer import WavTokenizer

_FILES = {"weights": "model.safetensors", "config": "config.json"}
_DATA_IMG = ("random-scale (short side 64-160 px) 64x64 crops with flips of the 26 training photos of "
             "zoo.data.offline.photo_split(wallpapers=True) (mate-backgrounds + scikit-image + the plasma-workspace-"
             "wallpapers photographs; 5 held out)")
_DATA_SPEECH = ("1 s crops of the {n} training utterances of zoo.data.offline.speech_split() (fillets-ng "
                "Dutch + English, peak-normalised; 103 held out)")


def _source(arch: str) -> WeightSource:
    return WeightSource(packaged=f"weights/{arch}", files=dict(_FILES))


def _notes(arch: str, steps: int | str, data: str, minutes: str, extra: str = "") -> str:
    cmd = f"OMP_NUM_THREADS=1 python scripts/train.py recipes/demo/{arch}.yaml"
    return (f"Zoo demo checkpoint (small, CPU-trained; for demos and tests, not a research model). "
            f"recipe recipes/demo/{arch}.yaml, command `{cmd}` then "
            f"`python -m zoo package {arch}=<output_dir>` (EMA weights, parameters stored as float16); "
            f"{steps} steps on {data}; trained in {minutes} on a shared 2-core CPU. {extra}").strip()


#: builder kwargs, identical to the packaged config.json files (tests/test_demo.py checks it)
TITOK_DEMO64 = dict(image_size=64, enc_patch_size=8, dec_patch_size=8, enc_size=None, dec_size=None, enc_width=128,
                    enc_depth=4, enc_heads=2, dec_width=192, dec_depth=4, dec_heads=3, num_tokens=64, token_size=6,
                    codebook_size=64000, quantizer="fsq", fsq_levels=[8, 8, 8, 5, 5, 5], l2_norm=False, beta=0.25,
                    legacy_readout=False, decoder_head="pixel", pixel_decoder=None, proxy_weights=None,
                    tail_drop=True, tail_drop_prob=0.5, text_dim=0, text_len=0, kl_weight=1e-06)
WAVTOKENIZER_DEMO75 = dict(ratios=[8, 5, 4, 2], codebook_size=1024, codebook_dim=16, n_filters=16, lstm_layers=1,
                           dim=192, intermediate_dim=576, num_layers=6, num_bandwidths=None, n_fft=1280,
                           hop_length=320, padding="same", sample_rate=24000, kmeans_iters=20, decay=0.99,
                           threshold_ema_dead_code=0.1, commitment_weight=10.0, mel_weight=45.0,
                           pos_net_dropout=0.1, pos_net=False)
DMEL_VOCOS_DEMO = dict(OFFICIAL_DMEL_CONFIG, mel_floor=1e-10, vocoder="vocos", griffin_lim_iters=32, vocos_dim=192,
                       vocos_intermediate_dim=576, vocos_layers=6, mel_weight=45.0)


# measured by eval/demo.py on the packaged weights (see the module docstring)
_METRICS = {
    "titok_demo64": {"psnr_heldout": 18.18, "ssim_heldout": 0.377, "psnr_heldout_crops": 20.08},
    "wavtokenizer_demo75": {"stoi_heldout": 0.546, "pesq_heldout": 1.14, "pesq_nb_heldout": 1.36,
                            "dnsmos_ovrl_heldout": 1.58},
    "dmel_vocos_demo": {"stoi_heldout": 0.807, "pesq_heldout": 1.84, "pesq_nb_heldout": 2.73, "dnsmos_ovrl_heldout": 1.21},
}
_STEPS = {"titok_demo64": "4000 (stage 1) + 2500 (stage 2)", "wavtokenizer_demo75": 8000, "dmel_vocos_demo": 3000}
_MINUTES = {"titok_demo64": "55 + 31 min", "wavtokenizer_demo75": "83 min", "dmel_vocos_demo": "32 min"}

register_tokenizer(
    "titok_demo64.demo", TiTok, modality="image", family="titok", kwargs=dict(TITOK_DEMO64),
    input_size=(64, 64), token_shape=(64,), codebook_size=64000,
    compression="64 tokens x 15.97 bits = 1022 bits / 64x64x3x8 bits (96x)",
    source=_source("titok_demo64"), license="Apache-2.0", paper="https://arxiv.org/abs/2406.07550",
    metrics=dict(_METRICS["titok_demo64"]),
    notes=_notes("titok_demo64", _STEPS["titok_demo64"], _DATA_IMG, _MINUTES["titok_demo64"],
                 "TiTok with a pixel decoder (the single-stage variant: no proxy codes; MSE only, no perceptual/GAN "
                 "loss), ViT encoder 128x4 / "
                 "decoder 192x4, patch 8, FSQ levels 8,8,8,5,5,5 (64,000 codes), cosine LR + EMA. 64x64 input "
                 "only. Two stages: `OMP_NUM_THREADS=1 python scripts/train.py recipes/demo/titok_demo64_stage1.yaml` "
                 "(4000 steps on the 15 mate-backgrounds + scikit-image training photos, without tail drop: 17.75 dB; "
                 "its weights ship in zoo/weights/titok_demo64_stage1) initialises stage 2, which adds the wallpaper "
                 "photos and One-D-Piece tail-token drop on half of the batches: decode(tokens, length=L) works for "
                 "any L (held-out PSNR 16.90 / 17.41 / 17.98 / 18.18 dB at 8 / 16 / 32 / 64 tokens). "
                 "(A first version with a 1024 x 12 VQ codebook and dead-code restarts reached 17.12 dB.)"))
register_tokenizer(
    "wavtokenizer_demo75.demo", WavTokenizer, modality="audio", family="wavtokenizer",
    kwargs=dict(WAVTOKENIZER_DEMO75), sample_rate=24000, token_shape=(75,), codebook_size=1024,
    compression="75 tokens/s x 10 bits = 750 bit/s vs 24 kHz x 16 bit (384 kbit/s)",
    source=_source("wavtokenizer_demo75"), license="Apache-2.0", paper="https://arxiv.org/abs/2408.16532",
    metrics=dict(_METRICS["wavtokenizer_demo75"]),
    notes=_notes("wavtokenizer_demo75", _STEPS["wavtokenizer_demo75"], _DATA_SPEECH.format(n=1704),
                 _MINUTES["wavtokenizer_demo75"],
                 "Small WavTokenizer (SEANet 16 filters + 1 LSTM, 16-d EMA codebook of 1024, Vocos 192 x 6 without "
                 "attention pos-net), mel L1 + commitment (weight 10) losses, no GAN, cosine LR + EMA; encoder "
                 "output standardised at init (LSUV, zoo.train.lsuv via recipes/demo/wt_init.py). (A first version "
                 "trained 3000 steps at a constant LR reached STOI 0.492.)"))
register_tokenizer(
    "dmel_vocos_demo.demo", DMel, modality="audio", family="dmel", kwargs=dict(DMEL_VOCOS_DEMO),
    sample_rate=16000, token_shape=(81, 80), codebook_size=(16,) * 80,
    compression="80 frames/s x 80 channels x 4 bits = 25.6 kbit/s vs 16 kHz x 16 bit (256 kbit/s)",
    source=_source("dmel_vocos_demo"), license="Apache-2.0", paper="https://arxiv.org/abs/2407.15835",
    metrics=dict(_METRICS["dmel_vocos_demo"]),
    notes=_notes("dmel_vocos_demo", _STEPS["dmel_vocos_demo"], _DATA_SPEECH.format(n=1704),
                 _MINUTES["dmel_vocos_demo"],
                 "Official dMel tokens (no learned tokenizer weights) + a trained Vocos vocoder (192 x 6 ConvNeXt, "
                 "ISTFT head), dMel mel L1 loss only (a run adding MPD + MRD discriminators scored lower held-out STOI / "
                 "PESQ). The untrained Griffin-Lim decoder of dmel.official still scores higher on held-out STOI, PESQ and "
                 "DNSMOS; this vocoder decodes ~2x faster."))
