"""The main job: ``python -m zoo demo`` (``make demo``).

Reconstructs held-out real photos and speech with every packaged demo tokenizer (registry tag
``demo``, weights in ``zoo/weights/``) plus the untrained dMel baseline (Griffin-Lim), prints a
table (tokens per image / per second, bits, PSNR / SSIM, STOI / PESQ / DNSMOS, encode / decode
time) and writes ``OUT/report.md``, ``OUT/report.json``, ``OUT/image_grid.png``,
``OUT/audio/*.wav`` and ``OUT/spectrograms.png``. No network is used.

Held-out data (never seen by the demo recipes, see ``zoo.data.offline``):
photos: the held-out sources of ``photo_split()`` (resized, centre-cropped to the model's size);
speech: 3 Dutch + 3 English held-out utterances of ``speech_split()`` (>= 2 s, first 4 s).

``--package NAME=RUN_DIR`` turns a finished training run (``recipes/demo/NAME.yaml``) into the
shipped checkpoint ``zoo/weights/NAME`` (EMA weights of the newest checkpoint, parameters stored
as float16; buffers stay float32).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from zoo.checkpoint import atomic_path

__all__ = ["main", "run_demo", "evaluate_image", "evaluate_audio", "held_out_photos", "held_out_crops",
           "held_out_speech", "package_checkpoint", "markdown_table", "BASELINES"]

CLIPS_PER_CORPUS = 3
SPEECH_SECONDS = 4.0
MIN_SPEECH_SECONDS = 2.0
#: registry entries shown next to the demo tokenizers (no trained weights: no download either)
BASELINES = ("dmel.official",)
WEIGHTS_ROOT = Path(__file__).resolve().parents[1] / "zoo" / "weights"
#: what one packaged demo tokenizer folder holds
PACKAGED_FILES = ("config.json", "model.safetensors", "training_log.csv")


def bits_per_position(tok) -> float:
    """Bits of one token position (summed over parallel codebooks)."""
    sizes = tok.codebook_size if isinstance(tok.codebook_size, (tuple, list)) else (tok.codebook_size,)
    return sum(math.log2(s) for s in sizes)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000


# ----------------------------------------------------------------------------- held-out data
def held_out_photos(size: int) -> tuple[list[str], torch.Tensor]:
    """Held-out photos of ``photo_split()`` as ``[N, 3, size, size]`` in [0, 1] (whole photo,
    short side resized to ``size``, centre crop) and their names."""
    from zoo.data.offline import load_photo, photo_split

    _, held = photo_split()
    return [Path(h).stem for h in held], torch.stack([load_photo(h, size) for h in held])


def held_out_crops(size: int, scale: int = 2) -> torch.Tensor:
    """Five ``size`` crops (centre + corners) of every held-out photo resized to short side
    ``scale * size``: ``[5N, 3, size, size]`` (closer-up views, as the random-scale training crops)."""
    from zoo.data.offline import load_photo, photo_split

    _, held = photo_split()
    big = scale * size
    out = []
    for h in held:
        img = load_photo(h, big)
        for top, left in ((big - size) // 2, (big - size) // 2), (0, 0), (0, big - size), (big - size, 0), \
                (big - size, big - size):
            out.append(img[:, top:top + size, left:left + size])
    return torch.stack(out)


def held_out_speech_paths() -> list[Path]:
    """``CLIPS_PER_CORPUS`` evenly spaced non-trivial held-out utterances per corpus (nl, en)."""
    import soundfile as sf

    from zoo.data.offline import speech_split

    _, held = speech_split()
    picked = []
    for corpus in ("nl", "en"):
        usable = [p for p in held if p.parent.name == corpus and sf.info(str(p)).duration >= MIN_SPEECH_SECONDS]
        step = max(1, len(usable) // CLIPS_PER_CORPUS)
        picked += usable[::step][:CLIPS_PER_CORPUS]
    return picked


def held_out_speech(sample_rate: int) -> tuple[list[str], list[torch.Tensor]]:
    """Held-out clips (first ``SPEECH_SECONDS``) as ``[T]`` in [-1, 1] at ``sample_rate``, with names."""
    from zoo.data.offline import load_speech

    paths = held_out_speech_paths()
    return [f"{p.parent.name}_{p.stem}" for p in paths], \
        [load_speech(p, sample_rate, max_seconds=SPEECH_SECONDS) for p in paths]


# ----------------------------------------------------------------------------- evaluation
def evaluate_image(tok, device: str = "cpu") -> dict:
    """Held-out photo metrics of an image tokenizer (8-bit quantised PSNR / SSIM, ``eval.image``).

    Returns the report row plus ``_originals`` / ``_recons`` (tensors, for the grid)."""
    from eval.image import ImageFidelity

    size = int(getattr(tok, "image_size", 64))
    names, x = held_out_photos(size)
    x = x.to(device)
    tok.encode(x[:1])  # warm-up (first-call allocations are not part of the timing)
    tokens, enc_ms = _timed(lambda: tok.encode(x))
    y, dec_ms = _timed(lambda: tok.decode(tokens))
    y = y.clamp(0, 1)
    fid = ImageFidelity(("psnr", "ssim"))
    fid.update(y.cpu(), x.cpu())
    per = fid.per_image()
    crops = held_out_crops(size).to(device)
    crop_fid = ImageFidelity(("psnr", "ssim"))
    crop_fid.update(tok.reconstruct(crops).clamp(0, 1).cpu(), crops.cpu())
    crop_m = crop_fid.compute()
    n = tokens.ids.shape[1]
    return {"modality": "image", "items": len(x), "input": f"{size}x{size}", "tokens": n,
            "bits": n * bits_per_position(tok), "psnr": float(per["psnr"].mean()), "ssim": float(per["ssim"].mean()),
            "psnr_per_image": dict(zip(names, per["psnr"].tolist())),
            "psnr_crops": float(crop_m["psnr"]), "ssim_crops": float(crop_m["ssim"]), "crops": len(crops),
            "encode_ms": enc_ms / len(x), "decode_ms": dec_ms / len(x), "_names": names,
            "_originals": x.cpu(), "_recons": y.cpu()}


def evaluate_audio(tok, device: str = "cpu", dnsmos: bool = True) -> dict:
    """Held-out speech metrics of an audio tokenizer (``eval.audio``: STOI, wide-band PESQ,
    DNSMOS OVRL). Returns the report row plus ``_clips``: ``[(name, original, recon)]``."""
    from eval.audio import DNSMOS, PESQ, STOI

    sr = tok.sample_rate
    names, clips = held_out_speech(sr)
    stoi, pesq = STOI(sr), PESQ(sr)
    dns = DNSMOS(sr) if dnsmos else None
    tok.encode(clips[0][None, : sr // 2].to(device))  # warm-up
    enc_total = dec_total = seconds = 0.0
    pairs = []
    for clip_name, clip in zip(names, clips):
        x = clip[None].to(device)
        tokens, enc_ms = _timed(lambda: tok.encode(x))
        kw = tok.decode_noise_kwargs(0)  # decoders that draw noise (dMel's Griffin-Lim): same report every run
        y, dec_ms = _timed(lambda: tok.decode(tokens, **kw))
        y = tok.modality.fit(y, x).cpu()  # trimmed / zero-padded to the clip, clipped to [-1, 1]
        enc_total, dec_total, seconds = enc_total + enc_ms, dec_total + dec_ms, seconds + x.shape[-1] / sr
        stoi.update(y, x.cpu())
        pesq.update(y, x.cpu())
        if dns is not None:
            dns.update(y)
        pairs.append((clip_name, x[0].cpu(), y[0]))
    tps = float(tok.tokens_per_second)
    row = {"modality": "audio", "items": len(clips), "input": f"{sr} Hz", "tokens_per_s": tps,
           "bits_per_s": tps * bits_per_position(tok), "stoi": float(stoi.compute()), "pesq": float(pesq.compute()),
           "encode_ms_per_s": enc_total / seconds, "decode_ms_per_s": dec_total / seconds, "_clips": pairs}
    if dns is not None:
        row["dnsmos_ovrl"] = float(dns.compute()["ovrl"])
    return row


def _original_speech_row(device_rate: int = 16000) -> dict:
    from eval.audio import DNSMOS

    names, clips = held_out_speech(device_rate)
    dns = DNSMOS(device_rate)
    for clip in clips:
        dns.update(clip[None])
    return {"tokenizer": "original speech (reference)", "modality": "audio", "items": len(clips),
            "input": f"{device_rate} Hz", "dnsmos_ovrl": float(dns.compute()["ovrl"])}


# ----------------------------------------------------------------------------- report
def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| tokenizer | input | tokens | bits | PSNR dB | SSIM | STOI | PESQ | DNSMOS OVRL | encode | decode |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r.get
        if r["modality"] == "image":
            lines.append(f"| {r['tokenizer']} | {r['input']} photo | {r['tokens']} / image | {r['bits']:.0f} / image | "
                         f"{r['psnr']:.2f} | {r['ssim']:.3f} | - | - | - | {r['encode_ms']:.1f} ms/img | "
                         f"{r['decode_ms']:.1f} ms/img |")
        elif "stoi" not in r:  # reference row
            lines.append(f"| {r['tokenizer']} | {r['input']} speech | - | - | - | - | - | - | "
                         f"{_fmt(g('dnsmos_ovrl'), '.2f')} | - | - |")
        else:
            lines.append(f"| {r['tokenizer']} | {r['input']} speech | {r['tokens_per_s']:.1f} / s | "
                         f"{r['bits_per_s']:.0f} / s | - | - | {r['stoi']:.3f} | {r['pesq']:.2f} | "
                         f"{_fmt(g('dnsmos_ovrl'), '.2f')} | {r['encode_ms_per_s']:.1f} ms/s | "
                         f"{r['decode_ms_per_s']:.1f} ms/s |")
    return "\n".join(lines)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def run_demo(out: str | Path = "demo_out", device: str = "cpu", names: list[str] | None = None,
             baselines: tuple[str, ...] = BASELINES, dnsmos: bool = True) -> list[dict]:
    """Evaluate ``names`` (default: every ``*.demo`` entry) and the baselines; write ``out``."""
    import zoo
    from eval.figures import spectrogram_comparison
    from eval.report import recon_grid
    from zoo.audio import save_audio

    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    demo_names = list(names) if names is not None else zoo.list_tokenizers(filter="*.demo")
    print(f"Tokenizer Zoo {zoo.__version__}: {len(zoo.list_tokenizers())} registered tokenizers "
          f"({len(zoo.list_tokenizers(pretrained=True))} with weights); demo tokenizers: {demo_names}", flush=True)
    if not demo_names:
        raise SystemExit("no packaged demo tokenizer is registered (zoo/weights/ is empty)")
    rows, grids, speech = [], [], {}
    t_start = time.perf_counter()
    for name in demo_names + [b for b in baselines if b not in demo_names]:
        info = zoo.get_info(name)
        tok = zoo.create_tokenizer(name, pretrained=True).to(device).eval()
        if tok.modality == "image":
            row = evaluate_image(tok, device)
            grids.append((name, row))
        elif tok.modality == "audio":
            row = evaluate_audio(tok, device, dnsmos=dnsmos)
            for clip_name, x, y in row["_clips"]:
                save_audio(out / "audio" / f"{clip_name}__{info.arch}.wav", y, tok.sample_rate)
                if clip_name not in speech:
                    speech[clip_name] = [("original", x, tok.sample_rate)]
                    save_audio(out / "audio" / f"{clip_name}__original.wav", x, tok.sample_rate)
                speech[clip_name].append((name, y, tok.sample_rate))
        else:
            continue
        rows.append({"tokenizer": name, "baseline": name not in demo_names, **row})
        print(f"  done: {name} ({time.perf_counter() - t_start:.0f} s)", flush=True)
    if speech and dnsmos:
        rows.append(_original_speech_row())
    for name, row in grids:
        recon_grid(out / "image_grid.png", row["_originals"], row["_recons"], max_items=len(row["_names"]),
                   title=f"held-out photos: input (top) vs {name} ({row['tokens']} tokens, "
                         f"PSNR {row['psnr']:.1f} dB)")
    if speech:
        chosen = list(speech)[:: max(1, len(speech) // 2)][:2]  # one Dutch, one English clip
        spectrogram_comparison(out / "spectrograms.png", [(c, speech[c]) for c in chosen],
                               title="held-out speech: original vs reconstructions (log-mel)")
    public = [_public(r) for r in rows]
    (out / "report.json").write_text(json.dumps(public, indent=2))
    table = markdown_table(public)
    figures = "".join(f"\n![{f[:-4]}]({f})\n" for f in ("image_grid.png", "spectrograms.png") if (out / f).is_file())
    (out / "report.md").write_text(
        "# Tokenizer Zoo demo\n\nHeld-out real photos (mate-backgrounds, scikit-image; `photo_split()`) and "
        "speech (fillets-ng Dutch + English; `speech_split()`), never seen in training. PSNR/SSIM on "
        "8-bit images; PESQ is wide-band P.862.2; DNSMOS is P.835 OVRL (no reference needed). Times are "
        f"on this machine ({device}).\n\n" + table + "\n" + figures
        + "\nReconstructed speech: `audio/<clip>__<tokenizer>.wav` next to `audio/<clip>__original.wav`.\n")
    print(table)
    print(f"\nwrote {out}/report.md, report.json, image_grid.png, spectrograms.png, audio/*.wav "
          f"({time.perf_counter() - t_start:.0f} s)")
    return public


# ----------------------------------------------------------------------------- packaging
def package_checkpoint(name: str, run_dir: str | Path, dest_root: str | Path = WEIGHTS_ROOT, use_ema: bool = True,
                       half: bool = True) -> Path:
    """Newest checkpoint of a training run -> ``dest_root/name/{config.json, model.safetensors,
    training_log.csv}`` (the run's logged losses: ``tests/test_demo.py`` retrains the start of the
    recipe and compares against them).

    use_ema: take the EMA weights (``step_*/ema``); half: store parameters as float16 (buffers,
    e.g. dMel's filterbank or an EMA codebook, stay float32; loading casts back to float32).
    """
    import zoo
    from zoo.train.checkpointing import latest_checkpoint

    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"no complete checkpoint under {run_dir}")
    src = ckpt / "ema" if use_ema else ckpt
    tok = zoo.from_pretrained(src)
    if half:
        for p in tok.parameters():
            p.data = p.data.half()
    dest = Path(dest_root) / name
    dest.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(dest)
    log = Path(run_dir) / "metrics.csv"
    if not log.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.csv (the training log shipped with the weights)")
    with atomic_path(dest / "training_log.csv") as tmp:
        shutil.copyfile(log, tmp)
    for extra in dest.iterdir():  # keep exactly what the package ships
        if extra.name not in PACKAGED_FILES:
            extra.unlink()
    print(f"packaged {src} ({json.loads((ckpt / 'trainer_state.json').read_text())['step']} steps) -> {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zoo demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--only", nargs="+", default=None, help="registry names to evaluate (default: every *.demo)")
    p.add_argument("--no-baselines", action="store_true", help="skip the dMel Griffin-Lim baseline")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (faster)")
    p.add_argument("--package", nargs="+", metavar="NAME=RUN_DIR", default=None,
                   help="package finished runs into zoo/weights/NAME instead of running the demo")
    p.add_argument("--no-ema", action="store_true", help="with --package: raw weights instead of the EMA")
    args = p.parse_args(argv)
    if args.package:
        for item in args.package:
            if "=" not in item:
                p.error(f"--package expects NAME=RUN_DIR, got {item!r}")
            name, run = item.split("=", 1)
            package_checkpoint(name, run, use_ema=not args.no_ema)
        return 0
    run_demo(args.out, args.device, names=args.only, baselines=() if args.no_baselines else BASELINES,
             dnsmos=not args.no_dnsmos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
