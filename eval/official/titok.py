"""TiTok (bytedance/1d-tokenizer) against the zoo: encode + decode of real photos.

Official side: ``modeling.titok.TiTok(OmegaConf.load(<checkout>/configs/infer/TiTok/titok_*.yaml))``
built under ``torch.manual_seed(seed)`` (the official initialisation: random weights at the
published sizes), ``encode(x)[1]["min_encoding_indices"]`` then ``decode_tokens(ids).clamp(0, 1)``
as in the official demo. Zoo side: ``zoo.load_official("titok", <its state dict>, <its config>)``,
``tok.decode(tok.encode(x))``. :mod:`eval.official.onedpiece` reuses this with One-D-Piece's code.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkout import OfficialSource
from .options import resolve

__all__ = ["SOURCE", "PRESETS", "IMAGE_ATOL", "resolve_options", "describe", "make_inputs", "build_official",
           "build_zoo", "check", "image_runners"]

SOURCE = OfficialSource(
    repo="bytedance/1d-tokenizer", commit="942a96fbdd873780179d1b78d5462911528bf8c8",
    markers=("modeling/titok.py", "modeling/modules/maskgit_vqgan.py", "configs/infer/TiTok/titok_l32.yaml"),
    packages=("omegaconf", "einops", "huggingface_hub"))

#: preset -> (config file in the checkout, name in the README)
PRESETS = {
    "l32": {"config": "configs/infer/TiTok/titok_l32.yaml", "name": "TiTok-L-32"},
    "b64": {"config": "configs/infer/TiTok/titok_b64.yaml", "name": "TiTok-B-64"},
    "s128": {"config": "configs/infer/TiTok/titok_s128.yaml", "name": "TiTok-S-128"},
}

#: largest allowed |official - zoo| of a decoded image in [0, 1]: a quarter of one 8-bit step
#: (1/255), so the saved 8-bit images agree except where a value sits on a rounding boundary.
#: Both sides run the same fp32 maths in different summation orders (observed ~3e-5).
IMAGE_ATOL = 0.25 / 255


def resolve_options(preset: str, options: dict) -> dict:
    """Options: ``batch`` (photos per call, default 1)."""
    return resolve("titok", options, {"batch": 1}, {"batch": (1, None)})


def describe(preset: str, options: dict, presets: dict = PRESETS) -> dict:
    return {"name": presets[preset]["name"], "operation": "encode + decode", "batch": options["batch"],
            "input": "256x256 photo"}


def make_inputs(preset: str, options: dict) -> dict[str, torch.Tensor]:
    """Real photos ``[batch, 3, 256, 256]`` in [0, 1] (scikit-image astronaut first, then mate-backgrounds)."""
    from zoo.data.offline import load_photo, photos

    b = options["batch"]
    x = load_photo("astronaut", 256)[None]
    if b > 1:
        x = torch.cat([x, photos(256, limit=b - 1, include_skimage=False)])
    return {"image": x}


class _Official:
    def __init__(self, model, x: torch.Tensor, length_kw: dict):
        self.model, self.x, self.length_kw = model, x, length_kw

    def run(self):
        ids = self.model.encode(self.x)[1]["min_encoding_indices"]
        return ids, self.model.decode_tokens(ids, **self.length_kw).clamp(0.0, 1.0)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        ids, image = self.run()
        return {"ids": ids.reshape(ids.shape[0], -1), "image": image}


class _Zoo:
    def __init__(self, tok, x: torch.Tensor, length_kw: dict):
        self.tok, self.x, self.length_kw = tok, x, length_kw

    def run(self):
        tokens = self.tok.encode(self.x)
        return tokens.ids, self.tok.decode(tokens, **self.length_kw)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        ids, image = self.run()
        out = {"ids": ids, "image": image}
        if other is not None:  # the official ids through the zoo decoder: decode parity on identical input
            out["image_from_official_ids"] = self.tok.decode(other["ids"], **self.length_kw)
        return out


def image_runners(module: str, cls_name: str, converter: str, length_kw: dict | None = None):
    """(build_official, build_zoo) for a TiTok-like official class ``module.cls_name``."""

    def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path, presets: dict):
        import importlib
        import json

        from omegaconf import OmegaConf
        from safetensors.torch import load_file, save_file

        cfg = OmegaConf.load(root / presets[preset]["config"])
        cls = getattr(importlib.import_module(module), cls_name)
        torch.manual_seed(seed)
        model = cls(cfg).eval()
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                  str(workdir / "official_state_dict.safetensors"))
        (workdir / "official_config.json").write_text(json.dumps(OmegaConf.to_container(cfg, resolve=True)))
        return _Official(model, load_file(str(workdir / "inputs.safetensors"))["image"], dict(length_kw or {}))

    def build_zoo(preset: str, workdir: Path, options: dict, seed: int = 0):
        import zoo
        from safetensors.torch import load_file

        tok = zoo.load_official(converter, workdir / "official_state_dict.safetensors",
                                workdir / "official_config.json").eval()
        return _Zoo(tok, load_file(str(workdir / "inputs.safetensors"))["image"], dict(length_kw or {}))

    return build_official, build_zoo


_build_official, _build_zoo = image_runners("modeling.titok", "TiTok", "titok")


def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path):
    return _build_official(preset, workdir, seed, options, root, PRESETS)


def build_zoo(preset: str, workdir: Path, options: dict, seed: int = 0):
    return _build_zoo(preset, workdir, options, seed)


def check(preset: str, options: dict, official: dict, ours: dict) -> dict:
    """Ids equal (exact); decoded images within :data:`IMAGE_ATOL`, both from each side's own ids
    and from the official ids through the zoo decoder."""
    ids_equal = official["ids"].shape == ours["ids"].shape and torch.equal(official["ids"], ours["ids"])
    n_diff = int((official["ids"] != ours["ids"]).sum()) if official["ids"].shape == ours["ids"].shape else -1
    diff = float((official["image"] - ours["image"]).abs().max())
    diff_same_ids = float((official["image"] - ours["image_from_official_ids"]).abs().max())
    ok = ids_equal and max(diff, diff_same_ids) <= IMAGE_ATOL
    ids_text = "ids identical" if ids_equal else f"{n_diff}/{official['ids'].numel()} ids differ"
    return {"ok": ok, "ids_equal": ids_equal, "ids_differ": n_diff, "ids_total": official["ids"].numel(),
            "image_max_abs_diff": diff, "image_max_abs_diff_same_ids": diff_same_ids, "image_atol": IMAGE_ATOL,
            "summary": f"{ids_text}; image max abs diff {diff:.1e} (tolerance {IMAGE_ATOL:.1e})"}
