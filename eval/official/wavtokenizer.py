"""WavTokenizer (jishengpeng/WavTokenizer) against the zoo: encode + decode of real speech.

Official side: ``decoder.pretrained.WavTokenizer.from_hparams0802(<checkout>/configs/...yaml)``
built under ``torch.manual_seed(seed)``; the codebook (which the official code would fill by
k-means on its first training batch) is set, seeded, to encoder frames of a calibration clip
(alsa ``Front_Center``, not the test clip) plus Gaussian noise of the frames' per-channel spread,
so codes are distinct and the nearest one is well defined. The timed call is the official
inference path: ``encode_infer`` -> ``codes_to_features`` -> ``decode`` (bandwidth id 0). Zoo
side: ``zoo.load_official("wavtokenizer", ...)``, ``tok.decode(tok.encode(x))``.

Ids are compared frame by frame. The two encoders compute the same latents in different fp32
summation orders (max difference reported as ``latent_max_abs_diff``), so a frame whose two
nearest codes are closer than that difference can resolve either way: :func:`near_tie` decides,
in float64, whether a differing id is such a frame. Any other difference fails the check.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkout import OfficialSource
from .options import resolve

__all__ = ["SOURCE", "PRESETS", "AUDIO_ATOL", "resolve_options", "describe", "make_inputs", "build_official",
           "build_zoo", "check", "near_tie", "seeded_codebook"]

SOURCE = OfficialSource(
    repo="jishengpeng/WavTokenizer", commit="5cf440d91ac420ca338f117b7003a77450d64730",
    markers=("decoder/pretrained.py", "encoder/modules/seanet.py",
             "configs/wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml"),
    packages=("einops", "yaml", "huggingface_hub"))

PRESETS = {
    "75": {"config": "configs/wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
           "name": "WavTokenizer 75 tok/s"},
    "40": {"config": "configs/wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
           "name": "WavTokenizer 40 tok/s"},
}
SAMPLE_RATE = 24000

#: largest allowed |official - zoo| of audio decoded from the SAME ids (samples in [-1, 1]):
#: -80 dB, far below audibility; both sides run the same fp32 maths in different orders
#: (observed ~1e-7)
AUDIO_ATOL = 1e-4


def resolve_options(preset: str, options: dict) -> dict:
    """Options: ``batch`` (clips per call, default 1), ``seconds`` (clip length, default 10)."""
    return resolve("wavtokenizer", options, {"batch": 1, "seconds": 10.0}, {"batch": (1, None), "seconds": (0.1, None)})


def describe(preset: str, options: dict) -> dict:
    return {"name": PRESETS[preset]["name"], "operation": "encode + decode", "batch": options["batch"],
            "input": f"{options['seconds']:g} s speech"}


def make_inputs(preset: str, options: dict) -> dict[str, torch.Tensor]:
    from ..benchmark import speech_input

    return {"audio": speech_input(SAMPLE_RATE, options["seconds"], options["batch"])}


def seeded_codebook(frames: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """``size`` codes: rows of ``frames`` ``[F, D]`` drawn with replacement plus N(0, std_d^2) noise
    per channel d (std over the frames), from ``torch.Generator().manual_seed(seed)``."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, frames.shape[0], (size,), generator=g)
    return frames[idx] + frames.std(0) * torch.randn(size, frames.shape[1], generator=g)


class _Official:
    def __init__(self, model, x: torch.Tensor):
        self.model, self.x = model, x
        self.bw = torch.tensor([0])

    def run(self):
        _, codes = self.model.encode_infer(self.x, bandwidth_id=self.bw)
        return codes, self.model.decode(self.model.codes_to_features(codes), bandwidth_id=self.bw)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        codes, audio = self.run()
        encodec = self.model.feature_extractor.encodec
        return {"ids": codes[0], "audio": audio, "latents": encodec.encoder(self.x[:, None]),
                "codebook": encodec.quantizer.vq.layers[0]._codebook.embed}


class _Zoo:
    def __init__(self, tok, x: torch.Tensor):
        self.tok, self.x = tok, x

    def run(self):
        tokens = self.tok.encode(self.x)
        return tokens.ids, self.tok.decode(tokens)

    def outputs(self, other=None) -> dict[str, torch.Tensor]:
        ids, audio = self.run()
        out = {"ids": ids, "audio": audio, "latents": self.tok.latents(self.x)}
        if other is not None:
            out["audio_from_official_ids"] = self.tok.decode(other["ids"], bandwidth_id=0)
        return out


