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
:func:`to_official_state_dict` is the inverse. The SigLIP (``siglip_384``) and ViTamin teachers
are not supported.

Where the architecture comes from: the released ``tokenflow_clipb_32k_enhanced.pt`` is a training
checkpoint ``{"model", "ema", "args"}`` (:mod:`zoo.convert.training_args`). Widths, depths,
``ch_mult``, the (enhanced) decoder and the codebooks are read from the weight shapes and checked
against the stated settings (``teacher``, ``codebook_size``, ``semantic_code_dim``,
``codebook_embed_dim``, ``enhanced_decoder``, ``encoder_ch_mult``, ``z_channels``; ``vq_model``
``"TokenFlow"`` means ``ch_mult`` [1, 1, 2, 2, 4]) and against ``arch``. The inference resolution
is not a property of the weights: TokenFlow evaluates the clipb model either at 224 px (scales
up to 14, 561 tokens) or, with ``--infer_interpolate``, at 256 px (scales up to 16, 817 tokens).
It comes from the ``scales`` / ``image_size`` options, else ``arch`` (the registry entry
advertises 256 px), else the settings' ``infer_interpolate``; only the teacher's two official
schedules are accepted from ``arch``. Heads: CLIP width / 64, VQKD decoder 12 (official values).
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from ..layers.conv import conv_autoencoder_from_state_dict
from . import register_converter
from .architecture import ArchitectureMismatchError, check_stated, merge_settings
from .training_args import checkpoint_settings, unwrap_checkpoint

__all__ = ["convert_tokenflow_quantizer", "convert_tokenflow", "tokenflow_scales", "official_to_zoo_keys",
           "tokenflow_kwargs_from_official", "to_official_state_dict", "to_official_args", "CODEBOOK_USED_SIZE"]

#: length of the official ``quantize.codebook_used`` logging buffer
CODEBOOK_USED_SIZE = 131072
#: ``VQ_models`` of tokenflow/tokenizer/vq_model.py: name -> encoder / decoder ch_mult
VQ_MODELS = {"TokenFlow": (1, 1, 2, 2, 4)}
#: the enhanced pixel decoder (``enhanced_decoder=True``): width and res blocks per level
ENHANCED_DECODER = {"dec_ch": 256, "dec_num_res_blocks": 4}
#: TokenFlow constructor arguments that only matter for training: the stored value wins, with a warning
_TRAINING = ("commitment_weight", "entropy_weight", "scale_drop_prob", "semantic_weight")

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
def convert_tokenflow_quantizer(state_dict, config, *, config_path=None, files=None, arch=None, scales=None, **kw):
    """Official ``quantize.*`` weights (alone, in a whole TokenFlow state dict or a checkpoint) + settings.

    scales: override the schedule (e.g. ``(16,)`` for a single scale); default from the teacher.
    """
    from ..quant.dual import MultiScaleResidualQuantizer, SharedMappingQuantizer

    c = checkpoint_settings(state_dict, config, source="official TokenFlow checkpoint")
    sd = unwrap_checkpoint(state_dict)
    prefix = "quantize." if any(k.startswith("quantize.") for k in sd) else ""
    try:
        sem = sd[f"{prefix}embedding_vqkd.weight"]
        pix = sd[f"{prefix}embedding_vqgan.weight"]
    except KeyError as e:
        raise KeyError(f"not a TokenFlow quantizer state dict: missing {e}") from None
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


def _inference_scales(settings: Mapping, arch: Mapping | None, options: Mapping, source: str) -> tuple[int, ...]:
    """The scale schedule: the ``scales`` option, else ``arch``'s (one of the teacher's official
    schedules), else the settings' teacher and ``infer_interpolate``."""
    from ..quant.dual import TOKENFLOW_SCALES

    if options.get("scales") is not None:
        return tuple(int(s) for s in options["scales"])
    if arch and arch.get("scales") is not None:
        scales = tuple(int(s) for s in arch["scales"])
        teacher = settings.get("teacher") or "clipb_224"
        official = [TOKENFLOW_SCALES[t] for t in (teacher, teacher + "_interpolate") if t in TOKENFLOW_SCALES]
        if scales not in official:
            raise ArchitectureMismatchError(f"{source}: expected scales {list(scales)} are not a schedule of the "
                                            f"{teacher} teacher ({[list(o) for o in official]})")
        return scales
    return tokenflow_scales(settings)


