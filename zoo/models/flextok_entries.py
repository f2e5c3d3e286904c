"""Registry entries of the FlexTok family: the four released checkpoints (converted on load by
``zoo.convert.flextok``) and a tiny untrained configuration."""
from __future__ import annotations

from typing import Any

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .flextok import VAE_SDXL_LIKE, FlexTok

_PAPER = "FlexTok: Resampling Images into 1D Token Sequences of Flexible Length (arXiv 2502.13967, ICML 2025)"
_LICENSE = "Apple Machine Learning Research Model License (weights; research use, never redistributed by the zoo)"


def _arch(enc_depth: int, dec_depth: int) -> dict[str, Any]:
    # FlexTok widths are 64 * depth, head_dim 64
    return dict(image_size=256, enc_width=64 * enc_depth, enc_depth=enc_depth, dec_width=64 * dec_depth,
                dec_depth=dec_depth, num_registers=256, fsq_levels=[8, 8, 8, 5, 5, 5])


def _released(*, enc_depth: int, dec_depth: int, data: str, tag: str) -> TokenizerInfo:
    """The hub repo ``EPFL-VILAB/flextok_d{enc_depth}_d{dec_depth}_{tag}``, trained on ``data``."""
    repo = f"EPFL-VILAB/flextok_d{enc_depth}_d{dec_depth}_{tag}"
    return TokenizerInfo(
        name=f"flextok_d{enc_depth}_d{dec_depth}.{tag}", builder=FlexTok, modality="image", family="flextok",
        kwargs=_arch(enc_depth, dec_depth), input_size=(256, 256),
        compression="1..256 tokens x 15.97 bits / 256x256x3x8 bits",
        source=WeightSource(hf_repo=repo, revision=None,
                            files={"weights": "model.safetensors", "config": "config.json"}, converter="flextok"),
        license=_LICENSE, paper=_PAPER,
        notes=(f"Official {data}-trained FlexTok d{enc_depth}-d{dec_depth} ({repo}); converted on load from the Hydra "
               "config (the VAE config is read from the config's hf_hub_path, EPFL-VILAB/flextok_vae_c16). "
               "Revision not pinned: no hub commit hash was available offline. Decode defaults follow the "
               "official README (20 Euler steps, guidance 7.5, APG). No published per-model numbers are "
               "recorded here; the paper reports rFID / generation FID per token count (see its tables)."))


ENTRIES = (
    _released(enc_depth=12, dec_depth=12, data="ImageNet-1k", tag="in1k"),
    _released(enc_depth=18, dec_depth=18, data="ImageNet-1k", tag="in1k"),
    _released(enc_depth=18, dec_depth=28, data="ImageNet-1k", tag="in1k"),
    _released(enc_depth=18, dec_depth=28, data="DFN", tag="dfn"),
    TokenizerInfo(
        name="flextok_tiny.untrained", builder=FlexTok, modality="image", family="flextok",
        kwargs=dict(image_size=64, vae=dict(VAE_SDXL_LIKE, block_out_channels=[16, 32, 64, 64], norm_num_groups=8,
                                            sample_size=64),
                    vae_scaling_factor=1.0, enc_width=128, enc_depth=2, dec_width=128, dec_depth=2, num_registers=256),
        input_size=(64, 64), notes="Tiny untrained FlexTok for CPU tests and recipes."),
)
register_tokenizers(ENTRIES)