def build_official(preset: str, workdir: Path, seed: int, options: dict, root: Path):
    import shutil

    from decoder.pretrained import WavTokenizer
    from safetensors.torch import load_file, save_file

    from zoo.data.offline import load_speech, speech_paths

    config = root / PRESETS[preset]["config"]
    torch.manual_seed(seed)
    model = WavTokenizer.from_hparams0802(str(config)).eval()
    encodec = model.feature_extractor.encodec
    book = encodec.quantizer.vq.layers[0]._codebook
    calibration = load_speech(speech_paths("alsa")[0], SAMPLE_RATE)[None, None]
    frames = encodec.encoder(calibration)[0].T  # [F, D]
    codes = seeded_codebook(frames, book.embed.shape[0], seed + 1)
    book.embed.copy_(codes)
    book.embed_avg.copy_(codes)
    book.inited.fill_(1.0)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(workdir / "official_state_dict.safetensors"))
    shutil.copyfile(config, workdir / "official_config.yaml")
    return _Official(model, load_file(str(workdir / "inputs.safetensors"))["audio"])


def build_zoo(preset: str, workdir: Path, options: dict, seed: int = 0):
    import zoo
    from safetensors.torch import load_file

    tok = zoo.load_official("wavtokenizer", workdir / "official_state_dict.safetensors",
                            workdir / "official_config.yaml").eval()
    return _Zoo(tok, load_file(str(workdir / "inputs.safetensors"))["audio"])


def near_tie(x: torch.Tensor, e_a: torch.Tensor, e_b: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Whether codes a and b are within reach of each other for latents ``x`` ``[N, D]`` known to
    within ``dx`` ``[N]`` (the official-zoo latent difference, 2-norm per frame): True where the
    float64 gap of squared distances ``| |x-e_a|^2 - |x-e_b|^2 |`` is at most
    ``2 dx |e_a - e_b|`` (what moving x by dx can change) plus the fp32 rounding of the distance
    ``|x|^2 - 2 x.e + |e|^2``: the worst-case bound ``D u sum|x_i e_i|`` of a D-term fp32 dot
    product (u = 2^-24), taken as ``D 2^-23 (|x|^2 + |e|^2)``, i.e. doubled, for each side."""
    x, e_a, e_b, dx = x.double(), e_a.double(), e_b.double(), dx.double()
    gap = ((x - e_a).pow(2).sum(-1) - (x - e_b).pow(2).sum(-1)).abs()
    shift = 2 * dx * (e_a - e_b).norm(dim=-1)
    rounding = x.shape[-1] * 2.0 ** -23 * (2 * x.pow(2).sum(-1) + e_a.pow(2).sum(-1) + e_b.pow(2).sum(-1))
    return gap <= shift + rounding


def check(preset: str, options: dict, official: dict, ours: dict) -> dict:
    """Ids equal except at near-ties (:func:`near_tie`); audio decoded from the official ids within
    :data:`AUDIO_ATOL` of the official audio."""
    a, b = official["ids"], ours["ids"]
    if a.shape != b.shape:
        return {"ok": False, "summary": f"id shapes differ: official {tuple(a.shape)}, zoo {tuple(b.shape)}"}
    lat_a, lat_b = official["latents"].transpose(1, 2), ours["latents"].transpose(1, 2)  # [B, F, D]
    dx = (lat_a - lat_b).norm(dim=-1)
    where = (a != b).nonzero(as_tuple=True)
    book = official["codebook"]
    ties = near_tie(lat_a[where], book[a[where]], book[b[where]], dx[where])
    n_diff, n_ties = int(where[0].numel()), int(ties.sum())
    audio_diff = float((official["audio"] - ours["audio_from_official_ids"]).abs().max())
    ok = n_ties == n_diff and audio_diff <= AUDIO_ATOL
    ids_text = (f"{a.numel() - n_diff}/{a.numel()} ids equal" + (f" (all {n_diff} others near-ties)" if n_diff else "")
                if n_ties == n_diff else f"{n_diff - n_ties} ids differ beyond near-ties")
    return {"ok": ok, "ids_total": a.numel(), "ids_differ": n_diff, "ids_differ_near_ties": n_ties,
            "latent_max_abs_diff": float((lat_a - lat_b).abs().max()), "audio_max_abs_diff_same_ids": audio_diff,
            "audio_atol": AUDIO_ATOL,
            "summary": f"{ids_text}; audio from the same ids max abs diff {audio_diff:.1e} (tolerance {AUDIO_ATOL:.0e})"}
