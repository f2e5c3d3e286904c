"""Official RobusTok single-scale quantizer (github.com/qiuk2/RobusTok, ``xqgan_model.VectorQuantizer``).

``"robusttok.quantizer"``: ``quantize.embedding.weight`` (alone or inside a whole-model state dict)
-> :class:`zoo.quant.vq.VectorQuantizer` (cosine VQ when ``codebook_norm``, beta 0.25), the module
whose codebook RobusTok's latent perturbation reads; pair it with
:class:`zoo.quant.perturb.LatentPerturbation`. The ``ema_vocab_hit_SV`` usage buffer is dropped.
The whole RobusTok tokenizer (DINOv2 ViT encoder/decoder) is not converted.
"""
from __future__ import annotations

from ..checkpoint import load_state_dict_strict
from . import register_converter
from .training_args import unwrap_checkpoint

__all__ = ["convert_robusttok_quantizer"]


@register_converter("robusttok.quantizer")
def convert_robusttok_quantizer(state_dict, config, *, config_path=None, files=None, arch=None, **kw):
    """Official weights + config (``codebook_size``, ``codebook_embed_dim``; YAML or dict)."""
    from ..quant.vq import VectorQuantizer

    sd = unwrap_checkpoint(state_dict)
    key = "quantize.embedding.weight" if "quantize.embedding.weight" in sd else "embedding.weight"
    if key not in sd:
        raise KeyError("not a RobusTok quantizer state dict: no quantize.embedding.weight")
    weight = sd[key]
    c = dict(config or {})
    k, d = (int(s) for s in weight.shape)
    for name, want in (("codebook_size", k), ("codebook_embed_dim", d)):
        if name in c and int(c[name]) != want:
            raise ValueError(f"config {name}={c[name]} but the checkpoint holds {want}")
    if int(c.get("product_quant", 1)) != 1 or len(c.get("v_patch_nums", [1])) != 1:
        raise ValueError("only the single-scale, single-product RobusTok quantizer is supported")
    q = VectorQuantizer(k, d, beta=float(c.get("commit_loss_beta", 0.25)), l2_norm=bool(c.get("codebook_l2_norm", True)),
                        channel_dim=1)
    return load_state_dict_strict(q, {"embedding.weight": weight}, source="official RobusTok quantizer").eval()
