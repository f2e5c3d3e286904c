"""``scripts/evaluate.py`` / ``python -m zoo eval``: evaluate any tokenizer on a data folder.

Encodes and decodes every item of ``--data`` (images, audio files or videos, by the
tokenizer's modality) in batches on ``--device``, updates the requested metrics and writes
``--out/report.json`` (metric -> value + protocol), ``report.md`` and PNG figures. Under
``accelerate launch`` (or torchrun) global batches are dealt round-robin to the processes and
the torchmetrics states are synchronised, so the numbers do not depend on the process count.

``pfid`` and every ``p_<metric>`` use one perturbed reconstruction per batch (RobusTok's latent
perturbation, ``eval.pfid``; ``--perturb-alpha/--perturb-delta/--perturb-seed/--perturb-mode``,
alias ``--pfid-*``), compared with the original input as the clean metric is; each such entry
carries alpha, delta, seed and the measured fraction of changed tokens in its protocol and label.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["main", "build_parser", "evaluate", "METRICS"]

#: metrics by modality (audio ones come from eval.audio.AUDIO_METRICS); ``p_<metric>`` is the metric
#: of the latent-perturbed reconstruction against the original (eval.pfid; --perturb-alpha/-delta/-seed)
METRICS = {
    "image": ("psnr", "ssim", "ms_ssim", "lpips", "rfid", "pfid", "usage",
              "p_psnr", "p_ssim", "p_ms_ssim", "p_lpips"),
    "video": ("psnr", "ssim", "lpips", "fvd", "usage", "p_psnr", "p_ssim", "p_lpips", "p_fvd"),
    "audio": ("si_sdr", "mel_distance", "pesq", "stoi", "utmos", "dnsmos", "usage",
              "p_si_sdr", "p_mel_distance", "p_pesq", "p_stoi", "p_utmos", "p_dnsmos"),
}
DEFAULTS = {
    "image": ("psnr", "ssim", "ms_ssim", "lpips", "rfid", "usage"),
    "video": ("psnr", "ssim", "lpips", "fvd", "usage"),
    "audio": ("si_sdr", "mel_distance", "pesq", "stoi", "usage"),
}
_MAX_POSITION_TABLE = 2 ** 25  # positions x groups x codes tracked for per-position entropy


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, help="registered name (zoo.list_tokenizers()) or a zoo-format folder")
    p.add_argument("--data", required=True, help="folder of images / audio (wav, flac, ogg) / videos, or "
                   "offline:photos, offline:speech_nl|en|alsa, offline:photo_clips")
    p.add_argument("--metrics", default=None, help="comma-separated; default by modality: "
                   + "; ".join(f"{m}: {','.join(v)}" for m, v in DEFAULTS.items())
                   + ". p_<metric> (e.g. p_stoi, p_pesq, p_mel_distance, p_psnr, p_fvd): the metric of the "
                   "reconstruction from latent-perturbed tokens against the original (--perturb-*)")
    p.add_argument("--out", required=True, help="output folder (report.json, report.md, figures)")
    p.add_argument("--device", default=None, help="cuda when present, else cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-samples", type=int, default=None, help="first N items of --data (default: all)")
    p.add_argument("--pretrained", action="store_true", help="load the registry entry's weights")
    p.add_argument("--weights", default=None, help="local weights folder/file for the registry entry")
    p.add_argument("--revision", default=None)
    p.add_argument("--tokenizer-kwargs", default=None, help="JSON builder overrides (untrained models only)")
    p.add_argument("--seed", type=int, default=0, help="seeds untrained weights and samplers")
    p.add_argument("--image-size", type=int, default=None, help="square input side (default: registry input size)")
    p.add_argument("--num-frames", type=int, default=None, help="video clip length (default: registry input size)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="audio clips are truncated to this length")
    p.add_argument("--inception-weights", default=None, help="pt_inception-2015-12-05-6726825d.pth "
                   "(else $ZOO_INCEPTION_WEIGHTS, torch hub cache, download)")
    p.add_argument("--fid-reference", default=None, help=".npz reference statistics (mu, sigma) replacing the "
                   "statistics of the evaluated images")
    p.add_argument("--save-fid-reference", default=None, help="write the evaluated images' statistics to this .npz")
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg", "squeeze"))
    p.add_argument("--lpips-weights", default=None, help="torchvision backbone weights (else $ZOO_LPIPS_WEIGHTS)")
    p.add_argument("--pfid-alpha", "--perturb-alpha", type=float, default=None, help="latent perturbation of "
                   "pfid and the p_<metric> metrics: per-token probability (default 0.5)")
    p.add_argument("--pfid-delta", "--perturb-delta", type=int, default=None, help="candidate count (default 100, "
                   "capped at the codebook size)")
    p.add_argument("--pfid-seed", "--perturb-seed", type=int, default=0)
    p.add_argument("--pfid-mode", "--perturb-mode", default="encoder", choices=("encoder", "tokens"),
                   help="candidates nearest to the encoder output (RobusTok) or to the token's own code")
    p.add_argument("--i3d-weights", default=None, help="Kinetics-400 I3D weights (else $ZOO_I3D_WEIGHTS)")
    p.add_argument("--utmos-weights", default=None)
    p.add_argument("--sweep", default="auto", help="token counts for the quality-vs-tokens curve of "
                   "variable-length tokenizers: 'auto' (1,2,4,...,max), a comma list, or 'none'")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


# ----------------------------------------------------------------------------- setup
def _distributed(device_arg: str | None):
    """(rank, world_size, device); initialises the process group under accelerate/torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        state = PartialState(cpu=device_arg == "cpu")
        device = state.device if device_arg in (None, "cuda") else torch.device(device_arg)  # cuda -> cuda:<rank>
        return state.process_index, state.num_processes, device
    device = device_arg or ("cuda" if torch.cuda.is_available() else "cpu")
    return 0, 1, torch.device(device)


