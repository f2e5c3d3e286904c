"""Registry entries of the published TiTok, TA-TiTok and One-D-Piece tokenizers (+ tiny untrained ones).

Published numbers are ImageNet-1k 256x256 validation rFID (50k images) as reported by the authors
(TiTok: README_TiTok.md of bytedance/1d-tokenizer; TA-TiTok: README_MaskGen.md, same repo;
One-D-Piece: README of turingmotors/One-D-Piece, with all 256 tokens).
"""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import register_tokenizer
from .titok import TiTok

_VQGAN = {"channels": [128, 128, 256, 256, 512], "num_res_blocks": 2, "z_channels": 256}
_FILES = {"weights": "model.safetensors", "config": "config.json"}
_TITOK_PAPER = "https://arxiv.org/abs/2406.07550"
_TATITOK_PAPER = "https://arxiv.org/abs/2501.07730"
_ODP_PAPER = "https://arxiv.org/abs/2501.10064"
_UNPINNED = ("revision not pinned: no full commit hash of this repo was findable offline "
             "(the hub page shows short hash {short}); pass revision= to pin.")


def _legacy(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, token_size=12, codebook_size=4096, quantizer="vq",
                l2_norm=True, legacy_readout=True, decoder_head="proxy", pixel_decoder=dict(_VQGAN), **kw)


def _vq8k(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, token_size=64, codebook_size=8192, quantizer="vq",
                l2_norm=False, legacy_readout=False, decoder_head="pixel", **kw)


def _vae(enc: str, dec: str, n: int, **kw) -> dict:
    return dict(enc_size=enc, dec_size=dec, num_tokens=n, token_size=16, quantizer="vae",
                legacy_readout=False, decoder_head="pixel", **kw)


_TEXT = dict(text_dim=768, text_len=77)

