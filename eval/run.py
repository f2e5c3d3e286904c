"""``scripts/evaluate.py`` / ``python -m zoo eval``: evaluate any tokenizer on a data folder.

Encodes and decodes every item of ``--data`` (images, audio files or videos, by the
tokenizer's modality: :mod:`eval.eval_data`) in batches on ``--device``, updates the requested
metrics (:mod:`eval.metric_registry`; one loop over :class:`~eval.metric.EvalMetric` objects) and writes
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

from zoo.distributed import finish_process_group

from .metric import EvalConfig, EvalMetric, MetricContext
from .metric_registry import DEFAULTS, METRICS, build_metric, registry_order

__all__ = ["main", "build_parser", "evaluate", "METRICS", "DEFAULTS"]

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, help="registered name (zoo.list_tokenizers()), local-dir:PATH "
                   "(zoo-format folder) or hf-hub:ORG/REPO[@REVISION]")
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
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) of the registry "
                   "entry's weights or of an hf-hub: repo")
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
    p.add_argument("--utmos-weights", default=None, help="UTMOS checkpoint: a file, a folder holding "
                   "utmos_state_dict.pt, 'speechmos' or hf-hub:ORG/REPO[@REVISION] (default: $ZOO_UTMOS_WEIGHTS, "
                   "else hf-hub:Blinorot/UTMOS-PyTorch)")
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
    """(tokenizer, registry info or None) from ``--tokenizer``: a registry name, ``local-dir:PATH`` or
    ``hf-hub:ORG/REPO[@REVISION]`` (:mod:`zoo.source`)."""
    from zoo.source import parse_source

    kwargs = json.loads(args.tokenizer_kwargs) if args.tokenizer_kwargs else {}
    torch.manual_seed(args.seed)  # untrained weights are identical on every process
    source = parse_source(args.tokenizer)
    info = source.registry_info()
    tok = source.load(pretrained=args.pretrained, weights=args.weights, revision=args.revision, **kwargs)
    return tok, info


# ----------------------------------------------------------------------------- metrics
class _Suite:
    """The requested metrics of one run (:mod:`eval.metric_registry`), updated batch by batch."""

    def __init__(self, ctx: MetricContext, names: list[str], requested: bool):
        self.metrics: dict[str, EvalMetric] = {}
        self.skipped: dict[str, str] = {}
        for name in names:
            try:
                self.metrics[name] = build_metric(name, ctx)
            except Exception as e:  # a default metric that cannot run is reported, an explicit one fails
                if requested:
                    raise
                self.skipped[name] = f"{type(e).__name__}: {e}".split("\n")[0][:300]

    def update(self, x, recon, tokens, lengths, batch: int) -> None:
        for metric in self.metrics.values():
            metric.update(x, recon, tokens, lengths=lengths, batch=batch)

    def per_item(self, indices: list[int], world: int, frames_in_item: bool) -> dict[str, list] | None:
        """Per-item values (per frame for video) of the per-item metrics in dataset order (collective under DDP)."""
        names = sorted((n for n, m in self.metrics.items() if m.has_per_item), key=registry_order)
        if not names:
            return None
        values = {n: self.metrics[n].per_item() for n in names}
        if world > 1:
            import torch.distributed as dist

            gathered = [None] * world
            dist.all_gather_object(gathered, indices)
            indices = [i for part in gathered for i in part]
        per = len(values[names[0]]) // max(1, len(indices)) if frames_in_item else 1
        indices = [i for i in indices for _ in range(per)]
        order = sorted(range(len(indices)), key=lambda j: indices[j])
        out = {"index": [indices[j] for j in order]}
        if frames_in_item:
            out["frame"] = [j % per for j in range(len(order))]
        out.update({n: [v[j] for j in order] for n, v in values.items()})
        return out

    def results(self) -> dict[str, dict]:
        """``{name: {"value", "protocol", "label"?}}`` (collective: every process computes)."""
        out = {}
        for name, metric in self.metrics.items():
            value = metric.compute()
            entry = {"value": value, "protocol": dict(metric.protocol)}
            if metric.label is not None:
                entry["label"] = metric.label
            out[name] = entry
        return out


class _TokenSweep:
    """Quality against the number of tokens kept (variable-length tokenizers): PSNR, and rFID when
    the run loaded the Inception network, of decodes with ``arg=k`` for each k."""

    def __init__(self, ctx: MetricContext, arg: str, values: list[int]):
        names = ["psnr"] + (["rfid"] if ctx.has_inception else [])
        self.tok, self.arg = ctx.tok, arg
        self.metrics = {k: {n: build_metric(n, ctx) for n in names} for k in values}

    def update(self, x, tokens, lengths, batch: int, decode_seed: int) -> None:
        for k, metrics in self.metrics.items():
            rk = _reconstruct(self.tok, tokens, x, **{self.arg: k}, **self.tok.decode_noise_kwargs(decode_seed))
            for metric in metrics.values():
                metric.update(x, rk, tokens, lengths=lengths, batch=batch)

    def curve(self) -> dict | None:
        if not self.metrics:
            return None
        curve = {"arg": self.arg, "tokens": list(self.metrics),
                 "psnr": [ms["psnr"].compute() for ms in self.metrics.values()]}
        if any("rfid" in ms for ms in self.metrics.values()):
            curve["rfid"] = [ms["rfid"].compute() for ms in self.metrics.values()]
        return curve


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


def _reconstruct(tok, tokens, like: torch.Tensor, **kw) -> torch.Tensor:
    """``decode(tokens)`` in float32 with the shape of the input batch ``like``, clipped to its range."""
    return tok.modality.fit(tok.decode(tokens, **kw).float(), like)


def evaluate(args) -> dict:
    """Run one evaluation (see :func:`build_parser`); returns the report (rank 0 writes it)."""
    from tqdm.auto import tqdm

    from .eval_data import eval_data

    rank, world, device = _distributed(args.device)
    tok, info = load_tokenizer(args)
    tok = tok.to(device).eval()
    modality = tok.modality
    requested = args.metrics is not None
    names = [n.strip() for n in (args.metrics.split(",") if requested else DEFAULTS[modality.name]) if n.strip()]
    data = eval_data(tok, info, args.data, image_size=args.image_size, num_frames=args.num_frames,
                     num_samples=args.num_samples, max_seconds=args.max_seconds)
    if data.n == 0:
        raise ValueError(f"no items in {args.data}")
    ctx = MetricContext(tok, data.shape, device, EvalConfig.from_args(args))
    suite = _Suite(ctx, names, requested)

    arg = type(tok).variable_length_arg
    sweep = None
    if arg and "psnr" in METRICS[modality.name]:
        total = int(tok.token_shape(tuple(data.shape))[0])
        sweep = _TokenSweep(ctx, arg, _sweep_values(args.sweep, tok, total))

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
            # samplers that draw noise (FlexTok): the same noise per batch for every decode of it
            recon = _reconstruct(tok, tokens, x, **tok.decode_noise_kwargs(args.seed + b))
            suite.update(x, recon, tokens, lengths, b)
            if sweep is not None:
                sweep.update(x, tokens, lengths, b, args.seed + b)
        if examples is None and b == 0:
            examples = (x[:8].cpu(), recon[:8].cpu(), None if lengths is None else lengths[:8])
    elapsed = time.time() - start

    results = suite.results()  # collective: every process takes part in the sync
    for name, entry in results.items():  # every number carries its data protocol and sample count
        entry["protocol"] = {**entry["protocol"], "num_samples": data.n, **data.protocol}
        if suite.metrics[name].frechet and data.n < 2048:
            entry["protocol"]["note"] = (f"only {data.n} samples: Frechet distances are strongly biased upwards for "
                                         "small sets (papers use 50k images / 2048+ clips); compare like with like")
    per_item = suite.per_item(done, world, modality.frames_in_item)
    curve = sweep.curve() if sweep is not None else None
    if args.save_fid_reference and "rfid" in suite.metrics and args.fid_reference is None:
        suite.metrics["rfid"].save_reference(args.save_fid_reference if rank == 0 else None,
                                             {"data": str(args.data), **data.protocol})

    report = {
        "tokenizer": args.tokenizer, "modality": modality, "data": str(args.data), "num_samples": data.n,
        "input": data.input_record(),
        "pretrained": bool(args.pretrained or args.weights), "weights": args.weights, "device": str(device),
        "world_size": world, "batch_size": args.batch_size, "seed": args.seed,
        "seconds": round(elapsed, 2), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metrics": results, "skipped": suite.skipped,
    }
    if curve:
        report["curve"] = curve
    if rank == 0:
        _write_outputs(Path(args.out), report, data, None if args.no_figures else examples, per_item)
    return report


def _write_outputs(out: Path, report: dict, data, examples, per_item: dict | None) -> None:
    """report.json / report.md, the figures (none without ``examples``) and per_item.json under ``out``."""
    from .report import tokens_curve, to_jsonable, write_report

    out.mkdir(parents=True, exist_ok=True)
    figures, curve, name = [], report.get("curve"), report["tokenizer"]
    if examples is not None:
        figures.append(data.figure(out, examples, title=f"{name}"))
        if curve:
            series = {"PSNR (dB)": to_jsonable(curve["psnr"])}
            if "rfid" in curve:
                series["rFID"] = to_jsonable(curve["rfid"])
            figures.append(tokens_curve(out / "quality_vs_tokens.png", curve["tokens"], series,
                                        title=f"{name}: decode with {curve['arg']}=k"))
    report["figures"] = [str(f) for f in figures]
    if per_item:
        per_item["item"] = [data.item_name(i) for i in per_item.pop("index")]
        _write_json(out / "per_item.json", per_item)
        report["per_item"] = "per_item.json"
    write_report(out, report)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise SystemExit("--batch-size must be >= 1")
    completed = False
    try:
        report = evaluate(args)
        completed = True
    finally:
        finish_process_group(completed)
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
