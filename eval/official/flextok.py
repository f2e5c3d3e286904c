"""FlexTok (apple/ml-flextok) against the zoo: the full decode (flow sampler + VAE), or encode.

Official side: ``hydra.utils.instantiate(official_flextok_config(...))`` (the published
architecture, :mod:`.flextok_config`) under ``torch.manual_seed(seed)``, every FlexAttention
module switched to the official SDPA fallback (``use_flex_attention = False``: flex_attention
needs compilation, which the official code does not do on CPU), then every non-VAE parameter
re-drawn from a seeded generator (:func:`reinit_parameters`: the official initialisation zeroes
the output heads, which would give constant tokens and a zero velocity). Decode is
``detokenize(ids, timesteps, guidance_scale, perform_norm_guidance, generator)`` with the official
README's settings (20 steps, guidance 7.5, APG), mapped to [0, 1]; encode is ``tokenize``.
Zoo side: ``zoo.load_official("flextok", ...)``, ``tok.decode(ids, steps=, guidance=, apg=,
generator=)`` / ``tok.encode``. Both samplers draw their starting noise from the same seeded
generator, one ``[1, 16, 32, 32]`` draw per image, so decodes are comparable.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkout import OfficialSource
from .options import resolve

__all__ = ["SOURCE", "PRESETS", "IMAGE_ATOL", "resolve_options", "describe", "make_inputs", "build_official",
           "build_zoo", "check", "reinit_parameters"]

SOURCE = OfficialSource(
    repo="apple/ml-flextok", commit="87d00cc8babf4a25ffce0f3f0c4d8b529d3d6abf",
    markers=("flextok/flextok_wrapper.py", "flextok/model/layers/attention.py",
             "flextok/flow_matching/pipelines.py"),
    packages=("hydra", "omegaconf", "mup", "diffusers", "einops"))

PRESETS = {"d12_d12": {"depths": (12, 12), "name": "FlexTok d12-d12"},
           "d18_d18": {"depths": (18, 18), "name": "FlexTok d18-d18"},
           "d18_d28": {"depths": (18, 28), "name": "FlexTok d18-d28"}}
IMAGE_SIZE = 256

#: largest allowed |official - zoo| of an image decoded from the same ids and noise ([0, 1]):
#: a quarter of one 8-bit step, as for TiTok. The sampler integrates 20 steps of two transformer
#: passes each, and fp32 summation-order differences grow along the trajectory (observed ~1e-5).
IMAGE_ATOL = 0.25 / 255

_DEFAULTS = {"batch": 1, "op": "decode", "steps": 20, "guidance": 7.5, "apg": True, "k": 256}


def resolve_options(preset: str, options: dict) -> dict:
    """Options: ``batch`` (1), ``op`` (``"decode"`` | ``"encode"``), ``steps`` (20), ``guidance`` (7.5),
    ``apg`` (True), ``k`` (tokens decoded, 256)."""
    return resolve("flextok", options, _DEFAULTS, {"batch": (1, None), "steps": (1, None), "k": (1, 256)},
                   {"op": ("decode", "encode")})


def describe(preset: str, options: dict) -> dict:
    if options["op"] == "encode":
        op, inp = "encode", f"{IMAGE_SIZE}x{IMAGE_SIZE} photo"
    else:
        op = (f"full decode: {options['steps']} Euler steps, guidance {options['guidance']:g}"
              f"{' (APG)' if options['apg'] else ''}, VAE")
        inp = f"{options['k']} tokens"
    return {"name": PRESETS[preset]["name"], "operation": op, "batch": options["batch"], "input": inp}


def make_inputs(preset: str, options: dict) -> dict[str, torch.Tensor]:
    from .titok import make_inputs as photos

    return photos(preset, {"batch": options["batch"]})


def reinit_parameters(model: torch.nn.Module, seed: int, skip_prefix: str = "vae.") -> None:
    """Re-draw every parameter not under ``skip_prefix``, in ``named_parameters`` order, from
    ``torch.Generator().manual_seed(seed)``: norm weights ``1 + 0.1 N(0, 1)``; everything else
    ``N(0, 1) / sqrt(fan_in)`` (fan_in = elements per output row; a vector's own length)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.startswith(skip_prefix):
            continue
        noise = torch.randn(p.shape, generator=g)
        if p.dim() == 1 and "norm" in name:
            p.copy_(1 + 0.1 * noise)
        else:
            p.copy_(noise / (p[0].numel() if p.dim() >= 2 else p.numel()) ** 0.5)


class _Official:
    def __init__(self, model, x: torch.Tensor, options: dict, seed: int):
        self.model, self.x, self.options, self.seed = model, x, options, seed
        self.ids = None

    def tokenize(self, x):
        return torch.cat(self.model.tokenize(x * 2 - 1))

    def decode(self, ids):
        o = self.options
        out = self.model.detokenize(list(ids[:, :o["k"]].split(1)), vae_image_sizes=IMAGE_SIZE // 8,
                                    timesteps=o["steps"], guidance_scale=o["guidance"],
                                    perform_norm_guidance=o["apg"], verbose=False,
                                    generator=torch.Generator().manual_seed(self.seed))
        return ((out + 1) / 2).clamp(0.0, 1.0)

    def run(self):
        if self.options["op"] == "encode":
            return self.tokenize(self.x)
        if self.ids is None:
            self.ids = self.tokenize(self.x)
        return self.decode(self.ids)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        ids = self.tokenize(self.x)
        return {"ids": ids, "image": self.decode(ids)}


class _Zoo:
    def __init__(self, tok, x: torch.Tensor, options: dict, seed: int):
        self.tok, self.x, self.options, self.seed = tok, x, options, seed
        self.ids = None

    def decode(self, ids):
        o = self.options
        return self.tok.decode(ids[:, :o["k"]], steps=o["steps"], guidance=o["guidance"], apg=o["apg"],
                               generator=torch.Generator().manual_seed(self.seed))

    def run(self):
        if self.options["op"] == "encode":
            return self.tok.encode(self.x).ids
        if self.ids is None:
            self.ids = self.tok.encode(self.x).ids
        return self.decode(self.ids)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        out = {"ids": self.tok.encode(self.x).ids}
        if other is not None:
            out["image_from_official_ids"] = self.decode(other["ids"])
        return out


def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path):
    import json

    from hydra.utils import instantiate
    from safetensors.torch import load_file, save_file

    from .flextok_config import official_flextok_config

    cfg = official_flextok_config(*PRESETS[preset]["depths"], image_size=IMAGE_SIZE)
    torch.manual_seed(seed)
    model = instantiate(cfg).eval()
    for m in model.modules():
        if hasattr(m, "use_flex_attention"):
            m.use_flex_attention = False
    reinit_parameters(model, seed + 1)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(workdir / "official_state_dict.safetensors"))
    (workdir / "official_config.json").write_text(json.dumps(cfg))
    return _Official(model, load_file(str(workdir / "inputs.safetensors"))["image"], options, seed)


