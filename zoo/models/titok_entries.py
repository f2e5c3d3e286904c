"""Registry entries of the TiTok family: the published TiTok, TA-TiTok and One-D-Piece tokenizers, the
zoo's packaged ``titok_demo64.demo`` and tiny untrained ones.

Published numbers are ImageNet-1k 256x256 validation rFID (50k images) as reported by the authors
(TiTok: README_TiTok.md of bytedance/1d-tokenizer; TA-TiTok: README_MaskGen.md, same repo;
One-D-Piece: README of turingmotors/One-D-Piece, with all 256 tokens). The demo entry's metrics are
described in ``zoo.models.demo_checkpoints``.
"""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .demo_checkpoints import DATA_IMAGES, demo_notes, demo_source
from .titok import TiTok

_VQGAN = {"channels": [128, 128, 256, 256, 512], "num_res_blocks": 2, "z_channels": 256}
_FILES = {"weights": "model.safetensors", "config": "config.json"}
_TITOK_PAPER = "https://arxiv.org/abs/2406.07550"
_TATITOK_PAPER = "https://arxiv.org/abs/2501.07730"
_ODP_PAPER = "https://arxiv.org/abs/2501.10064"
_UNPINNED = ("revision not pinned: no full commit hash of this repo was findable offline "
             "(the hub page shows short hash {short}); pass revision= to pin.")
_TATITOK_NOTE = (" TA-TiTok decoders also attend to CLIP ViT-L/14-336 text features: pass "
                 "decode(tokens, text_guidance=[B, 77, 768]) (the zoo does not compute them; without them the text "
                 "tokens are left out, with a warning, and quality is below the published numbers). "
                 "Published metrics were measured on ImageNet-1k val although training used DataComp.")


def _legacy(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, codebook_dim=12, codebook_size=4096, quantizer="vq",
                l2_norm=True, legacy_readout=True, decoder_head="proxy", pixel_decoder=dict(_VQGAN), **kw)


def _vq8k(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, codebook_dim=64, codebook_size=8192, quantizer="vq",
                l2_norm=False, legacy_readout=False, decoder_head="pixel", **kw)


def _vae(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, codebook_dim=16, quantizer="vae",
                legacy_readout=False, decoder_head="pixel", **kw)


_TEXT = dict(text_dim=768, text_len=77)


def _compression(kw: dict) -> str:
    n, s = kw["num_tokens"], kw.get("image_size", 256)
    if kw["quantizer"] == "vae":
        return f"{n} tokens x {kw['codebook_dim']} floats / {s}x{s}x3"
    bits = (kw["codebook_size"] - 1).bit_length()
    return f"{n} tokens x {bits} bits / {s}x{s}x3x8 bits"


def _official(*, name: str, kwargs: dict, hf_repo: str, rfid: float, paper: str, notes: str,
              revision: str | None = None, short_hash: str | None = None, converter: str = "titok") -> TokenizerInfo:
    """A published 256x256 checkpoint on the hub (apache-2.0), converted on load by ``converter``;
    ``short_hash``: the short commit hash seen on the hub page when no full ``revision`` is known."""
    note = notes + (_TATITOK_NOTE if name.startswith("tatitok") else "")
    if revision is None:
        note += " " + _UNPINNED.format(short=short_hash or "unknown")
    return TokenizerInfo(
        name=name, builder=TiTok, modality="image", family="onedpiece" if converter == "onedpiece" else "titok",
        kwargs=kwargs, input_size=(256, 256), compression=_compression(kwargs),
        source=WeightSource(hf_repo=hf_repo, revision=revision, files=dict(_FILES), converter=converter),
        license="apache-2.0", paper=paper, metrics={"rfid_in1k_val": rfid}, notes=note)


#: builder kwargs of the packaged demo, identical to its config.json (tests/test_demo.py checks it)
TITOK_DEMO64 = dict(image_size=64, enc_patch_size=8, dec_patch_size=8, enc_size=None, dec_size=None, enc_width=128,
                    enc_depth=4, enc_heads=2, dec_width=192, dec_depth=4, dec_heads=3, num_tokens=64, codebook_dim=4,
                    codebook_size=65536, quantizer="fsq", fsq_levels=[64, 16, 8, 8], l2_norm=False,
                    commitment_weight=0.25,
                    legacy_readout=False, decoder_head="pixel", pixel_decoder=None, proxy_weights=None,
                    tail_drop=True, tail_drop_prob=0.5, text_dim=0, text_len=0, kl_weight=1e-06, linear_path=True)
