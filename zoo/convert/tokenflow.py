"""Official TokenFlow checkpoints (github.com/ByteFlow-AI/TokenFlow) -> zoo modules.

``"tokenflow.quantizer"``: the shared-mapping ``quantize`` module -> a
:class:`~zoo.quant.dual.MultiScaleResidualQuantizer` around a
:class:`~zoo.quant.dual.SharedMappingQuantizer` (``.quantizer``), with the scale schedule
TokenFlow hard-codes for the config's ``teacher``. Both take the concatenated latent
``[semantic | pixel]`` ``[B, semantic_code_dim + codebook_embed_dim, S, S]`` like the official
module. Keys: ``quantize.embedding_vqkd.weight`` -> ``quantizer.embedding_sem.weight``,
``quantize.embedding_vqgan.weight`` -> ``quantizer.embedding_pix.weight``; the
``codebook_used`` logging buffer and k-means EMA statistics (``cluster_size``, ``embed_avg``,
``initted``) are dropped.

``"tokenflow"``: the whole official TokenFlow with the ``clipb_224`` teacher (CLIP ViT-B/16
semantic encoder, 3-block VQKD semantic decoder, VQGAN pixel branch, optionally the enhanced
decoder) -> :class:`zoo.models.tokenflow.TokenFlow`. Renames inside the ViTs:
``transformer.resblocks.{i}.{ln_1,ln_2,attn.in_proj_*,attn.out_proj,mlp.c_fc,mlp.c_proj}`` ->
``blocks.{i}.{norm1,norm2,attn.qkv,attn.proj,mlp.fc1,mlp.fc2}`` and VQKD's ``attn.q_bias`` /
``attn.v_bias`` -> ``attn.qkv.bias`` (zero key bias); CLIP's unused output ``proj`` is dropped.
The SigLIP (``siglip_384``) and ViTamin teachers are not supported.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from . import register_converter
from .fqgan import unwrap_checkpoint

__all__ = ["convert_tokenflow_quantizer", "convert_tokenflow", "tokenflow_scales", "official_to_zoo_keys"]

_DROPPED = ("codebook_used", "cluster_size", "embed_avg", "initted")


def tokenflow_scales(config: Mapping | None) -> tuple[int, ...]:
    """TokenFlow's scale schedule for ``config["teacher"]`` (and ``infer_interpolate``)."""
    from ..quant.dual import TOKENFLOW_SCALES

    c = dict(config or {})
    teacher = c.get("teacher") or "clipb_224"
    if teacher == "clipb_224" and c.get("infer_interpolate"):
        teacher = "clipb_224_interpolate"
    if teacher not in TOKENFLOW_SCALES:
        raise ValueError(f"unknown TokenFlow teacher {teacher!r}; known: {sorted(TOKENFLOW_SCALES)}")
    return TOKENFLOW_SCALES[teacher]


@register_converter("tokenflow.quantizer")
def convert_tokenflow_quantizer(state_dict, config, *, config_path=None, files=None, scales=None, **kw):
    """Official ``quantize.*`` weights (alone or in a whole TokenFlow state dict) + ModelArgs dict.

    scales: override the schedule (e.g. ``(16,)`` for a single scale); default from the teacher.
    """
    from ..quant.dual import MultiScaleResidualQuantizer, SharedMappingQuantizer

    sd = unwrap_checkpoint(state_dict)
    prefix = "quantize." if any(k.startswith("quantize.") for k in sd) else ""
    try:
        sem = sd[f"{prefix}embedding_vqkd.weight"]
        pix = sd[f"{prefix}embedding_vqgan.weight"]
    except KeyError as e:
        raise KeyError(f"not a TokenFlow quantizer state dict: missing {e}") from None
    c = dict(config or {})
    k = int(sem.shape[0])
    for key, want in (("codebook_size", k), ("semantic_code_dim", sem.shape[1]), ("codebook_embed_dim", pix.shape[1])):
        if key in c and int(c[key]) != int(want):
            raise ValueError(f"config {key}={c[key]} but the checkpoint holds {int(want)}")
    if not c.get("codebook_l2_norm", True):
        raise ValueError("TokenFlow with codebook_l2_norm=False is not supported (the official code path is broken)")
    unknown = [key for key in sd if key.startswith(prefix + "embedding_") or (prefix and key.startswith(prefix))]
    unknown = [key for key in unknown if key not in (f"{prefix}embedding_vqkd.weight", f"{prefix}embedding_vqgan.weight")
               and not key.endswith(_DROPPED)]
    if unknown:
        raise ValueError(f"unexpected TokenFlow quantizer keys: {unknown[:8]}")
    inner = SharedMappingQuantizer(k, int(sem.shape[1]), int(pix.shape[1]), beta=c.get("commit_loss_beta", 1.0),
                                   entropy_loss_ratio=c.get("entropy_loss_ratio", 0.0), l2_norm=True)
    q = MultiScaleResidualQuantizer(inner, scales if scales is not None else tokenflow_scales(c),
                                    scale_drop_prob=kw.get("scale_drop_prob", 0.0))
    own = {"quantizer.embedding_sem.weight": sem, "quantizer.embedding_pix.weight": pix}
    return load_state_dict_strict(q, own, source="official TokenFlow quantizer").eval()