# name, kwargs, hf repo, revision (full hash or None), short hash seen, rFID, licence, paper, converter, notes
_ENTRIES = [
    ("titok_l32.in1k", _legacy("large", "large", 32), "yucornetto/tokenizer_titok_l32_imagenet",
     "1c9a2084c59112fd415b7ed97d4c200e864a95de", None, 2.21, "apache-2.0", _TITOK_PAPER, "titok",
     "Legacy two-stage TiTok-L-32: 4096x12 cosine VQ, proxy-code decoder + MaskGIT-VQGAN pixel decoder."),
    ("titok_b64.in1k", _legacy("base", "base", 64), "yucornetto/tokenizer_titok_b64_imagenet",
     None, "603747b", 1.70, "apache-2.0", _TITOK_PAPER, "titok", "Legacy two-stage TiTok-B-64."),
    ("titok_s128.in1k", _legacy("small", "small", 128), "yucornetto/tokenizer_titok_s128_imagenet",
     None, None, 1.71, "apache-2.0", _TITOK_PAPER, "titok", "Legacy two-stage TiTok-S-128."),
    ("titok_bl64_vq8k.in1k", _vq8k("base", "large", 64), "yucornetto/tokenizer_titok_bl64_vq8k_imagenet",
     None, "7b8e158", 2.06, "apache-2.0", _TITOK_PAPER, "titok", "Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    ("titok_bl128_vq8k.in1k", _vq8k("base", "large", 128), "yucornetto/tokenizer_titok_bl128_vq8k_imagenet",
     None, None, 1.49, "apache-2.0", _TITOK_PAPER, "titok", "Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    ("titok_sl256_vq8k.in1k", _vq8k("small", "large", 256), "yucornetto/tokenizer_titok_sl256_vq8k_imagenet",
     None, "62674d2", 1.03, "apache-2.0", _TITOK_PAPER, "titok", "Single-stage TiTok, 8192x64 VQ, pixel decoder."),
    ("titok_ll32_vae.in1k", _vae("large", "large", 32), "yucornetto/tokenizer_titok_ll32_vae_c16_imagenet",
     None, None, 1.61, "apache-2.0", _TITOK_PAPER, "titok",
     "Continuous (VAE, 16 channels): encode keeps the posterior mean in Tokens.extras['latents']."),
    ("titok_bl64_vae.in1k", _vae("base", "large", 64), "yucornetto/tokenizer_titok_bl64_vae_c16_imagenet",
     None, "fd58085", 1.25, "apache-2.0", _TITOK_PAPER, "titok", "Continuous (VAE, 16 channels)."),
    ("titok_bl128_vae.in1k", _vae("base", "large", 128), "yucornetto/tokenizer_titok_bl128_vae_c16_imagenet",
     None, "036f441", 0.84, "apache-2.0", _TITOK_PAPER, "titok", "Continuous (VAE, 16 channels)."),
    ("tatitok_bl32_vq.dc", _vq8k("base", "large", 32, **_TEXT), "turkeyju/tokenizer_tatitok_bl32_vq",
     None, None, 3.95, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok (text-aware decoder)."),
    ("tatitok_bl64_vq.dc", _vq8k("base", "large", 64, **_TEXT), "turkeyju/tokenizer_tatitok_bl64_vq",
     None, "d2182cc", 2.43, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok (text-aware decoder)."),
    ("tatitok_bl128_vq.dc", _vq8k("base", "large", 128, **_TEXT), "turkeyju/tokenizer_tatitok_bl128_vq",
     None, None, 1.53, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok (text-aware decoder)."),
    ("tatitok_bl32_vae.dc", _vae("base", "large", 32, **_TEXT), "turkeyju/tokenizer_tatitok_bl32_vae",
     None, None, 1.53, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok, continuous (VAE, 16 channels)."),
    ("tatitok_bl64_vae.dc", _vae("base", "large", 64, **_TEXT), "turkeyju/tokenizer_tatitok_bl64_vae",
     None, "c22b343", 1.47, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok, continuous (VAE, 16 channels)."),
    ("tatitok_sl128_vae.dc", _vae("small", "large", 128, **_TEXT), "turkeyju/tokenizer_tatitok_sl128_vae",
     None, None, 0.90, "apache-2.0", _TATITOK_PAPER, "titok", "TA-TiTok, continuous (VAE, 16 channels)."),
    ("onedpiece_l256.in1k", _legacy("large", "large", 256, tail_drop=True), "turing-motors/One-D-Piece-L-256",
     None, None, 1.08, "apache-2.0", _ODP_PAPER, "onedpiece",
     "One-D-Piece (TiTok legacy + tail-token drop): decode(tokens, length=L) for any L in 1..256."),
    ("onedpiece_b256.in1k", _legacy("base", "base", 256, tail_drop=True), "turing-motors/One-D-Piece-B-256",
     None, None, 1.11, "apache-2.0", _ODP_PAPER, "onedpiece", "One-D-Piece-B-256."),
    ("onedpiece_s256.in1k", _legacy("small", "small", 256, tail_drop=True), "turing-motors/One-D-Piece-S-256",
     None, None, 1.48, "apache-2.0", _ODP_PAPER, "onedpiece", "One-D-Piece-S-256."),
]

_TATITOK_NOTE = (" TA-TiTok decoders also attend to CLIP ViT-L/14-336 text features: pass "
                 "decode(tokens, text_guidance=[B, 77, 768]) (the zoo does not compute them; without them the text "
                 "tokens are left out, with a warning, and quality is below the published numbers). "
                 "Published metrics were measured on ImageNet-1k val although training used DataComp.")


def _compression(kw: dict) -> str:
    n, s = kw["num_tokens"], kw.get("image_size", 256)
    if kw["quantizer"] == "vae":
        return f"{n} tokens x {kw['token_size']} floats / {s}x{s}x3"
    bits = (kw["codebook_size"] - 1).bit_length()
    return f"{n} tokens x {bits} bits / {s}x{s}x3x8 bits"


for (_name, _kw, _repo, _rev, _short, _rfid, _lic, _paper, _conv, _notes) in _ENTRIES:
    _note = _notes + (_TATITOK_NOTE if _name.startswith("tatitok") else "")
    if _rev is None:
        _note += " " + _UNPINNED.format(short=_short or "unknown")
    register_tokenizer(
        _name, TiTok, modality="image", family="onedpiece" if _conv == "onedpiece" else "titok",
        kwargs=dict(_kw), input_size=(256, 256), token_shape=(_kw["num_tokens"],),
        codebook_size=_kw["codebook_size"] if _kw["quantizer"] == "vq" else 1,
        compression=_compression(_kw),
        source=WeightSource(hf_repo=_repo, revision=_rev, files=dict(_FILES), converter=_conv),
        license=_lic, paper=_paper, metrics={"rfid_in1k_val": _rfid}, notes=_note)

# tiny untrained architectures for CPU recipes and tests
_TINY = dict(image_size=64, enc_size=None, dec_size=None, enc_width=128, enc_depth=2, dec_width=128, dec_depth=2,
             num_tokens=16, token_size=16, codebook_size=256, quantizer="vq", l2_norm=True, legacy_readout=False,
             decoder_head="pixel")
register_tokenizer("titok_tiny.untrained", TiTok, modality="image", family="titok", kwargs=dict(_TINY),
                   input_size=(64, 64), token_shape=(16,), codebook_size=256,
                   compression=_compression(_TINY), paper=_TITOK_PAPER,
                   notes="Tiny single-stage TiTok (64x64 input, pixel decoder) for CPU recipes.")
register_tokenizer("onedpiece_tiny.untrained", TiTok, modality="image", family="onedpiece",
                   kwargs=dict(_TINY, tail_drop=True), input_size=(64, 64), token_shape=(16,), codebook_size=256,
                   compression=_compression(_TINY), paper=_ODP_PAPER,
                   notes="Tiny single-stage TiTok with One-D-Piece tail-token drop, for CPU recipes.")