def load_tokenizer(args) -> tuple[Any, Any]:
    """(tokenizer, registry info or None) from a registered name or a zoo-format folder."""
    import zoo

    kwargs = json.loads(args.tokenizer_kwargs) if args.tokenizer_kwargs else {}
    torch.manual_seed(args.seed)  # untrained weights are identical on every process
    if Path(args.tokenizer).is_dir():
        return zoo.from_pretrained(args.tokenizer), None
    info = zoo.get_info(args.tokenizer)
    tok = zoo.create_tokenizer(args.tokenizer, pretrained=args.pretrained, weights=args.weights,
                               revision=args.revision, **kwargs)
    return tok, info


def _input_shape(tok, info, args) -> tuple[int, ...]:
    size = getattr(info, "input_size", None) if info is not None else None
    cfg = tok.config
    if tok.modality == "image":
        side = args.image_size or (size[-1] if size else cfg.get("image_size") or 256)
        return (int(side), int(side))
    if tok.modality == "video":
        shape = size or cfg.get("input_size") or (16, 128, 128)
        return (int(args.num_frames or shape[0]), int(args.image_size or shape[-2]), int(args.image_size or shape[-1]))
    return ()


class _Data:
    """Items of ``--data`` for one modality; ``batch(indices)`` -> (inputs, lengths or None)."""

    def __init__(self, tok, args, shape):
        self.modality = tok.modality
        if self.modality == "image":
            from zoo.data.image import ImageFolder, list_images

            self.ds = ImageFolder(list_images(args.data), size=shape[-1], random_crop=False)
            self.protocol = {"preprocessing": f"short side resized to {shape[-1]} (PIL bicubic, reducing_gap=3), "
                                              f"centre crop {shape[-1]}x{shape[-1]}, float in [0, 1]"}
        elif self.modality == "video":
            from zoo.data.video import video_dataset

            self.ds = video_dataset(args.data, frames=shape[0], size=shape[-1], **(
                {} if str(args.data).startswith("offline:") else {"random_crop": False}))
            self.protocol = {"preprocessing": f"{shape[0]} consecutive frames (centre clip), short side resized to "
                                              f"{shape[-1]}, centre crop"}
        else:
            from zoo.data.audio import list_audio

            self.paths = list_audio(args.data)
            self.rate, self.max_seconds = int(tok.sample_rate), args.max_seconds
            self.protocol = {"preprocessing": f"mono, resampled to {self.rate} Hz (sinc), clipped to [-1, 1], "
                                              f"first {self.max_seconds:g} s of each file, zero-padded in a batch"}
        total = len(self.ds) if self.modality != "audio" else len(self.paths)
        self.n = min(total, args.num_samples) if args.num_samples else total

    def item_name(self, index: int) -> str:
        if self.modality == "audio":
            return str(self.paths[index])
        paths = getattr(self.ds, "paths", None)
        return str(paths[index]) if paths is not None else f"item {index}"

    def batch(self, indices: list[int]):
        if self.modality != "audio":
            return torch.stack([self.ds[i] for i in indices]), None
        from zoo.data.offline import load_speech

        waves = [load_speech(self.paths[i], self.rate, max_seconds=self.max_seconds) for i in indices]
        lengths = torch.tensor([w.numel() for w in waves])
        out = torch.zeros(len(waves), int(lengths.max()))
        for j, w in enumerate(waves):
            out[j, : w.numel()] = w
        return out, lengths