_CLIP_RENAMES = ((".ln_1.", ".norm1."), (".ln_2.", ".norm2."), (".mlp.c_fc.", ".mlp.fc1."),
                 (".mlp.c_proj.", ".mlp.fc2."), (".attn.in_proj_", ".attn.qkv."), (".attn.out_proj.", ".attn.proj."))


def official_to_zoo_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a whole official TokenFlow (clipb_224) state dict to :class:`~zoo.models.tokenflow.TokenFlow` keys."""
    out: dict[str, torch.Tensor] = {}
    biases: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key.endswith(_DROPPED) or key == "encoder_vqkd.proj":
            continue
        new = key
        if key.startswith("encoder_vqkd.transformer.resblocks."):
            new = re.sub(r"^encoder_vqkd\.transformer\.resblocks\.", "encoder_vqkd.blocks.", key)
            for old, rep in _CLIP_RENAMES:
                new = new.replace(old, rep)
        elif m := re.match(r"(decoder_vqkd\.blocks\.\d+\.attn)\.(q_bias|v_bias)$", key):
            biases.setdefault(m.group(1), {})[m.group(2)] = value
            continue
        elif key == "quantize.embedding_vqkd.weight":
            new = "quantizer.quantizer.embedding_sem.weight"
        elif key == "quantize.embedding_vqgan.weight":
            new = "quantizer.quantizer.embedding_pix.weight"
        out[new] = value
    for prefix, b in biases.items():
        if set(b) != {"q_bias", "v_bias"}:
            raise KeyError(f"{prefix}: q_bias and v_bias must both be present")
        out[f"{prefix}.qkv.bias"] = torch.cat([b["q_bias"], torch.zeros_like(b["v_bias"]), b["v_bias"]])
    return out


def _count(sd: Mapping, pattern: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(pattern, k))})


@register_converter("tokenflow")
def convert_tokenflow(state_dict, config, *, config_path=None, files=None, **kw):
    """Whole official TokenFlow (teacher ``clipb_224``) + ModelArgs dict -> :class:`zoo.models.tokenflow.TokenFlow`.

    Widths, depths and the enhanced decoder are read from the weights; the scale schedule comes from
    the teacher (``scales=`` overrides it) and the image size is its last scale x the patch size
    (256 with ``infer_interpolate``, the released clipb model's evaluation setting, else 224).
    """
    from ..models.tokenflow import TokenFlow

    sd = unwrap_checkpoint(state_dict)
    c = dict(config or {})
    teacher = c.get("teacher") or "clipb_224"
    if teacher != "clipb_224":
        raise ValueError(f"only the clipb_224 TokenFlow is supported, config says teacher={teacher!r}")
    if "encoder_vqkd.conv1.weight" not in sd:
        raise KeyError("not a clipb_224 TokenFlow state dict: encoder_vqkd.conv1.weight is missing")
    scales = tuple(kw["scales"]) if kw.get("scales") is not None else tokenflow_scales(c)
    patch = int(sd["encoder_vqkd.conv1.weight"].shape[-1])
    image_size = int(kw.get("image_size", scales[-1] * patch))
    sem, pix = sd["quantize.embedding_vqkd.weight"], sd["quantize.embedding_vqgan.weight"]
    width = int(sd["encoder_vqkd.conv1.weight"].shape[0])
    dec_width = int(sd["decoder_vqkd.cls_token"].shape[-1])
    ch = int(sd["encoder.conv_in.weight"].shape[0])
    ch_mult = list(c.get("encoder_ch_mult", [1, 1, 2, 2, 4]))
    with parameters_on_meta():
        model = TokenFlow(
            codebook_size=int(sem.shape[0]), semantic_dim=int(sem.shape[1]), pixel_dim=int(pix.shape[1]),
            image_size=image_size, ch=ch, ch_mult=ch_mult,
            num_res_blocks=_count(sd, r"encoder\.conv_blocks\.0\.res\.(\d+)\."),
            z_channels=int(c.get("z_channels", sd["quant_conv.weight"].shape[1])), num_groups=32,
            dec_ch=int(sd["decoder.conv_out.weight"].shape[1]) // int(ch_mult[0]),
            dec_num_res_blocks=_count(sd, r"decoder\.conv_blocks\.0\.res\.(\d+)\.") - 1,
            patch_size=patch, sem_width=width, sem_depth=_count(sd, r"encoder_vqkd\.transformer\.resblocks\.(\d+)\."),
            sem_heads=width // 64, sem_pos_grid=int(round((sd["encoder_vqkd.positional_embedding"].shape[0] - 1) ** 0.5)),
            sem_dec_width=dec_width, sem_dec_depth=_count(sd, r"decoder_vqkd\.blocks\.(\d+)\."), sem_dec_heads=12,
            teacher_dim=int(sd["decode_task_layer.2.weight"].shape[0]), scales=scales,
            scale_drop_prob=float(kw.get("scale_drop_prob", 0.1)), beta=float(c.get("commit_loss_beta", 1.0)),
            entropy_loss_ratio=float(c.get("entropy_loss_ratio", 0.0)))
    load_state_dict_strict(model, official_to_zoo_keys(sd), source="official TokenFlow (clipb_224)")
    return model.eval()