def build_zoo(preset: str, workdir: Path, options: dict, seed: int):
    import zoo
    from safetensors.torch import load_file

    tok = zoo.load_official("flextok", workdir / "official_state_dict.safetensors",
                            workdir / "official_config.json").eval()
    return _Zoo(tok, load_file(str(workdir / "inputs.safetensors"))["image"], options, seed)


def check(preset: str, options: dict, official: dict, ours: dict) -> dict:
    """Ids equal (exact); the image decoded from the official ids with the same noise within
    :data:`IMAGE_ATOL` of the official one."""
    a, b = official["ids"], ours["ids"]
    ids_equal = a.shape == b.shape and torch.equal(a, b)
    n_diff = int((a != b).sum()) if a.shape == b.shape else -1
    diff = float((official["image"] - ours["image_from_official_ids"]).abs().max())
    ok = ids_equal and diff <= IMAGE_ATOL
    ids_text = "ids identical" if ids_equal else f"{n_diff}/{a.numel()} ids differ"
    return {"ok": ok, "ids_equal": ids_equal, "ids_differ": n_diff, "ids_total": a.numel(),
            "image_max_abs_diff_same_ids": diff, "image_atol": IMAGE_ATOL,
            "summary": f"{ids_text}; decoded image max abs diff {diff:.1e} (tolerance {IMAGE_ATOL:.1e})"}
