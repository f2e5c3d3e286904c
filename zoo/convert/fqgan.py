"""Official FQGAN checkpoints (github.com/showlab/FQGAN, hf ZechenBai/FQGAN) <-> zoo modules.

``"fqgan"``: the whole ``VQModel`` (dual or triple, detected from the keys) -> :class:`zoo.models.fqgan.FQGAN`.
``"fqgan.quantizer"``: only the ``quantize_*`` sub-modules -> :class:`zoo.quant.factorized.FactorizedQuantizer`
(takes ``q([z_vis, z_sem])`` / ``q([z_vis, z_sem_mid, z_sem_high])``).

Where the architecture comes from: the released ``.pt`` files are training checkpoints
``{"model", "ema", "args"}`` (:mod:`zoo.convert.training_args`); widths, depths, ``ch_mult``,
codebooks and the adapters' resolution are read from the weight shapes, and checked against
the settings the file or an official config states (``args.vq_model`` ``"VQ-16"`` means ``ch_mult``
[1, 1, 2, 2, 4], ``"VQ-8"`` [1, 2, 2, 4]; ``encoder_ch_mult``, ``codebook_size``, ``z_channels``,
...) and against ``arch`` (a registry entry's constructor arguments). Attention heads (8) and
GroupNorm groups (32) are the official hard-coded values. Loss weights (``commit_loss_beta``,
``entropy_loss_ratio``, ``disentanglement_ratio``, ``semantic_weight``, ``dropout_p``) come from
the stored settings when present.

Official key layout -> zoo: ``encoder.{visual_head,semantic_head[_mid|_high]}.0.*`` ->
``heads.{g}.adapter.*``; ``encoder.{norm_out,conv_out}_<branch>`` -> ``heads.{g}.{norm_out,conv_out}``;
``quant_conv_<branch>`` -> ``quant_convs.{g}``; ``quantize_<branch>.embedding.weight`` ->
``quantizer.codebooks.{g}.weight`` (the ``codebook_used`` logging buffer is dropped);
``feat_pred_head`` (dual) / ``{mid,high}_sem_feat_pred`` (triple) -> ``feat_heads.<branch>``;
inside the transformers ``ln_1/ln_2/mlp.c_fc/mlp.c_proj/attn.in_proj_*/attn.out_proj`` ->
``norm1/norm2/mlp.fc1/mlp.fc2/attn.qkv/attn.proj``. :func:`to_official_state_dict` is the inverse.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ..checkpoint import load_state_dict_strict, parameters_on_meta
from ..layers.conv import conv_autoencoder_from_state_dict
from . import register_converter
from .architecture import ArchitectureMismatchError, check_stated, merge_settings, same_setting
from .training_args import checkpoint_settings, unwrap_checkpoint

__all__ = ["convert_fqgan", "convert_fqgan_quantizer", "unwrap_checkpoint", "fqgan_variant",
           "fqgan_kwargs_from_official", "official_to_zoo_keys", "to_official_state_dict", "to_official_args",
           "VQ_MODELS", "CODEBOOK_USED_SIZE"]

#: ``VQ_models`` of tokenizer/vq_model_{dual,triple}.py: name -> encoder / decoder ch_mult
VQ_MODELS = {"VQ-16": (1, 1, 2, 2, 4), "VQ-8": (1, 2, 2, 4)}
#: length of the official ``quantize_*.codebook_used`` logging buffer
CODEBOOK_USED_SIZE = 65536
_ADAPTER = {"vis": "visual_head", "sem": "semantic_head", "sem_mid": "semantic_head_mid",
            "sem_high": "semantic_head_high"}
_FEAT = {"dual": {"sem": "feat_pred_head"}, "triple": {"sem_mid": "mid_sem_feat_pred",
                                                       "sem_high": "high_sem_feat_pred"}}
_BLOCK_RENAMES = ((".ln_1.", ".norm1."), (".ln_2.", ".norm2."), (".mlp.c_fc.", ".mlp.fc1."),
                  (".mlp.c_proj.", ".mlp.fc2."), (".attn.in_proj_", ".attn.qkv."), (".attn.out_proj.", ".attn.proj."))
#: FQGAN constructor arguments that only matter for training: the stored value wins, with a warning
_TRAINING = ("commitment_weight", "entropy_weight", "disentangle_weight", "semantic_weight", "semantic_loss", "dropout")


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


def _unrename_blocks(key: str) -> str:
    key = re.sub(r"\.transformer\.blocks\.(\d+)\.", r".transformer.\1.", key)
    for old, new in _BLOCK_RENAMES:
        key = key.replace(new, old)
    return key


def _training_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """FQGAN loss weights from the official names, for the ones the settings state."""
    out = {}
    for ours, theirs in (("commitment_weight", "commit_loss_beta"), ("entropy_weight", "entropy_loss_ratio"),
                         ("semantic_weight", "semantic_weight"), ("dropout", "dropout_p")):
        if theirs in settings:
            out[ours] = float(settings[theirs])
    if "disentanglement_ratio" in settings or "with_disentanglement" in settings:
        on = bool(settings.get("with_disentanglement", True))
        out["disentangle_weight"] = float(settings.get("disentanglement_ratio", 0.1)) if on else 0.0
    return out


def _declared_ch_mult(settings: Mapping[str, Any], source: str) -> tuple[list[int] | None, int | None]:
    """(ch_mult the settings state, downsampling factor the settings state), either may be None."""
    family = settings.get("vq_model") or settings.get("vq_model_family")
    factor = None
    if family is not None:
        if family not in VQ_MODELS:
            raise ArchitectureMismatchError(f"{source}: unknown FQGAN vq_model {family!r} (known: {sorted(VQ_MODELS)})")
        factor = 2 ** (len(VQ_MODELS[family]) - 1)
    mults = [settings.get(k) for k in ("encoder_ch_mult", "decoder_ch_mult") if settings.get(k) is not None]
    if len(mults) == 2 and not same_setting(*mults):
        raise ArchitectureMismatchError(f"{source}: FQGAN with different encoder and decoder ch_mult is not supported")
    declared = list(mults[0]) if mults else (list(VQ_MODELS[family]) if family is not None else None)
    return declared, factor


def fqgan_kwargs_from_official(sd: Mapping[str, torch.Tensor], settings: Mapping[str, Any] | None = None,
                               source: str = "official FQGAN checkpoint") -> dict[str, Any]:
    """:class:`~zoo.models.fqgan.FQGAN` constructor arguments for an official state dict (official key
    names), read from the weight shapes and checked against the stated ``settings`` (official config
    and / or stored training arguments, :func:`~zoo.convert.training_args.checkpoint_settings`)."""
    settings = dict(settings or {})
    variant = fqgan_variant(sd)
    names = _branches(variant)
    shapes = {tuple(sd[f"quantize_{n}.embedding.weight"].shape) for n in names}
    if len(shapes) != 1:
        raise ArchitectureMismatchError(f"{source}: sub-codebooks of different shapes {sorted(shapes)}")
    k, d = shapes.pop()
    if not settings.get("codebook_l2_norm", True):
        raise ValueError("FQGAN checkpoints with codebook_l2_norm=False are not supported")
    conv = conv_autoencoder_from_state_dict(sd)
    ch, ch_mult, num_res = conv["ch"], conv["ch_mult"], conv["num_res_blocks"]
    if (conv["dec_ch"], conv["dec_num_res_blocks"]) != (ch, num_res):
        raise ArchitectureMismatchError(f"{source}: the decoder (width {conv['dec_ch']}, {conv['dec_num_res_blocks']} "
                                        f"res blocks) is not the mirror of the encoder ({ch}, {num_res})")
    declared, factor = _declared_ch_mult(settings, source)
    if factor is not None and 2 ** (len(ch_mult) - 1) != factor:
        raise ArchitectureMismatchError(f"{source}: vq_model {settings.get('vq_model') or settings.get('vq_model_family')!r} "
                                        f"downsamples by {factor}, the weights by {2 ** (len(ch_mult) - 1)} "
                                        f"(ch_mult {ch_mult})")
    factor = 2 ** (len(ch_mult) - 1)
    pos = sd["encoder.visual_head.0.positional_embedding"] if "encoder.visual_head.0.positional_embedding" in sd else None
    image_size = int(round(pos.shape[0] ** 0.5)) * factor if pos is not None else 256
    teacher_dims = {b: int(sd[f"{h}.class_embedding"].shape[-1]) for b, h in _FEAT[variant].items()
                 if f"{h}.class_embedding" in sd}
    adapter_depth = len({m.group(1) for key in sd
                         if (m := re.match(r"encoder\.visual_head\.0\.transformer\.(\d+)\.", key))})
    feat_depth = max((len({m.group(1) for key in sd if (m := re.match(rf"{re.escape(h)}\.transformer\.(\d+)\.", key))})
                      for h in _FEAT[variant].values()), default=0)
    found = dict(variant=variant, codebook_size=int(k), codebook_dim=int(d),
                 z_channels=int(sd["post_quant_conv.weight"].shape[0]), ch=ch, ch_mult=ch_mult, num_res_blocks=num_res,
                 num_groups=32, image_size=image_size, adapter_depth=adapter_depth, adapter_heads=8,
                 teacher_dims=teacher_dims, feat_depth=feat_depth or 3, feat_heads=8)
    check_stated({"codebook_size": settings.get("codebook_size"), "codebook_dim": settings.get("codebook_embed_dim"),
                   "z_channels": settings.get("z_channels"), "ch_mult": declared,
                   "image_size": settings.get("image_size")}, found, source)
    return {**found, **_training_kwargs(settings)}


@register_converter("fqgan.quantizer")
def convert_fqgan_quantizer(state_dict, config, *, config_path=None, files=None, arch=None, **kw):
    """Official ``quantize_*`` weights (alone or inside a whole-model state dict or checkpoint) + settings."""
    from ..quant.factorized import FactorizedQuantizer

    c = checkpoint_settings(state_dict, config, source="official FQGAN checkpoint")
    sd = unwrap_checkpoint(state_dict)
    variant = fqgan_variant(sd)
    names = _branches(variant)
    weights = [sd[f"quantize_{n}.embedding.weight"] for n in names]
    k, d = weights[0].shape
    if c.get("codebook_size", k) != k or c.get("codebook_embed_dim", d) != d:
        raise ValueError(f"config says codebook {c.get('codebook_size')}x{c.get('codebook_embed_dim')}, "
                         f"checkpoint holds {k}x{d}")
    if not c.get("codebook_l2_norm", True):
        raise ValueError("FQGAN checkpoints with codebook_l2_norm=False are not supported")
    t = {"commitment_weight": 0.25, "entropy_weight": 0.0, "disentangle_weight": 0.0, **_training_kwargs(c)}
    q = FactorizedQuantizer(k, d, len(names), names=names, l2_norm=True, beta=t["commitment_weight"],
                            entropy_loss_ratio=t["entropy_weight"], disentangle_ratio=t["disentangle_weight"])
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


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """:class:`~zoo.models.fqgan.FQGAN` -> state dict with the official ``VQModel`` key names (the
    inverse of the conversion; tensors are shared, not copied). The ``codebook_used`` logging
    buffers the zoo drops come back as zeros (their released content is a usage log the model
    never reads)."""
    from ..models.fqgan import BRANCHES

    names = tuple(model.branches)
    variant = next(v for v, branches in BRANCHES.items() if branches == names)
    feat = _FEAT[variant]
    out = {}
    for key, value in model.state_dict().items():
        new = key
        if (m := re.match(r"heads\.(\d+)\.adapter\.(.*)", key)):
            new = _unrename_blocks(f"encoder.{_ADAPTER[names[int(m.group(1))]]}.0.{m.group(2)}")
        elif (m := re.match(r"heads\.(\d+)\.(norm_out|conv_out)\.(weight|bias)$", key)):
            new = f"encoder.{m.group(2)}_{names[int(m.group(1))]}.{m.group(3)}"
        elif (m := re.match(r"quant_convs\.(\d+)\.(weight|bias)$", key)):
            new = f"quant_conv_{names[int(m.group(1))]}.{m.group(2)}"
        elif (m := re.match(r"quantizer\.codebooks\.(\d+)\.weight$", key)):
            branch = names[int(m.group(1))]
            new = f"quantize_{branch}.embedding.weight"
            out[f"quantize_{branch}.codebook_used"] = torch.zeros(CODEBOOK_USED_SIZE, device=value.device)
        elif (m := re.match(r"feat_heads\.(\w+?)\.(.*)", key)):
            new = _unrename_blocks(f"{feat[m.group(1)]}.{m.group(2)}")
        out[new] = value
    return out


def to_official_args(model) -> dict[str, Any]:
    """The training arguments a released FQGAN ``.pt`` stores under ``"args"`` (as a dict; write it as
    ``argparse.Namespace(**args)``) that describe ``model``: ``vq_model`` names the released ``ch_mult``
    (other ones are written as ``encoder_ch_mult`` / ``decoder_ch_mult``), ``z_channels`` only when it
    is not the official default 256. Raises ``ValueError`` for what the official model cannot hold
    (other heads or GroupNorm groups, a decoder unlike the encoder)."""
    c = model.config
    for key, want in (("adapter_heads", 8), ("feat_heads", 8), ("num_groups", 32)):
        if c.get(key, want) != want:
            raise ValueError(f"FQGAN {key}={c[key]} has no official setting (the official code uses {want})")
    args: dict[str, Any] = dict(
        codebook_size=int(c["codebook_size"]), codebook_embed_dim=int(c["codebook_dim"]), codebook_l2_norm=True,
        commit_loss_beta=float(c["commitment_weight"]), entropy_loss_ratio=float(c["entropy_weight"]),
        dropout_p=float(c["dropout"]), image_size=int(c["image_size"]), with_clip_supervision=bool(c["teacher_dims"]),
        with_disentanglement=float(c["disentangle_weight"]) > 0,
        disentanglement_ratio=float(c["disentangle_weight"]) or 0.1,
        semantic_weight=float(c["semantic_weight"]))
    family = next((name for name, mult in VQ_MODELS.items() if list(mult) == list(c["ch_mult"])), None)
    if family is not None:
        args["vq_model"] = family
    else:
        args["encoder_ch_mult"] = args["decoder_ch_mult"] = list(c["ch_mult"])
    if int(c["z_channels"]) != 256:
        args["z_channels"] = int(c["z_channels"])
    return args


@register_converter("fqgan")
def convert_fqgan(state_dict, config, *, config_path=None, files=None, arch=None, **kw):
    """Whole official ``VQModel`` (dual / triple; a released ``.pt`` checkpoint or a bare state dict)
    + optional official config -> :class:`~zoo.models.fqgan.FQGAN`.

    arch: expected FQGAN constructor arguments (a registry entry's): they fill what the checkpoint
    does not state, and any architecture setting the checkpoint states differently raises
    :class:`~zoo.convert.architecture.ArchitectureMismatchError`. kw: FQGAN constructor overrides
    of training settings (e.g. ``semantic_loss``).
    """
    from ..models.fqgan import FQGAN

    source = str(config_path or "official FQGAN checkpoint")
    settings = checkpoint_settings(state_dict, config, source=source)
    sd = unwrap_checkpoint(state_dict)
    found = fqgan_kwargs_from_official(sd, settings, source=source)
    kwargs = {**merge_settings(found, arch, source=source, soft=_TRAINING), **kw}
    with parameters_on_meta():
        model = FQGAN(**kwargs)
    load_state_dict_strict(model, official_to_zoo_keys(sd, found["variant"]), source=f"official FQGAN {found['variant']}")
    return model.eval()