def tokenflow_kwargs_from_official(sd: Mapping[str, torch.Tensor], settings: Mapping | None = None,
                                   source: str = "official TokenFlow checkpoint") -> dict:
    """:class:`~zoo.models.tokenflow.TokenFlow` constructor arguments read from an official (clipb_224)
    state dict's shapes and checked against the stated ``settings``; without ``scales`` / ``image_size``
    (the inference resolution is not stored, see the module docstring)."""
    settings = dict(settings or {})
    teacher = settings.get("teacher") or "clipb_224"
    if teacher != "clipb_224":
        raise ValueError(f"only the clipb_224 TokenFlow is supported, the settings say teacher={teacher!r}")
    if "encoder_vqkd.conv1.weight" not in sd:
        raise KeyError("not a clipb_224 TokenFlow state dict: encoder_vqkd.conv1.weight is missing")
    sem, pix = sd["quantize.embedding_vqkd.weight"], sd["quantize.embedding_vqgan.weight"]
    width = int(sd["encoder_vqkd.conv1.weight"].shape[0])
    conv = conv_autoencoder_from_state_dict(sd)
    found = dict(
        codebook_size=int(sem.shape[0]), semantic_dim=int(sem.shape[1]), pixel_dim=int(pix.shape[1]), **conv,
        z_channels=int(sd["quant_conv.weight"].shape[1]), num_groups=32,
        patch_size=int(sd["encoder_vqkd.conv1.weight"].shape[-1]),
        sem_width=width, sem_depth=_count(sd, r"encoder_vqkd\.transformer\.resblocks\.(\d+)\."),
        sem_heads=width // 64, sem_pos_grid=int(round((sd["encoder_vqkd.positional_embedding"].shape[0] - 1) ** 0.5)),
        sem_dec_width=int(sd["decoder_vqkd.cls_token"].shape[-1]), sem_dec_depth=_count(sd, r"decoder_vqkd\.blocks\.(\d+)\."),
        sem_dec_heads=12, teacher_dim=int(sd["decode_task_layer.2.weight"].shape[0]))
    mults = [settings.get(k) for k in ("encoder_ch_mult", "decoder_ch_mult") if settings.get(k) is not None]
    family = settings.get("vq_model")
    if family is not None and family not in VQ_MODELS:
        raise ArchitectureMismatchError(f"{source}: unknown TokenFlow vq_model {family!r} (known: {sorted(VQ_MODELS)})")
    declared = mults or ([list(VQ_MODELS[family])] if family is not None else [])
    enhanced = settings.get("enhanced_decoder")
    plain = {"dec_ch": conv["ch"], "dec_num_res_blocks": conv["num_res_blocks"]}
    if enhanced is not None:
        check_stated(ENHANCED_DECODER if enhanced else plain, found, f"{source} (enhanced_decoder={enhanced})")
    check_stated({"codebook_size": settings.get("codebook_size"), "semantic_dim": settings.get("semantic_code_dim"),
                   "pixel_dim": settings.get("codebook_embed_dim"), "z_channels": settings.get("z_channels")},
                  found, source)
    for m in declared:
        check_stated({"ch_mult": m}, found, source)
    if not settings.get("codebook_l2_norm", True):
        raise ValueError("TokenFlow with codebook_l2_norm=False is not supported (the official code path is broken)")
    for ours, theirs in (("commitment_weight", "commit_loss_beta"), ("entropy_weight", "entropy_loss_ratio")):
        if theirs in settings:
            found[ours] = float(settings[theirs])
    return found