# ----------------------------------------------------------------------------- metrics
class _Suite:
    """The requested metrics for one run, updated batch by batch."""

    def __init__(self, tok, names, args, device, requested, shape):
        self.tok, self.args, self.device, self.modality = tok, args, device, tok.modality
        self.metrics: dict[str, Any] = {}
        self.protocols: dict[str, dict] = {}
        self.labels: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.inception = None
        for name in names:
            try:
                self._add(name, shape)
            except Exception as e:  # a default metric that cannot run is reported, an explicit one fails
                if requested:
                    raise
                self.skipped[name] = f"{type(e).__name__}: {e}".split("\n")[0][:300]

    def _inception_net(self):
        if self.inception is None:
            from .fid import InceptionFeatures

            self.inception = InceptionFeatures(self.args.inception_weights).to(self.device)
        return self.inception

    def _add(self, name: str, shape) -> None:
        from .image import IMAGE_PROTOCOL, LPIPS, MS_SSIM_MIN_SIZE, ImageFidelity

        m = self.modality
        if name not in METRICS[m]:
            raise ValueError(f"metric {name!r} is not available for {m} tokenizers; choose from {METRICS[m]}")
        from .pfid import base_metric

        if base_metric(name) is not None:
            return self._add_perturbed(name, shape)
        if name in ("psnr", "ssim", "ms_ssim"):
            if name == "ms_ssim" and min(shape[-2:]) < MS_SSIM_MIN_SIZE:
                raise ValueError(f"MS-SSIM needs inputs of at least {MS_SSIM_MIN_SIZE} px, got {shape[-2:]}")
            self.metrics[name] = ImageFidelity((name,)).to(self.device)
            self.protocols[name] = {"definition": IMAGE_PROTOCOL[name], "input": IMAGE_PROTOCOL["input"]}
            if m == "video":
                self.protocols[name]["frames"] = "per frame, mean over all frames of all clips"
        elif name == "lpips":
            metric = LPIPS(self.args.lpips_net, backbone_weights=self.args.lpips_weights).to(self.device)
            self.metrics[name], self.protocols[name] = metric, dict(metric.protocol)
            if m == "video":
                self.protocols[name]["frames"] = "per frame, mean over all frames of all clips"
        elif name in ("rfid", "pfid"):
            from .fid import FID, FID_PROTOCOL

            ref = self.args.fid_reference
            self.metrics[name] = FID(self._inception_net(), reference=ref).to(self.device)
            self.protocols[name] = {**FID_PROTOCOL, "weights_file": self.inception.weights_file,
                                    "reference": ref or "the evaluated (original) images"}
            if name == "pfid":
                from .pfid import (DEFAULT_ALPHA, DEFAULT_DELTA, effective_delta, pfid_label, pfid_protocol,
                                   supports_pfid)

                ok, why = supports_pfid(self.tok)
                if not ok:
                    raise ValueError(f"pFID: {why}")
                alpha, delta, seed = self._perturb_params()
                self.protocols[name].update(pfid_protocol(alpha, delta, self.args.pfid_seed, self.args.pfid_mode))
                self.labels[name] = pfid_label(alpha, delta, self.args.pfid_seed)
        elif name == "fvd":
            from .fvd import FVD, I3DFeatures

            metric = FVD(I3DFeatures(self.args.i3d_weights)).to(self.device)
            self.metrics[name], self.protocols[name] = metric, dict(metric.protocol)
        elif name == "usage":
            from .usage import CodebookUsage

            k = self.tok.codebook_size
            sizes = (k,) if isinstance(k, int) else tuple(k)
            if max(sizes) <= 1:
                raise ValueError("continuous tokenizer (codebook size 1): codebook usage is undefined")
            n_pos = None
            if m != "audio":
                ts = self.tok.token_shape(tuple(shape))
                if ts[0] * len(sizes) * max(sizes) <= _MAX_POSITION_TABLE:
                    n_pos = int(ts[0])
            self.metrics[name] = CodebookUsage(k, num_positions=n_pos).to(self.device)
            self.protocols[name] = {"usage": "fraction of codes used at least once", "perplexity":
                                    "exp(entropy) of the empirical code distribution",
                                    "position_entropy": "entropy (bits) of the code distribution per sequence "
                                    "position" if n_pos else "not tracked"}
        else:  # audio
            from .audio import AUDIO_METRICS

            kwargs = {"weights": self.args.utmos_weights} if name == "utmos" and self.args.utmos_weights else {}
            self.metrics[name] = AUDIO_METRICS[name](sample_rate=int(self.tok.sample_rate), **kwargs).to(self.device)
            doc = (sys.modules[AUDIO_METRICS[name].__module__].__doc__ or "")
            line = next((ln.strip("- ").strip() for ln in doc.splitlines() if f":class:`{AUDIO_METRICS[name].__name__}`"
                         in ln), AUDIO_METRICS[name].__doc__.split("\n")[0] if AUDIO_METRICS[name].__doc__ else name)
            self.protocols[name] = {"definition": line, "sample_rate": int(self.tok.sample_rate)}

    def _perturb_params(self) -> tuple[float, int, int]:
        """(alpha, effective delta, seed) of the latent perturbation, shared by pfid and every p_<metric>;
        also creates the measured changed-token fraction."""
        if getattr(self, "pfid_params", None) is None:
            from torchmetrics.aggregation import MeanMetric

            from .pfid import DEFAULT_ALPHA, DEFAULT_DELTA, effective_delta

            alpha = DEFAULT_ALPHA if self.args.pfid_alpha is None else self.args.pfid_alpha
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"--perturb-alpha must lie in [0, 1], got {alpha}")
            if self.args.pfid_delta is not None and self.args.pfid_delta < 1:
                raise ValueError(f"--perturb-delta must be >= 1, got {self.args.pfid_delta}")
            delta = effective_delta(self.tok, DEFAULT_DELTA if self.args.pfid_delta is None else self.args.pfid_delta)
            self.pfid_params = (alpha, delta, self.args.pfid_seed)
            self.changed = MeanMetric().to(self.device)  # fraction of tokens the perturbation changed
        return self.pfid_params

    def _add_perturbed(self, name: str, shape) -> None:
        """``p_<metric>``: the clean metric's definition on perturbed reconstructions (same protocol)."""
        from .pfid import base_metric, perturbation_protocol, perturbed_label, supports_pfid, token_definition

        base = base_metric(name)
        ok, why = supports_pfid(self.tok)
        if not ok:
            raise ValueError(f"{name}: latent perturbation unavailable: {why}")
        alpha, delta, seed = self._perturb_params()
        kept = {d: dict(getattr(self, d)) for d in ("metrics", "protocols", "labels")}
        self._add(base, shape)  # builds the clean metric under its own name, then moves it to `name`
        self.metrics[name], self.protocols[name] = self.metrics.pop(base), dict(self.protocols.pop(base))
        self.labels.pop(base, None)
        for d, saved in kept.items():  # the clean metric of the same name, when requested too, is untouched
            if base in saved:
                getattr(self, d)[base] = saved[base]
        unit = {"audio": "clip", "video": "clip"}.get(self.modality, "image")
        self.protocols[name].update(perturbation_protocol(alpha, delta, seed, self.args.pfid_mode, unit=unit),
                                    token=token_definition(self.tok), compared_with=f"the original input, as {base}")
        self.labels[name] = perturbed_label(base, alpha, delta, seed)

    def perturbed(self, x, tokens, batch_index: int):
        """Reconstruction of ``x`` from perturbed tokens (None when no perturbed metric is requested)."""
        if getattr(self, "pfid_params", None) is None:
            return None
        from .pfid import changed_fraction, decode_kwargs, perturbed_tokens

        alpha, delta, seed = self.pfid_params
        pt = perturbed_tokens(self.tok, x, alpha, delta, seed + batch_index, self.args.pfid_mode)
        if pt.ids.shape == tokens.ids.shape:
            self.changed.update(changed_fraction(tokens.ids, pt.ids), weight=tokens.ids.numel())
        return _decode(self.tok, pt, x, **decode_kwargs(self.tok, self.args.seed + batch_index))

    # ------------------------------------------------------------------ per batch
    def real_features(self, x):
        """Inception features of the original images (None when a reference .npz replaces them)."""
        if self.inception is None or self.args.fid_reference is not None:
            return None
        fid = self.metrics.get("rfid") or self.metrics.get("pfid")
        return fid.features(x) if fid is not None else None

    def update(self, x, recon, tokens, lengths, batch_index: int, real=None) -> None:
        from .pfid import base_metric

        m = self.metrics
        xp = self.perturbed(x, tokens, batch_index)  # shared by pfid and every p_<metric>
        if self.modality == "audio":
            for name, metric in m.items():
                if name != "usage":
                    metric.update(recon if base_metric(name) is None else xp, x, lengths=lengths)
        else:
            frames_x = x if self.modality == "image" else x.transpose(1, 2).flatten(0, 1)
            frames_r = recon if self.modality == "image" else recon.transpose(1, 2).flatten(0, 1)
            frames_p = None if xp is None else xp if self.modality == "image" else xp.transpose(1, 2).flatten(0, 1)
            for name in ("psnr", "ssim", "ms_ssim", "lpips"):
                if name in m:
                    m[name].update(frames_r, frames_x)
                if "p_" + name in m:
                    m["p_" + name].update(frames_p, frames_x)
            if "rfid" in m or "pfid" in m:
                if "rfid" in m:
                    if real is not None:
                        m["rfid"].update_features(real, real=True)
                    m["rfid"].update(recon, real=False)
                if "pfid" in m:
                    if real is not None:
                        m["pfid"].update_features(real, real=True)
                    m["pfid"].update(xp, real=False)
            if "fvd" in m:
                m["fvd"].update(x, real=True)
                m["fvd"].update(recon, real=False)
            if "p_fvd" in m:
                m["p_fvd"].update(x, real=True)
                m["p_fvd"].update(xp, real=False)
        if "usage" in m:
            tl = tokens.lengths
            if tl is None and lengths is not None and hasattr(self.tok, "token_shape"):
                try:
                    tl = torch.tensor([self.tok.token_shape((int(n),))[0] for n in lengths])
                    tl = tl.clamp(max=tokens.ids.shape[1])
                except Exception:
                    tl = None
            m["usage"].update(tokens.ids, lengths=tl)

    def per_item(self, indices: list[int], world: int) -> dict[str, list] | None:
        """Per-item values of the per-image metrics in dataset order (collective under DDP)."""
        names = [n for n in ("psnr", "ssim", "ms_ssim", "lpips") if n in self.metrics]
        if not names or self.modality == "audio":
            return None
        values = {}
        for n in names:
            m = self.metrics[n]
            values[n] = (m.per_image()[n] if n != "lpips" else m.per_image()).tolist()
        if world > 1:
            import torch.distributed as dist

            gathered = [None] * world
            dist.all_gather_object(gathered, indices)
            indices = [i for part in gathered for i in part]
        per = 1 if self.modality == "image" else None
        if per is None:  # video: frames of each clip, clip-major
            per = len(values[names[0]]) // max(1, len(indices))
            indices = [i for i in indices for _ in range(per)]
        order = sorted(range(len(indices)), key=lambda j: indices[j])
        out = {"index": [indices[j] for j in order]}
        if self.modality == "video":
            out["frame"] = [j % per for j in range(len(order))]
        out.update({n: [v[j] for j in order] for n, v in values.items()})
        return out

    def results(self) -> dict[str, dict]:
        out = {}
        changed = None
        if getattr(self, "pfid_params", None) is not None:
            import warnings

            with warnings.catch_warnings():  # every process computes (collective), even one without batches
                warnings.simplefilter("ignore")
                changed = float(self.changed.compute())
            changed = None if math.isnan(changed) else changed
        for name, metric in self.metrics.items():
            value = metric.compute()
            key = name[2:] if name.startswith("p_") else name  # p_psnr computes {"psnr": ...}
            if isinstance(value, dict) and set(value) == {key}:
                value = value[key]
            entry = {"value": value, "protocol": self.protocols.get(name, {})}
            if changed is not None and (name == "pfid" or name.startswith("p_")):
                entry["protocol"] = {**entry["protocol"], "measured_changed_fraction": changed}
            if name in self.labels:
                entry["label"] = self.labels[name]
            out[name] = entry
        return out


