"""Registry entries of the FQGAN family: the four released checkpoints (converted on load by
``zoo.convert.fqgan``) and a tiny untrained configuration."""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .fqgan import BRANCHES, FQGAN

#: teacher feature widths of the released models (dual: CLIP ViT-L/14 CLS; triple: DINOv2-S, CLIP ViT-B/16)
RELEASED_FEAT_DIMS = {"dual": {"sem": 1024}, "triple": {"sem_mid": 384, "sem_high": 768}}
_RELEASED = dict(codebook_size=16384, codebook_dim=8, z_channels=256, ch=128, num_res_blocks=2, num_groups=32,
                 image_size=256, adapter_depth=6, adapter_heads=8, feat_depth=3, feat_heads=8, commitment_weight=0.25,
                 entropy_weight=0.03, disentangle_weight=0.1, semantic_weight=0.5)
_FQGAN_NOTE = ("Official checkpoint from github.com/showlab/FQGAN (README table), converted by zoo.convert.fqgan "
               "(the EMA weights when the file holds them; architecture from the weights and the stored training "
               "args, checked against this entry). Whole-model parity is tested on fixtures made by running the "
               "official VQModel code (dual at /16 and /8, shrunk widths: tests/convert/test_fqgan_whole_golden.py; "
               "ids exact, unclamped decode within 1e-4), not on the released files (no network here). "
               "No revision hash could be looked up offline: the revision is unpinned (main). rFID on ImageNet "
               "val 256x256 as published in the README.")


def _released(*, variant: str, downsample: int, ch_mult: tuple[int, ...], rfid: float, weights: str) -> TokenizerInfo:
    """A released 256x256 checkpoint (file ``weights`` of the hub repo) with ``downsample``-fold latents."""
    g = len(BRANCHES[variant])
    n = (256 // downsample) ** 2
    return TokenizerInfo(
        name=f"fqgan_{variant}_ds{downsample}.in1k", builder=FQGAN, modality="image", family="fqgan",
        kwargs=dict(_RELEASED, variant=variant, ch_mult=list(ch_mult), teacher_dims=RELEASED_FEAT_DIMS[variant]),
        input_size=(256, 256), compression=f"{n} tokens x {g} x 14 bits / 256x256x3x8 bits",
        source=WeightSource(hf_repo="ZechenBai/FQGAN", revision=None, files={"weights": weights}, converter="fqgan"),
        license="CC-BY-NC-4.0 (code repository licence; the weights carry no separate licence)",
        paper="arXiv:2411.16681", metrics={"rfid_in1k_val_256": rfid}, notes=_FQGAN_NOTE)


ENTRIES = (
    _released(variant="dual", downsample=16, ch_mult=(1, 1, 2, 2, 4), rfid=0.94, weights="fqgan_dual_ds16.pt"),
    _released(variant="triple", downsample=16, ch_mult=(1, 1, 2, 2, 4), rfid=0.76, weights="fqgan_triple_ds16.pt"),
    _released(variant="dual", downsample=8, ch_mult=(1, 2, 2, 4), rfid=0.32, weights="fqgan_dual_ds8.pt"),
    _released(variant="triple", downsample=8, ch_mult=(1, 2, 2, 4), rfid=0.24, weights="fqgan_triple_ds8.pt"),
    TokenizerInfo(
        name="fqgan_tiny.untrained", builder=FQGAN, modality="image", family="fqgan",
        kwargs=dict(variant="dual", codebook_size=256, codebook_dim=8, z_channels=16, ch=16, ch_mult=[1, 2, 2],
                    num_res_blocks=1, num_groups=8, image_size=32, adapter_depth=1, adapter_heads=4,
                    teacher_dims={"sem": 48}, feat_depth=1, feat_heads=4, entropy_weight=0.03, disentangle_weight=0.1),
        input_size=(32, 32), notes="Tiny CPU-trainable configuration (tests, recipes); no weights."),
)
register_tokenizers(ENTRIES)
