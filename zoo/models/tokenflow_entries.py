"""Registry entries of the TokenFlow family: the released text-to-image tokenizer (converted on load by
``zoo.convert.tokenflow``) and a tiny untrained configuration."""
from __future__ import annotations

from ..hub import WeightSource
from ..quant.dual import TOKENFLOW_SCALES
from ..registry import TokenizerInfo, register_tokenizers
from .tokenflow import TokenFlow

ENTRIES = (
    TokenizerInfo(
        name="tokenflow_clipb_32k_enhanced.t2i", builder=TokenFlow, modality="image", family="tokenflow",
        kwargs=dict(codebook_size=32768, semantic_dim=32, pixel_dim=8, image_size=256, ch=128, ch_mult=[1, 1, 2, 2, 4],
                    num_res_blocks=2, z_channels=256, num_groups=32, dec_ch=256, dec_num_res_blocks=4, patch_size=16,
                    sem_width=768, sem_depth=12, sem_heads=12, sem_pos_grid=14, sem_dec_width=768, sem_dec_depth=3,
                    sem_dec_heads=12, teacher_dim=512, scales=list(TOKENFLOW_SCALES["clipb_224_interpolate"])),
        input_size=(256, 256),
        compression="1 + 4 + ... + 256 = 817 multi-scale tokens x 15 bits / 256x256x3x8 bits",
        source=WeightSource(hf_repo="ByteFlow-AI/TokenFlow", revision=None,
                            files={"weights": "tokenflow_clipb_32k_enhanced.pt"}, converter="tokenflow"),
        license="Apache-2.0 (code repository licence; the weights carry no separate licence)",
        paper="arXiv:2412.03069",
        notes=("Official TokenFlow tokenizer of the text-to-image model (CLIP ViT-B/16 teacher, 32k shared codebook, "
               "enhanced decoder), evaluated by the authors at 256x256 with interpolated positions and scales up to 16 "
               "(scripts/reconstruction_vq.sh); the file stores no resolution, this entry gives it. Converted by "
               "zoo.convert.tokenflow (architecture from the weights and the stored training args, checked against this "
               "entry). Whole-model parity is tested on a fixture made by running the official code (shrunk widths, the "
               "224-px schedule, 561 ids: tests/convert/test_tokenflow_whole_golden.py), not on the released file and "
               "not at the 256-px interpolated schedule (no network here); the "
               "revision is unpinned (main). The README publishes no reconstruction numbers for this file: metrics "
               "left empty.")),
    TokenizerInfo(
        name="tokenflow_tiny.untrained", builder=TokenFlow, modality="image", family="tokenflow",
        kwargs=dict(codebook_size=256, semantic_dim=16, pixel_dim=8, image_size=32, ch=16, ch_mult=[1, 2, 2],
                    num_res_blocks=1, z_channels=32, num_groups=8, patch_size=4, sem_width=64, sem_depth=2,
                    sem_heads=4, sem_dec_depth=1, teacher_dim=48, scales=[1, 2, 4, 6, 8]),
        input_size=(32, 32), notes="Tiny CPU-trainable TokenFlow-style configuration (tests, recipes); no weights."),
)
register_tokenizers(ENTRIES)