def _write_json(path: Path, data: dict) -> None:
    from zoo.checkpoint import atomic_path

    from .report import to_jsonable

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(to_jsonable(data)), encoding="utf-8")


# ----------------------------------------------------------------------------- main loop
def _sweep_values(arg: str, tok, tokens_total: int) -> list[int]:
    if arg == "none":
        return []
    if arg == "auto":
        vals, k = [], 1
        while k < tokens_total:
            vals.append(k)
            k *= 2
        return vals + [tokens_total]
    vals = sorted({int(v) for v in arg.split(",") if v.strip()})
    bad = [v for v in vals if not 1 <= v <= tokens_total]
    if bad:
        raise ValueError(f"--sweep values {bad} outside [1, {tokens_total}]")
    return vals


def _decode(tok, tokens, like: torch.Tensor, **kw) -> torch.Tensor:
    out = tok.decode(tokens, **kw).float()
    if tok.modality == "audio":
        out = out.reshape(out.shape[0], -1)[:, : like.shape[-1]]
        if out.shape[-1] < like.shape[-1]:
            out = torch.nn.functional.pad(out, (0, like.shape[-1] - out.shape[-1]))
        return out.clamp(-1, 1)
    return out.clamp(0, 1)


def evaluate(args) -> dict:
    """Run one evaluation (see :func:`build_parser`); returns the report (rank 0 writes it)."""
    from tqdm.auto import tqdm

    from .pfid import decode_kwargs
    from .report import audio_comparison, frame_strips, recon_grid, tokens_curve, write_report

    rank, world, device = _distributed(args.device)
    tok, info = load_tokenizer(args)
    tok = tok.to(device).eval()
    modality = tok.modality
    requested = args.metrics is not None
    names = [n.strip() for n in (args.metrics.split(",") if requested else DEFAULTS[modality]) if n.strip()]
    shape = _input_shape(tok, info, args)
    data = _Data(tok, args, shape)
    if data.n == 0:
        raise ValueError(f"no items in {args.data}")
    suite = _Suite(tok, names, args, device, requested, shape)

    arg = getattr(type(tok), "variable_length_arg", None)
    sweep, curve_metrics = [], {}
    if arg and modality == "image":
        from .image import ImageFidelity

        total = int(tok.token_shape(tuple(shape))[0])
        sweep = _sweep_values(args.sweep, tok, total)
        for k in sweep:
            curve_metrics[k] = {"psnr": ImageFidelity(("psnr",)).to(device)}
            if suite.inception is not None:
                from .fid import FID

                curve_metrics[k]["rfid"] = FID(suite.inception, reference=args.fid_reference).to(device)

    num_batches = math.ceil(data.n / args.batch_size)
    mine = list(range(rank, num_batches, world))
    examples, done = None, []
    start = time.time()
    bar = tqdm(mine, desc=f"eval {args.tokenizer}", disable=args.no_progress or rank != 0)
    for b in bar:
        idx = list(range(b * args.batch_size, min(data.n, (b + 1) * args.batch_size)))
        done += idx
        x, lengths = data.batch(idx)
        x = x.to(device)
        with torch.no_grad():
            torch.manual_seed(args.seed + b)
            tokens = tok.encode(x)
            dkw = decode_kwargs(tok, args.seed + b)  # samplers that draw noise (FlexTok): same noise per batch
            recon = _decode(tok, tokens, x, **dkw)
            real = suite.real_features(x) if modality == "image" else None
            suite.update(x, recon, tokens, lengths, b, real=real)
            for k, ms in curve_metrics.items():
                rk = _decode(tok, tokens, x, **{arg: k}, **decode_kwargs(tok, args.seed + b))
                ms["psnr"].update(rk, x)
                if "rfid" in ms:
                    if real is not None:
                        ms["rfid"].update_features(real, real=True)
                    ms["rfid"].update(rk, real=False)
        if examples is None and b == 0:
            examples = (x[:8].cpu(), recon[:8].cpu(), None if lengths is None else lengths[:8])
    elapsed = time.time() - start

    results = suite.results()  # collective: every process takes part in the sync
    for name, entry in results.items():  # every number carries its data protocol and sample count
        entry["protocol"] = {**entry["protocol"], "num_samples": data.n, **data.protocol}
        if name in ("rfid", "pfid", "fvd") and data.n < 2048:
            entry["protocol"]["note"] = (f"only {data.n} samples: Frechet distances are strongly biased upwards for "
                                         "small sets (papers use 50k images / 2048+ clips); compare like with like")
    per_item = suite.per_item(done, world)
    curve = None
    if curve_metrics:
        curve = {"arg": arg, "tokens": list(curve_metrics), "psnr": [ms["psnr"].compute()["psnr"] for ms in
                                                                     curve_metrics.values()]}
        if any("rfid" in ms for ms in curve_metrics.values()):
            curve["rfid"] = [ms["rfid"].compute() for ms in curve_metrics.values()]
    if args.save_fid_reference and "rfid" in suite.metrics and args.fid_reference is None:
        if rank == 0:
            suite.metrics["rfid"].save_reference(args.save_fid_reference, protocol={
                "data": str(args.data), **data.protocol})
        else:
            with suite.metrics["rfid"].sync_context():
                pass

    report = {
        "tokenizer": args.tokenizer, "modality": modality, "data": str(args.data), "num_samples": data.n,
        "input": ({"size": list(shape)} if modality != "audio" else
                  {"sample_rate": int(tok.sample_rate), "max_seconds": args.max_seconds}) | data.protocol,
        "pretrained": bool(args.pretrained or args.weights), "weights": args.weights, "device": str(device),
        "world_size": world, "batch_size": args.batch_size, "seed": args.seed,
        "seconds": round(elapsed, 2), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metrics": results, "skipped": suite.skipped,
    }
    if curve:
        report["curve"] = curve
    if rank == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        figures = []
        if not args.no_figures and examples is not None:
            xs, rs, ls = examples
            title = f"{args.tokenizer}"
            if modality == "image":
                figures.append(recon_grid(out / "reconstructions.png", xs, rs, title=title))
            elif modality == "video":
                figures.append(frame_strips(out / "frame_strips.png", xs, rs, title=title))
            else:
                n = int(ls[0]) if ls is not None else xs.shape[-1]
                figures.append(audio_comparison(out / "audio_comparison.png", xs[0, :n], rs[0, :n],
                                                int(tok.sample_rate), title=title))
            if curve:
                from .report import to_jsonable

                series = {"PSNR (dB)": to_jsonable(curve["psnr"])}
                if "rfid" in curve:
                    series["rFID"] = to_jsonable(curve["rfid"])
                figures.append(tokens_curve(out / "quality_vs_tokens.png", curve["tokens"], series,
                                            title=f"{args.tokenizer}: decode with {arg}=k"))
        report["figures"] = [str(f) for f in figures]
        if per_item:
            per_item["item"] = [data.item_name(i) for i in per_item.pop("index")]
            _write_json(out / "per_item.json", per_item)
            report["per_item"] = "per_item.json"
        write_report(out, report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise SystemExit("--batch-size must be >= 1")
    report = evaluate(args)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        from .report import to_jsonable

        for name, entry in report["metrics"].items():
            value = to_jsonable(entry["value"])
            if isinstance(value, dict):  # scalars only on the console; the lists are in report.json
                value = {k: v for k, v in value.items() if not isinstance(v, list)}
            print(f"{entry.get('label', name)}: {json.dumps(value)}")
        for name, why in report["skipped"].items():
            print(f"{name}: skipped ({why})")
        print(f"report: {Path(args.out) / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
