"""Shared building blocks used by every tokenizer (one concept per module)."""
from .attention import Attention
from .mlp import Mlp, SwiGLU, build_mlp
from .patch_embed import PatchEmbed2d, PatchEmbed3d, unpatchify_2d, unpatchify_3d
from .pos_embed import sincos_1d, sincos_2d, sincos_3d
from .transformer import Block, Transformer