# tiny untrained architecture for CPU recipes and tests
_TINY = dict(image_size=64, enc_size=None, dec_size=None, enc_width=128, enc_depth=2, dec_width=128, dec_depth=2,
             num_tokens=16, codebook_dim=16, codebook_size=256, quantizer="vq", l2_norm=True, legacy_readout=False,
             decoder_head="pixel")

ENTRIES = (
    _official(name="titok_l32.in1k", kwargs=_legacy("large", "large", 32),
              hf_repo="yucornetto/tokenizer_titok_l32_imagenet",
              revision="1c9a2084c59112fd415b7ed97d4c200e864a95de",
              rfid=2.21, paper=_TITOK_PAPER,
              notes=("Legacy two-stage TiTok-L-32: 4096x12 cosine VQ, proxy-code decoder + MaskGIT-VQGAN pixel "
                     "decoder.")),
    _official(name="titok_b64.in1k", kwargs=_legacy("base", "base", 64), hf_repo="yucornetto/tokenizer_titok_b64_imagenet",
              short_hash="603747b", rfid=1.70, paper=_TITOK_PAPER, notes="Legacy two-stage TiTok-B-64."),
    _official(name="titok_s128.in1k", kwargs=_legacy("small", "small", 128),
              hf_repo="yucornetto/tokenizer_titok_s128_imagenet", rfid=1.71, paper=_TITOK_PAPER,
              notes="Legacy two-stage TiTok-S-128."),
    _official(name="titok_bl64_vq8k.in1k", kwargs=_vq8k("base", "large", 64),
              hf_repo="yucornetto/tokenizer_titok_bl64_vq8k_imagenet", short_hash="7b8e158", rfid=2.06,
              paper=_TITOK_PAPER, notes="Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    _official(name="titok_bl128_vq8k.in1k", kwargs=_vq8k("base", "large", 128),
              hf_repo="yucornetto/tokenizer_titok_bl128_vq8k_imagenet", rfid=1.49, paper=_TITOK_PAPER,
              notes="Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    _official(name="titok_sl256_vq8k.in1k", kwargs=_vq8k("small", "large", 256),
              hf_repo="yucornetto/tokenizer_titok_sl256_vq8k_imagenet", short_hash="62674d2", rfid=1.03,
              paper=_TITOK_PAPER, notes="Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    _official(name="titok_ll32_vae.in1k", kwargs=_vae("large", "large", 32),
              hf_repo="yucornetto/tokenizer_titok_ll32_vae_c16_imagenet", rfid=1.61, paper=_TITOK_PAPER,
              notes="Continuous (VAE, 16 channels): encode keeps the posterior mean in Tokens.extras['latents']."),
    _official(name="titok_bl64_vae.in1k", kwargs=_vae("base", "large", 64),
              hf_repo="yucornetto/tokenizer_titok_bl64_vae_c16_imagenet", short_hash="fd58085", rfid=1.25,
              paper=_TITOK_PAPER, notes="Continuous (VAE, 16 channels)."),
    _official(name="titok_bl128_vae.in1k", kwargs=_vae("base", "large", 128),
              hf_repo="yucornetto/tokenizer_titok_bl128_vae_c16_imagenet", short_hash="036f441", rfid=0.84,
              paper=_TITOK_PAPER, notes="Continuous (VAE, 16 channels)."),
    _official(name="tatitok_bl32_vq.dc", kwargs=_vq8k("base", "large", 32, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_bl32_vq", rfid=3.95, paper=_TATITOK_PAPER,
              notes="TA-TiTok (text-aware decoder)."),
    _official(name="tatitok_bl64_vq.dc", kwargs=_vq8k("base", "large", 64, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_bl64_vq", short_hash="d2182cc", rfid=2.43, paper=_TATITOK_PAPER,
              notes="TA-TiTok (text-aware decoder)."),
    _official(name="tatitok_bl128_vq.dc", kwargs=_vq8k("base", "large", 128, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_bl128_vq", rfid=1.53, paper=_TATITOK_PAPER,
              notes="TA-TiTok (text-aware decoder)."),
    _official(name="tatitok_bl32_vae.dc", kwargs=_vae("base", "large", 32, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_bl32_vae", rfid=1.53, paper=_TATITOK_PAPER,
              notes="TA-TiTok, continuous (VAE, 16 channels)."),
    _official(name="tatitok_bl64_vae.dc", kwargs=_vae("base", "large", 64, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_bl64_vae", short_hash="c22b343", rfid=1.47, paper=_TATITOK_PAPER,
              notes="TA-TiTok, continuous (VAE, 16 channels)."),
    _official(name="tatitok_sl128_vae.dc", kwargs=_vae("small", "large", 128, **_TEXT),
              hf_repo="turkeyju/tokenizer_tatitok_sl128_vae", rfid=0.90, paper=_TATITOK_PAPER,
              notes="TA-TiTok, continuous (VAE, 16 channels)."),
    _official(name="onedpiece_l256.in1k", kwargs=_legacy("large", "large", 256, tail_drop=True),
              hf_repo="turing-motors/One-D-Piece-L-256", rfid=1.08, paper=_ODP_PAPER, converter="onedpiece",
              notes="One-D-Piece (TiTok legacy + tail-token drop): decode(tokens, length=L) for any L in 1..256."),
    _official(name="onedpiece_b256.in1k", kwargs=_legacy("base", "base", 256, tail_drop=True),
              hf_repo="turing-motors/One-D-Piece-B-256", rfid=1.11, paper=_ODP_PAPER, converter="onedpiece",
              notes="One-D-Piece-B-256."),
    _official(name="onedpiece_s256.in1k", kwargs=_legacy("small", "small", 256, tail_drop=True),
              hf_repo="turing-motors/One-D-Piece-S-256", rfid=1.48, paper=_ODP_PAPER, converter="onedpiece",
              notes="One-D-Piece-S-256."),
    TokenizerInfo(
        name="titok_demo64.demo", builder=TiTok, modality="image", family="titok", kwargs=dict(TITOK_DEMO64),
        input_size=(64, 64), compression="64 tokens x 16 bits = 1024 bits / 64x64x3x8 bits (96x)",
        source=demo_source("titok_demo64"), license="Apache-2.0", paper=_TITOK_PAPER,
        metrics={"psnr_heldout": 21.89, "ssim_heldout": 0.532, "psnr_heldout_crops": 24.23},
        notes=demo_notes(
            "titok_demo64", "4000", DATA_IMAGES, "38 min",
            "TiTok with a pixel decoder (the single-stage variant: no proxy codes; MSE only, no perceptual/GAN "
            "loss), ViT encoder 128x4 / decoder 192x4, patch 8, FSQ levels 64,16,8,8 (65,536 codes), plus the "
            "zoo's linear transform path (`linear_path=True`, zoo/models/titok_linear_path.py: a global affine "
            "image -> latent and code -> image map, not in the published TiTok), PCA-initialised on 3000 "
            "training crops (recipes/demo/titok_init.py; the initial tokenizer scores 21.73 dB on the held-out "
            "photos), then trained end to end with One-D-Piece tail-token drop on half of the batches: "
            "decode(tokens, length=L) works for any L (held-out PSNR 17.27 / 18.26 / 19.58 / 21.89 dB at 8 / 16 / 32 / 64 tokens). 64x64 input only. "
            "(The earlier ViT-only demo, 6500 steps in two stages, reached 18.18 dB.)")),
    TokenizerInfo(
        name="titok_tiny.untrained", builder=TiTok, modality="image", family="titok", kwargs=dict(_TINY),
        input_size=(64, 64), compression=_compression(_TINY), paper=_TITOK_PAPER,
        notes="Tiny single-stage TiTok (64x64 input, pixel decoder) for CPU recipes."),
    TokenizerInfo(
        name="onedpiece_tiny.untrained", builder=TiTok, modality="image", family="onedpiece",
        kwargs=dict(_TINY, tail_drop=True), input_size=(64, 64), compression=_compression(_TINY), paper=_ODP_PAPER,
        notes="Tiny single-stage TiTok with One-D-Piece tail-token drop, for CPU recipes."),
)
register_tokenizers(ENTRIES)
