"""Registry entries of the 1D video tokenizer family (LARP layout): untrained LARP-L sizes, the released
LARP-L-long tokenizer (converted on load by ``zoo.convert.larp``) and a tiny CPU configuration."""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .video import Video1DTokenizer

_PAPER = "LARP: Tokenizing Videos with a Learned Autoregressive Generative Prior (Wang et al., ICLR 2025), arXiv:2410.21264"
_LARP_L = dict(input_size=[16, 128, 128], tubelet=4, patch_size=8, enc_width=768, enc_depth=12,
               enc_heads=12, dec_width=768, dec_depth=12, dec_heads=12, quantizer="vq",
               codebook_dim=16, codebook_size=8192, quantizer_kwargs={"stochastic_temperature": 0.03}, recon_loss="l1",
               quant_weight=0.1, prior=True, prior_width=384,
               prior_depth=12, prior_heads=6, prior_weight=0.06)


def _larp_l(num_tokens: int) -> TokenizerInfo:
    """The untrained LARP-L layout with ``num_tokens`` tokens."""
    return TokenizerInfo(
        name=f"larp_l_{num_tokens}.untrained", builder=Video1DTokenizer, modality="video", family="video1d",
        kwargs={**_LARP_L, "num_tokens": num_tokens}, input_size=(16, 128, 128),
        compression=f"{num_tokens} tokens x 13 bits / 16x128x128x3x8 bits", paper=_PAPER,
        license="Apache-2.0 (zoo code)",
        notes=("Untrained LARP-L layout (ViT-B encoder and decoder, 768 wide, 12 deep; 16-d l2-normalised VQ "
               "with 8192 codes, sampled at temperature 0.03 in training; GPTC-S-sized AR prior, 12x384) at the "
               "paper's 16x128x128 input, tubelet "
               f"4x8x8, {num_tokens} tokens. The paper's released tokenizer (hywang66/LARP-L-long-tokenizer, 1024 "
               "tokens) is the separate entry larp_l_long.k600_ucf101 (converter 'larp')."))


ENTRIES = (
    _larp_l(1024),
    _larp_l(512),
    _larp_l(256),
    TokenizerInfo(
        name="larp_l_long.k600_ucf101", builder=Video1DTokenizer, modality="video", family="video1d",
        kwargs={**{k: v for k, v in _LARP_L.items() if not k.startswith("prior")}, "num_tokens": 1024, "prior": False,
                "enc_norm": False, "signed_pixels": False},
        input_size=(16, 128, 128), compression="1024 tokens x 13 bits / 16x128x128x3x8 bits",
        source=WeightSource(hf_repo="hywang66/LARP-L-long-tokenizer", revision=None,
                            files={"weights": "model.safetensors", "config": "config.json"}, converter="larp"),
        paper=_PAPER, license="MIT (hywang66/LARP)", metrics={"rfvd_ucf101": 20.0},
        notes=("Official LARP-L-long tokenizer (173M parameters; trained on Kinetics-600 + UCF-101, 16x128x128 clips, "
               "1024 tokens, 16-d l2 VQ with 8192 codes), converted on the fly from its PyTorchModelHubMixin files "
               "(config.json + model.safetensors). Published reconstruction FVD 20 on UCF-101 (repo README; the "
               "AR-prior weights are not loaded: training-only). The converter matches the official code exactly on a "
               "randomly initialised official model (tests/convert/test_larp_golden.py), but was not run on the "
               "released file itself (no hub access here): its file names follow the mixin's convention and the "
               "revision is not pinned (no commit hash could be looked up).")),
    TokenizerInfo(
        name="video1d_tiny.untrained", builder=Video1DTokenizer, modality="video", family="video1d",
        kwargs=dict(input_size=[8, 32, 32], tubelet=2, patch_size=8, num_tokens=32, enc_width=64, enc_depth=2,
                    enc_heads=4, dec_width=64, dec_depth=2, dec_heads=4, quantizer="fsq",
                    fsq_levels=[4, 4, 4, 4], recon_loss="mse", quant_weight=1.0, prior=True, prior_width=64,
                    prior_depth=1, prior_heads=4, prior_weight=0.01, query_init_std=1.0, latent_pos_init_scale=0.1),
        input_size=(8, 32, 32), compression="32 tokens x 8 bits / 8x32x32x3x8 bits", paper=_PAPER,
        license="Apache-2.0 (zoo code)",
        notes=("Tiny CPU configuration (FSQ 4^4, AR prior) for tests, demos and recipes/video/tiny_video1d.yaml. "
               "FSQ rather than VQ: at this size an l2 VQ collapses to one or two codes within a few hundred steps.")),
)
register_tokenizers(ENTRIES)
