"""Official FQGAN checkpoints (github.com/showlab/FQGAN, hf ZechenBai/FQGAN) -> zoo modules.

``"fqgan"``: the whole ``VQModel`` (dual or triple, detected from the keys) -> :class:`zoo.models.fqgan.FQGAN`.
``"fqgan.quantizer"``: only the ``quantize_*`` sub-modules -> :class:`zoo.quant.factorized.FactorizedQuantizer`
(takes ``q([z_vis, z_sem])`` / ``q([z_vis, z_sem_mid, z_sem_high])``).

Official key layout -> zoo: ``encoder.{visual_head,semantic_head[_mid|_high]}.0.*`` ->
``heads.{g}.adapter.*``; ``encoder.{norm_out,conv_out}_<branch>`` -> ``heads.{g}.{norm_out,conv_out}``;
``quant_conv_<branch>`` -> ``quant_convs.{g}``; ``quantize_<branch>.embedding.weight`` ->
``quantizer.codebooks.{g}.weight`` (the ``codebook_used`` logging buffer is dropped);
``feat_pred_head`` (dual) / ``{mid,high}_sem_feat_pred`` (triple) -> ``feat_heads.<branch>``;
inside the transformers ``ln_1/ln_2/mlp.c_fc/mlp.c_proj/attn.in_proj_*/attn.out_proj`` ->
``norm1/norm2/mlp.fc1/mlp.fc2/attn.qkv/attn.proj``.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from . import register_converter

__all__ = ["convert_fqgan", "convert_fqgan_quantizer", "unwrap_checkpoint", "fqgan_variant"]

_ADAPTER = {"vis": "visual_head", "sem": "semantic_head", "sem_mid": "semantic_head_mid",
            "sem_high": "semantic_head_high"}
_FEAT = {"dual": {"sem": "feat_pred_head"}, "triple": {"sem_mid": "mid_sem_feat_pred",
                                                       "sem_high": "high_sem_feat_pred"}}
_BLOCK_RENAMES = ((".ln_1.", ".norm1."), (".ln_2.", ".norm2."), (".mlp.c_fc.", ".mlp.fc1."),
                  (".mlp.c_proj.", ".mlp.fc2."), (".attn.in_proj_", ".attn.qkv."), (".attn.out_proj.", ".attn.proj."))


def unwrap_checkpoint(sd: Mapping) -> Mapping[str, torch.Tensor]:
    """The model weights of an official training checkpoint: ``ema`` if present, else ``model`` /
    ``state_dict`` (the order the official evaluation scripts use), else the mapping itself."""
    for key in ("ema", "model", "state_dict"):
        if key in sd and isinstance(sd[key], Mapping):
            return sd[key]
    return sd


def fqgan_variant(sd: Mapping[str, torch.Tensor]) -> str:
    """``"triple"`` when ``quantize_sem_mid`` weights are present, ``"dual"`` when ``quantize_sem`` is."""
    if "quantize_sem_mid.embedding.weight" in sd:
        return "triple"
    if "quantize_sem.embedding.weight" in sd:
        return "dual"
    raise KeyError("not an FQGAN state dict: no quantize_sem.* or quantize_sem_mid.* embedding")


def _branches(variant: str) -> tuple[str, ...]:
    from ..models.fqgan import BRANCHES

    return BRANCHES[variant]


def _rename_blocks(key: str) -> str:
    key = re.sub(r"\.transformer\.(\d+)\.", r".transformer.blocks.\1.", key)
    for old, new in _BLOCK_RENAMES:
        key = key.replace(old, new)
    return key


def _quantizer_kwargs(config: Mapping | None) -> dict:
    c = dict(config or {})
    return dict(beta=c.get("commit_loss_beta", 0.25), entropy_loss_ratio=c.get("entropy_loss_ratio", 0.0),
                disentangle_ratio=c.get("disentanglement_ratio", 0.0) if c.get("with_disentanglement", True) else 0.0)


@register_converter("fqgan.quantizer")
def convert_fqgan_quantizer(state_dict, config, *, config_path=None, files=None, **kw):
    """Official ``quantize_*`` weights (alone or inside a whole-model state dict) + ModelArgs dict."""
    from ..quant.factorized import FactorizedQuantizer

    sd = unwrap_checkpoint(state_dict)
    variant = fqgan_variant(sd)
    names = _branches(variant)
    weights = [sd[f"quantize_{n}.embedding.weight"] for n in names]
    k, d = weights[0].shape
    c = dict(config or {})
    if c.get("codebook_size", k) != k or c.get("codebook_embed_dim", d) != d:
        raise ValueError(f"config says codebook {c.get('codebook_size')}x{c.get('codebook_embed_dim')}, "
                         f"checkpoint holds {k}x{d}")
    if not c.get("codebook_l2_norm", True):
        raise ValueError("FQGAN checkpoints with codebook_l2_norm=False are not supported")
    q = FactorizedQuantizer(k, d, len(names), names=names, l2_norm=True, **_quantizer_kwargs(c))
    own = {f"codebooks.{g}.weight": w for g, w in enumerate(weights)}
    return load_state_dict_strict(q, own, source=f"official FQGAN {variant} quantizer").eval()


def official_to_zoo_keys(sd: Mapping[str, torch.Tensor], variant: str) -> dict[str, torch.Tensor]:
    """Rename a whole official FQGAN state dict to :class:`~zoo.models.fqgan.FQGAN` keys."""
    names = _branches(variant)
    feat = {v: k for k, v in _FEAT[variant].items()}
    out = {}
    for key, value in sd.items():
        new = key
        if key.endswith(".codebook_used"):
            continue
        m = re.match(r"encoder\.(visual_head|semantic_head(?:_mid|_high)?)\.0\.(.*)", key)
        if m:
            branch = {v: k for k, v in _ADAPTER.items()}[m.group(1)]
            new = _rename_blocks(f"heads.{names.index(branch)}.adapter.{m.group(2)}")
        elif (m := re.match(r"encoder\.(norm_out|conv_out)_(\w+?)\.(weight|bias)$", key)):
            new = f"heads.{names.index(m.group(2))}.{m.group(1)}.{m.group(3)}"
        elif (m := re.match(r"quant_conv_(\w+?)\.(weight|bias)$", key)):
            new = f"quant_convs.{names.index(m.group(1))}.{m.group(2)}"
        elif (m := re.match(r"quantize_(\w+?)\.embedding\.weight$", key)):
            new = f"quantizer.codebooks.{names.index(m.group(1))}.weight"
        elif (m := re.match(r"(feat_pred_head|mid_sem_feat_pred|high_sem_feat_pred)\.(.*)", key)):
            new = _rename_blocks(f"feat_heads.{feat[m.group(1)]}.{m.group(2)}")
        out[new] = value
    return out


@register_converter("fqgan")
def convert_fqgan(state_dict, config, *, config_path=None, files=None, **kw):
    """Whole official ``VQModel`` (dual / triple) + ModelArgs dict -> :class:`~zoo.models.fqgan.FQGAN`.

    Numbers not in ModelArgs are read from the weights (base width ``ch`` from ``conv_in``, res
    blocks per level, adapter / feature-head depths, feature widths, the adapters' position count
    -> image size 256 for the releases); heads (8) and GroupNorm groups (32) are the official
    hard-coded values.
    """
    from ..models.fqgan import FQGAN

    sd = unwrap_checkpoint(state_dict)
    variant = fqgan_variant(sd)
    names = _branches(variant)
    c = dict(config or {})
    emb = sd[f"quantize_{names[0]}.embedding.weight"]
    ch_mult = list(c.get("encoder_ch_mult", [1, 1, 2, 2, 4]))
    if list(c.get("decoder_ch_mult", ch_mult)) != ch_mult:
        raise ValueError("FQGAN with different encoder and decoder ch_mult is not supported")
    feat_dims = {b: int(sd[f"{k}.class_embedding"].shape[-1]) for b, k in _FEAT[variant].items()
                 if f"{k}.class_embedding" in sd}
    adapter_depth = len({m.group(1) for k in sd if (m := re.match(r"encoder\.visual_head\.0\.transformer\.(\d+)\.", k))})
    feat_depth = max((len({m.group(1) for k in sd if (m := re.match(rf"{re.escape(h)}\.transformer\.(\d+)\.", k))})
                      for h in _FEAT[variant].values()), default=3)
    ch = int(sd["encoder.conv_in.weight"].shape[0])
    num_res = len({m.group(1) for k in sd if (m := re.match(r"encoder\.conv_blocks\.0\.res\.(\d+)\.", k))})
    pos = sd.get("encoder.visual_head.0.positional_embedding")
    factor = 2 ** (len(ch_mult) - 1)
    image_size = int(round(pos.shape[0] ** 0.5)) * factor if pos is not None else 256
    with parameters_on_meta():
        model = FQGAN(variant=variant, codebook_size=int(emb.shape[0]), codebook_dim=int(emb.shape[1]),
                      z_channels=int(c.get("z_channels", sd["post_quant_conv.weight"].shape[0])), ch=ch,
                      ch_mult=ch_mult, num_res_blocks=num_res, num_groups=32, dropout=float(c.get("dropout_p", 0.0)),
                      image_size=image_size, adapter_depth=adapter_depth, adapter_heads=8, feat_dims=feat_dims,
                      feat_depth=feat_depth or 3, feat_heads=8,
                      beta=c.get("commit_loss_beta", 0.25), entropy_loss_ratio=c.get("entropy_loss_ratio", 0.0),
                      disentangle_ratio=_quantizer_kwargs(c)["disentangle_ratio"])
    load_state_dict_strict(model, official_to_zoo_keys(sd, variant), source=f"official FQGAN {variant}")
    return model.eval()