@register_converter("tokenflow")
def convert_tokenflow(state_dict, config, *, config_path=None, files=None, arch=None, **kw):
    """Whole official TokenFlow (teacher ``clipb_224``; a released ``.pt`` checkpoint or a bare state
    dict) + optional official config -> :class:`zoo.models.tokenflow.TokenFlow`.

    arch: expected TokenFlow constructor arguments (a registry entry's): they fill what the
    checkpoint does not state (the inference resolution) and any architecture setting the
    checkpoint states differently raises :class:`~zoo.convert.architecture.ArchitectureMismatchError`.
    kw: ``scales`` / ``image_size`` (inference resolution) and other TokenFlow constructor overrides
    of training settings (``scale_drop_prob``, ...).
    """
    from ..models.tokenflow import TokenFlow

    source = str(config_path or "official TokenFlow checkpoint")
    settings = checkpoint_settings(state_dict, config, source=source)
    sd = unwrap_checkpoint(state_dict)
    found = tokenflow_kwargs_from_official(sd, settings, source=source)
    scales = _inference_scales(settings, arch, kw, source)
    found["scales"] = list(scales)
    found["image_size"] = int(kw.get("image_size") or (arch or {}).get("image_size") or scales[-1] * found["patch_size"])
    kwargs = merge_settings(found, {k: v for k, v in (arch or {}).items() if k not in ("scales", "image_size")},
                            source=source, soft=_TRAINING)
    kwargs = {**kwargs, **{k: v for k, v in kw.items() if k not in ("scales", "image_size")}}
    with parameters_on_meta():
        model = TokenFlow(**kwargs)
    load_state_dict_strict(model, official_to_zoo_keys(sd), source="official TokenFlow (clipb_224)")
    return model.eval()


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """:class:`~zoo.models.tokenflow.TokenFlow` (shared mapping) -> state dict with the official key
    names (the inverse of the conversion; tensors shared where the layout allows). The dropped
    ``quantize.codebook_used`` logging buffer comes back as zeros. Raises ``ValueError`` when a VQKD
    decoder block has a non-zero key bias (the official layout has none)."""
    out: dict[str, torch.Tensor] = {}
    renames = {"quantizer.quantizer.embedding_sem.weight": "quantize.embedding_vqkd.weight",
               "quantizer.quantizer.embedding_pix.weight": "quantize.embedding_vqgan.weight"}
    for key, value in model.state_dict().items():
        if key.startswith("encoder_vqkd.blocks."):
            new = re.sub(r"^encoder_vqkd\.blocks\.", "encoder_vqkd.transformer.resblocks.", key)
            for old, rep in _CLIP_RENAMES:
                new = new.replace(rep, old)
            out[new] = value
        elif m := re.match(r"(decoder_vqkd\.blocks\.\d+\.attn)\.qkv\.bias$", key):
            q, k, v = value.chunk(3)
            if not k.is_meta and bool(k.any()):
                raise ValueError(f"{key}: non-zero key bias, which the official VQKD layout cannot hold")
            out[f"{m.group(1)}.q_bias"], out[f"{m.group(1)}.v_bias"] = q, v
        elif key.startswith("quantizer."):
            if key not in renames:
                raise ValueError(f"{key}: only the shared-mapping quantizer has an official layout")
            out[renames[key]] = value
        else:
            out[key] = value
    out["quantize.codebook_used"] = torch.zeros(CODEBOOK_USED_SIZE, device=out["quantize.embedding_vqkd.weight"].device)
    return out


def to_official_args(model) -> dict:
    """The training arguments a released TokenFlow ``.pt`` stores under ``"args"`` (as a dict) that
    describe ``model`` (teacher clipb_224; ``infer_interpolate`` and ``image_size`` give its
    inference resolution). Raises ``ValueError`` for what the official model cannot hold."""
    from ..quant.dual import TOKENFLOW_SCALES

    c = model.config
    scales = tuple(model.quantizer.scales)
    if scales not in (TOKENFLOW_SCALES["clipb_224"], TOKENFLOW_SCALES["clipb_224_interpolate"]):
        raise ValueError(f"scales {list(scales)} are not a clipb_224 TokenFlow schedule")
    dec = {"dec_ch": c["dec_ch"] or c["ch"], "dec_num_res_blocks": c["dec_num_res_blocks"] or c["num_res_blocks"]}
    if dec == ENHANCED_DECODER:
        enhanced = True
    elif dec == {"dec_ch": c["ch"], "dec_num_res_blocks": c["num_res_blocks"]}:
        enhanced = False
    else:
        raise ValueError(f"decoder {dec} is neither TokenFlow's plain nor its enhanced decoder")
    if c.get("codebook_mapping", "shared") != "shared":
        raise ValueError("only the shared-mapping TokenFlow has an official layout")
    args = dict(vq_model="TokenFlow", teacher="clipb_224", codebook_size=int(c["codebook_size"]),
                codebook_embed_dim=int(c["pixel_dim"]), semantic_code_dim=int(c["semantic_dim"]), codebook_l2_norm=True,
                commit_loss_beta=float(c["commitment_weight"]), entropy_loss_ratio=float(c["entropy_weight"]),
                enhanced_decoder=enhanced, infer_interpolate=scales == TOKENFLOW_SCALES["clipb_224_interpolate"],
                image_size=int(model.grid * model.factor))
    if list(c["ch_mult"]) != list(VQ_MODELS["TokenFlow"]):
        args["encoder_ch_mult"] = args["decoder_ch_mult"] = list(c["ch_mult"])
    if int(c["z_channels"]) != 256:
        args["z_channels"] = int(c["z_channels"])
    return args
