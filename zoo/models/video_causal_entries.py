"""Registry entries of the causal 3D CNN video tokenizer family (MAGVIT-v2-style layout; untrained)."""
from __future__ import annotations

from ..registry import TokenizerInfo, register_tokenizers
from .video_causal import CausalConvVideoTokenizer

_MAGVIT2 = "Language Model Beats Diffusion: Tokenizer is Key to Visual Generation (MAGVIT-v2, Yu et al., ICLR 2024), arXiv:2310.05737"
_BASE = dict(input_size=[17, 128, 128], ch=128, ch_mult=[1, 2, 2, 4], num_res_blocks=4, z_channels=256,
             temporal_down=[False, True, True], attn_levels=[], recon_loss="l1")

ENTRIES = (
    TokenizerInfo(
        name="causal3d_lfq18.untrained", builder=CausalConvVideoTokenizer, modality="video", family="video_causal",
        kwargs={**_BASE, "quantizer": "lfq", "codebook_size": 2 ** 18,
                "quantizer_kwargs": {"entropy_loss_weight": 0.1, "commitment_loss_weight": 0.25}},
        input_size=(17, 128, 128), compression="1280 tokens x 18 bits / 17x128x128x3x8 bits", paper=_MAGVIT2,
        license="Apache-2.0 (zoo code)",
        notes=("Untrained MAGVIT-v2-sized causal 3D CNN (128 channels x (1, 2, 2, 4), 4 res-blocks per level, "
               "4x8x8 compression with the first frame alone: 17 frames -> 5 latent frames) with an 18-bit LFQ. "
               "Not a reproduction of MAGVIT-v2 (no official weights; mid-block attention, per-frame GroupNorm).")),
    TokenizerInfo(
        name="causal3d_fsq64k.untrained", builder=CausalConvVideoTokenizer, modality="video", family="video_causal",
        kwargs={**_BASE, "quantizer": "fsq", "fsq_levels": [8, 8, 8, 5, 5, 5]},
        input_size=(17, 128, 128), compression="1280 tokens x 15.97 bits / 17x128x128x3x8 bits", paper=_MAGVIT2,
        license="Apache-2.0 (zoo code)",
        notes=("The same causal 3D CNN with FSQ levels (8, 8, 8, 5, 5, 5) = 64,000 codes (the discrete "
               "Cosmos-Tokenizer codebook), 4x8x8 compression.")),
    TokenizerInfo(
        name="causal3d_tiny.untrained", builder=CausalConvVideoTokenizer, modality="video", family="video_causal",
        kwargs=dict(input_size=[9, 32, 32], ch=8, ch_mult=[1, 2, 2], num_res_blocks=1, z_channels=16,
                    temporal_down=[True, True], attn_levels=[], num_groups=4, quantizer="fsq", fsq_levels=[4, 4, 4, 4],
                    recon_loss="mse"),
        input_size=(9, 32, 32), compression="192 tokens x 8 bits / 9x32x32x3x8 bits", paper=_MAGVIT2,
        license="Apache-2.0 (zoo code)",
        notes="Tiny CPU configuration (4x4x4 compression, FSQ 4^4) for tests, demos and recipes/video/tiny_causal3d.yaml."),
)
register_tokenizers(ENTRIES)
