"""The main job: ``python -m zoo demo`` (``make demo``).

Reconstructs held-out real photos and speech with every packaged demo tokenizer (registry tag
``demo``, weights in ``zoo/weights/``), the untrained dMel baseline (Griffin-Lim) and classic
codecs at equal bits (bicubic thumbnails, JPEG, WebP, Codec2, Opus: ``eval.demo_baselines``),
prints an image and a speech table (tokens, bits, PSNR / SSIM, STOI / PESQ wb and nb / DNSMOS,
encode / decode time) and each learned tokenizer's margin over the best classic codec that spends
no more bits, and writes ``OUT/report.md``, ``OUT/report.json``, ``OUT/rate_distortion.{png,json}``
(quality vs bits; the 1D image tokenizer as a curve over its first 8..64 tokens),
``OUT/image_grid.png``, ``OUT/audio/*.wav`` and ``OUT/spectrograms.png``. No network is used.

Held-out data (never seen by the demo recipes, see ``zoo.data.offline``):
photos: the held-out sources of ``photo_split()`` (resized, centre-cropped to the model's size);
speech: 3 Dutch + 3 English held-out utterances of ``speech_split()`` (>= 2 s, first 4 s).

A finished training run of a demo recipe becomes a shipped checkpoint with ``python -m zoo package``
(``zoo.train.package``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

__all__ = ["main", "run_demo", "evaluate_image", "evaluate_audio", "held_out_photos", "held_out_crops",
           "held_out_speech", "markdown_table", "image_table", "speech_table", "verdicts",
           "BASELINES", "CURVE_TOKENS"]

CLIPS_PER_CORPUS = 3
SPEECH_SECONDS = 4.0
MIN_SPEECH_SECONDS = 2.0
#: registry entries shown next to the demo tokenizers (no trained weights: no download either)
BASELINES = ("dmel.official",)


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
#: prefix lengths of the quality-vs-token-count curve of 1D image tokenizers (decode(tokens, length=L))
CURVE_TOKENS = (8, 16, 32, 64)


def _token_curve(tok, tokens, x: torch.Tensor, crops: torch.Tensor) -> dict:
    """PSNR of decoding only the first L tokens, L in :data:`CURVE_TOKENS` (up to the model's count)."""
    from eval.demo_baselines import image_scores

    crop_tokens = tok.encode(crops)
    lengths = [n for n in CURVE_TOKENS if n <= tokens.ids.shape[1]]
    bits = bits_per_position(tok)
    return {"tokens": lengths, "bits": [n * bits for n in lengths],
            "psnr": [image_scores(tok.decode(tokens, length=n), x)["psnr"] for n in lengths],
            "psnr_crops": [image_scores(tok.decode(crop_tokens, length=n), crops)["psnr"] for n in lengths],
            "tail_drop_trained": bool(getattr(tok, "tail_drop", False))}


def evaluate_image(tok, device: str = "cpu") -> dict:
    """Held-out photo metrics of an image tokenizer (8-bit quantised PSNR / SSIM, ``eval.image``);
    for tokenizers that decode token prefixes (TiTok ``length=``) also ``curve``: PSNR at
    :data:`CURVE_TOKENS` tokens. Returns the report row plus ``_originals`` / ``_recons`` (tensors, for the grid)."""
    from eval.demo_baselines import image_scores

    size = int(getattr(tok, "image_size", 64))
    names, x = held_out_photos(size)
    x = x.to(device)
    tok.encode(x[:1])  # warm-up (first-call allocations are not part of the timing)
    tokens, enc_ms = _timed(lambda: tok.encode(x))
    y, dec_ms = _timed(lambda: tok.decode(tokens))
    y = y.clamp(0, 1)
    whole = image_scores(y, x)
    crops = held_out_crops(size).to(device)
    crop_m = image_scores(tok.reconstruct(crops), crops)
    n = tokens.ids.shape[1]
    row = {"modality": "image", "items": len(x), "input": f"{size}x{size}", "tokens": n,
           "bits": n * bits_per_position(tok), "psnr": whole["psnr"], "ssim": whole["ssim"],
           "psnr_per_image": dict(zip(names, whole["psnr_each"])),
           "psnr_crops": crop_m["psnr"], "ssim_crops": crop_m["ssim"], "crops": len(crops),
           "encode_ms": enc_ms / len(x), "decode_ms": dec_ms / len(x), "_names": names,
           "_originals": x.cpu(), "_recons": y.cpu()}
    if getattr(tok, "variable_length_arg", None) == "length":
        row["curve"] = _token_curve(tok, tokens, x, crops)
    return row


def evaluate_audio(tok, device: str = "cpu", dnsmos: bool = True) -> dict:
    """Held-out speech metrics of an audio tokenizer (``eval.demo_baselines.speech_scores``: STOI,
    wide-band PESQ, narrow-band PESQ at 8 kHz, DNSMOS OVRL). Returns the report row plus ``_clips``:
    ``[(name, original, recon)]``."""
    from eval.demo_baselines import speech_scores

    sr = tok.sample_rate
    names, clips = held_out_speech(sr)
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
        pairs.append((clip_name, x[0].cpu(), y[0]))
    tps = float(tok.tokens_per_second)
    row = {"modality": "audio", "items": len(clips), "input": f"{sr} Hz", "tokens_per_s": tps,
           "bits_per_s": tps * bits_per_position(tok),
           **speech_scores([(x, y) for _, x, y in pairs], sr, dnsmos=dnsmos),
           "encode_ms_per_s": enc_total / seconds, "decode_ms_per_s": dec_total / seconds, "_clips": pairs}
    if getattr(tok, "num_quantizers", 1) > 1:
        row["curve"] = _level_curve(tok, [x for _, x, _ in pairs], device)
    return row


def _level_curve(tok, clips: list[torch.Tensor], device: str) -> dict:
    """Residual-VQ codecs: STOI / PESQ wb / PESQ nb when decoding from the first k levels, k = 1..Q.
    A codec whose encoder takes ``n_q`` (the levels it will be decoded from) encodes for each k, as a
    codec run at that rate would; otherwise one encode serves every k."""
    from eval.demo_baselines import speech_scores

    levels = list(range(1, tok.num_quantizers + 1))
    per_rate = "n_q" in tok.encode_keywords()
    shared = None if per_rate else [tok.encode(x[None].to(device)) for x in clips]
    curve = {"n_q": levels, "bits_per_s": [], "stoi": [], "pesq": [], "pesq_nb": []}
    per_level = bits_per_position(tok) / tok.num_quantizers
    for k in levels:
        tokens = shared or [tok.encode(x[None].to(device), n_q=k) for x in clips]
        pairs = [(x, tok.decode(t, n_q=k).reshape(-1)[: x.numel()].float().clamp(-1, 1).cpu())
                 for x, t in zip(clips, tokens)]
        scores = speech_scores(pairs, tok.sample_rate, dnsmos=False)
        curve["bits_per_s"].append(float(tok.tokens_per_second) * per_level * k)
        for key in ("stoi", "pesq", "pesq_nb"):
            curve[key].append(scores[key])
    return curve


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


def _label(r: dict) -> str:
    return r["tokenizer"] if r.get("classic") else f"`{r['tokenizer']}`"


def _markdown(columns: list[str], cells: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                     + ["| " + " | ".join(c) + " |" for c in cells])


def _image_cells(r: dict) -> list[str]:
    g = r.get
    bits = f"{r['bits']:.0f}"
    if "bits_crops" in r and round(r["bits_crops"]) != round(r["bits"]):
        bits += f" ({r['bits_crops']:.0f})"
    return [_label(r), f"{r['input']} photo", str(g("tokens", "-")), bits, f"{r['psnr']:.2f}", f"{r['ssim']:.3f}",
            f"{r['psnr_crops']:.2f}", f"{r['ssim_crops']:.3f}", _fmt(g("encode_ms"), ".1f"), _fmt(g("decode_ms"), ".1f")]


def image_table(rows: list[dict]) -> str:
    """Markdown table of the image rows (learned tokenizers and classic codecs); times in ms per image."""
    return _markdown(["tokenizer / codec", "input", "tokens", "bits / image (crops)", "PSNR dB", "SSIM",
                      "PSNR dB crops", "SSIM crops", "encode ms", "decode ms"],
                     [_image_cells(r) for r in rows if r["modality"] == "image"])


def _speech_cells(r: dict) -> list[str]:
    g = r.get
    if "stoi" not in r:  # reference row
        return [r["tokenizer"], r["input"]] + ["-"] * 5 + [_fmt(g("dnsmos_ovrl"), ".2f"), "-", "-"]
    rate = f"{r['bits_per_s']:.0f}"
    if "nominal_bits_per_s" in r and round(r["nominal_bits_per_s"]) != round(r["bits_per_s"]):
        rate = f"{r['nominal_bits_per_s']:.0f} (file {r['bits_per_s']:.0f})"
    return [_label(r), r["input"], _fmt(g("tokens_per_s"), ".1f"), rate, f"{r['stoi']:.3f}", f"{r['pesq']:.2f}",
            f"{r['pesq_nb']:.2f}", _fmt(g("dnsmos_ovrl"), ".2f"), _fmt(g("encode_ms_per_s"), ".1f"),
            _fmt(g("decode_ms_per_s"), ".1f")]


def speech_table(rows: list[dict]) -> str:
    """Markdown table of the speech rows (learned tokenizers, classic codecs, the original)."""
    return _markdown(["tokenizer / codec", "coded at", "tokens / s", "bit/s", "STOI", "PESQ wb", "PESQ nb (8 kHz)",
                      "DNSMOS OVRL", "encode ms/s", "decode ms/s"],
                     [_speech_cells(r) for r in rows if r["modality"] == "audio"])


def markdown_table(rows: list[dict]) -> str:
    """The image table, then the speech table (each only when it has rows)."""
    parts = [t(rows) for t, m in ((image_table, "image"), (speech_table, "audio")) if any(r["modality"] == m
                                                                                           for r in rows)]
    return "\n\n".join(parts)


#: metrics compared with the best classic codec at no more bits, per modality
VERDICT_METRICS = {"image": ("psnr", "psnr_crops"), "audio": ("stoi", "pesq", "pesq_nb")}


def verdicts(rows: list[dict]) -> list[str]:
    """One line per learned tokenizer and metric: its margin over the best classic codec that spends no
    more bits (``eval.demo_baselines.best_classic``)."""
    from eval.demo_baselines import best_classic

    lines = []
    for r in rows:
        if r.get("classic") or "stoi" not in r and "psnr" not in r:
            continue
        for metric in VERDICT_METRICS[r["modality"]]:
            best = best_classic(r, rows, metric)
            if best is None:
                lines.append(f"- `{r['tokenizer']}` {metric}: no classic codec in the report spends as few bits")
                continue
            lines.append(_verdict_line(f"`{r['tokenizer']}`", metric, r[metric], best))
        if r["modality"] == "audio" and "curve" in r:  # residual codecs: every number of codebooks is a rate
            lines += _curve_verdicts(r, rows)
    return lines


def _curve_verdicts(r: dict, rows: list[dict]) -> list[str]:
    """Verdict lines of a residual codec decoded from its first k codebooks (k below all of them)."""
    from eval.demo_baselines import best_classic

    lines, c = [], r["curve"]
    for i, k in enumerate(c["n_q"][:-1]):
        point = {"modality": "audio", "bits_per_s": c["bits_per_s"][i], **{m: c[m][i] for m in VERDICT_METRICS["audio"]}}
        for metric in VERDICT_METRICS["audio"]:
            best = best_classic(point, rows, metric)
            if best is None:
                continue
            label = f"`{r['tokenizer']}` from {k} codebooks ({point['bits_per_s']:.0f} bit/s)"
            lines.append(_verdict_line(label, metric, point[metric], best))
    return lines


def _verdict_line(label: str, metric: str, value: float, best: dict) -> str:
    margin = value - best[metric]
    return (f"- {label} {metric} {value:.3f} vs {best['tokenizer']} {best[metric]:.3f}: "
            f"{'beats it' if margin > 0 else 'loses'} by {abs(margin):.3f}")


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _rd_panels(rows: list[dict], thumbs: dict | None) -> list[dict]:
    """Panels of the rate-distortion figure: bits vs PSNR (whole photos, crops), bit/s vs STOI, PESQ."""
    panels = []
    image = [r for r in rows if r["modality"] == "image"]
    if image:
        for metric, what in (("psnr", "whole photos"), ("psnr_crops", "closer-up crops")):
            series = [{"label": "bicubic thumbnails", "x": thumbs["bits"], "y": thumbs[metric]}] if thumbs else []
            for r in image:
                if r.get("classic") and "thumbnail" in r["tokenizer"]:
                    continue
                if "curve" in r:
                    c = r["curve"]
                    series.append({"label": f"{r['tokenizer']} (first L tokens)", "x": c["bits"], "y": c[metric],
                                   "learned": True})
                else:
                    bits = r["bits_crops"] if metric == "psnr_crops" and "bits_crops" in r else r["bits"]
                    series.append({"label": r["tokenizer"], "x": [bits], "y": [r[metric]],
                                   "learned": not r.get("classic")})
            panels.append({"title": f"held-out photos 64x64 ({what})", "xlabel": "bits / image",
                           "ylabel": "PSNR dB", "series": series})
    speech = [r for r in rows if r["modality"] == "audio" and "stoi" in r]
    if speech:
        for metric, label in (("stoi", "STOI"), ("pesq", "PESQ wide-band"), ("pesq_nb", "PESQ narrow-band")):
            series = []
            for family in ("Codec2", "Opus"):
                fam = sorted((r for r in speech if r["tokenizer"].startswith(family)),
                             key=lambda r: r.get("rate_bits_per_s", r["bits_per_s"]))
                if fam:
                    series.append({"label": family, "x": [r.get("rate_bits_per_s", r["bits_per_s"]) for r in fam],
                                   "y": [r[metric] for r in fam]})
            for r in speech:
                if r.get("classic"):
                    continue
                if "curve" in r:
                    series.append({"label": f"{r['tokenizer']} (first k codebooks)", "x": r["curve"]["bits_per_s"],
                                   "y": r["curve"][metric], "learned": True})
                else:
                    series.append({"label": r["tokenizer"], "x": [r["bits_per_s"]], "y": [r[metric]],
                                   "learned": not r.get("baseline")})
            panels.append({"title": f"held-out speech: {label}", "xlabel": "bit/s", "ylabel": label, "series": series})
    return panels


def run_demo(out: str | Path = "demo_out", device: str = "cpu", names: list[str] | None = None,
             baselines: tuple[str, ...] = BASELINES, dnsmos: bool = True, classic: bool = True,
             progress: bool = True) -> list[dict]:
    """Evaluate ``names`` (default: every ``*.demo`` entry), the registry baselines and (``classic``)
    the classic codecs at equal bits; write ``out`` (tables, rate-distortion figure, image grid,
    spectrograms, wavs). ``progress``: a tqdm bar on stderr."""
    from tqdm.auto import tqdm

    import zoo

    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    demo_names = list(names) if names is not None else zoo.list_tokenizers(filter="*.demo")
    print(f"Tokenizer Zoo {zoo.__version__}: {len(zoo.list_tokenizers())} registered tokenizers "
          f"({len(zoo.list_tokenizers(pretrained=True))} with weights); demo tokenizers: {demo_names}", flush=True)
    if not demo_names:
        raise SystemExit("no packaged demo tokenizer is registered (zoo/weights/ is empty)")
    todo = demo_names + [b for b in baselines if b not in demo_names]
    bar = tqdm(total=len(todo) + (2 if classic else 0), desc="demo", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    t_start = time.perf_counter()
    rows, grids, speech = _learned_rows(todo, demo_names, out, device, dnsmos, bar)
    thumbs = None
    if classic and grids:
        thumbs = _classic_image_rows(rows, grids, bar)
    if classic and speech:
        _classic_speech_rows(rows, speech, out, dnsmos, bar)
    bar.close()
    if speech and dnsmos:
        rows.append(_original_speech_row())
    public = [_public(r) for r in rows]
    _write_figures(out, public, grids, speech, thumbs)
    (out / "report.json").write_text(json.dumps(public, indent=2))
    (out / "rate_distortion.json").write_text(json.dumps({"rows": public, "thumbnail_curve": thumbs}, indent=2))
    table, verdict = markdown_table(public), verdicts(public)
    _write_report_md(out, device, table, verdict, _curves_markdown(public, thumbs))
    print(table)
    print("\n" + "\n".join(verdict))
    print(f"\nwrote {out}/report.md, report.json, rate_distortion.png, image_grid.png, spectrograms.png, audio/*.wav "
          f"({time.perf_counter() - t_start:.0f} s)")
    return public


def _learned_rows(todo: list[str], demo_names: list[str], out: Path, device: str, dnsmos: bool, bar):
    """Rows of the registered tokenizers ``todo`` on the held-out items; also ``grids`` (image rows
    with their reconstructions) and ``speech`` (clip -> [(label, waveform, rate)]), wavs written."""
    import zoo
    from zoo.audio import save_audio

    rows, grids, speech = [], [], {}
    for name in todo:
        bar.set_postfix_str(name)
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
            bar.update()
            continue
        rows.append({"tokenizer": name, "baseline": name not in demo_names, **row})
        bar.update()
    return rows, grids, speech


def _classic_image_rows(rows: list[dict], grids: list, bar) -> dict:
    """Append the classic image codecs at the learned tokenizers' bit budgets; returns the thumbnail curve."""
    from eval.demo_baselines import image_baseline_rows, thumbnail_curve

    bar.set_postfix_str("classic image codecs")
    names_, whole = held_out_photos(64)
    crops = held_out_crops(64)
    budgets = [r["bits"] for _, r in grids if r["input"] == "64x64"]
    rows += image_baseline_rows(whole, crops, names_, budgets or [1024])
    bar.update()
    return thumbnail_curve(whole, crops)


def _classic_speech_rows(rows: list[dict], speech: dict, out: Path, dnsmos: bool, bar) -> None:
    """Append the classic speech codecs' rows; their wavs are written and two of them join ``speech``."""
    from eval.demo_baselines import SPEECH_RATE, speech_baseline_rows
    from zoo.audio import save_audio

    bar.set_postfix_str("classic speech codecs")
    clip_names, clips = held_out_speech(SPEECH_RATE)
    classic_rows, decoded = speech_baseline_rows(clip_names, clips, dnsmos=dnsmos)
    rows += classic_rows
    for codec, waves in decoded.items():
        tag = codec.lower().replace(" kbit/s", "k").replace(" ", "_")
        for clip_name, wave in zip(clip_names, waves):
            save_audio(out / "audio" / f"{clip_name}__{tag}.wav", wave, SPEECH_RATE)
            if codec in ("Codec2 1200", "Opus 6 kbit/s") and clip_name in speech:
                speech[clip_name].append((codec, wave, SPEECH_RATE))
    bar.update()


def _write_figures(out: Path, public: list[dict], grids: list, speech: dict, thumbs: dict | None) -> None:
    """image_grid.png, spectrograms.png and rate_distortion.png (those that have data)."""
    from eval.figures import rate_distortion, spectrogram_comparison
    from eval.report import recon_grid

    for name, row in grids:
        recon_grid(out / "image_grid.png", row["_originals"], row["_recons"], max_items=len(row["_names"]),
                   title=f"held-out photos: input (top) vs {name} ({row['tokens']} tokens, "
                         f"PSNR {row['psnr']:.1f} dB)")
    if speech:
        chosen = list(speech)[:: max(1, len(speech) // 2)][:2]  # one Dutch, one English clip
        spectrogram_comparison(out / "spectrograms.png", [(c, speech[c]) for c in chosen],
                               title="held-out speech: original vs reconstructions (log-mel)")
    panels = _rd_panels(public, thumbs)
    if panels:
        rate_distortion(out / "rate_distortion.png", panels,
                        title="quality vs bits on held-out data: learned tokenizers (filled) and classic codecs (open)")


def _curves_markdown(public: list[dict], thumbs: dict | None) -> str:
    """Markdown tables of the quality-vs-tokens (images) and quality-vs-codebooks (audio) curves."""
    md = ""
    for r in public:
        if "curve" in r and r["modality"] == "image":
            c = r["curve"]
            md += (f"\n### `{r['tokenizer']}`: quality vs number of tokens "
                   f"({'trained with' if c['tail_drop_trained'] else 'NOT trained with'} One-D-Piece tail-token drop)\n\n"
                   "| tokens | bits | PSNR dB | PSNR dB crops |\n|---|---|---|---|\n"
                   + "".join(f"| {n} | {b:.0f} | {p:.2f} | {pc:.2f} |\n"
                             for n, b, p, pc in zip(c["tokens"], c["bits"], c["psnr"], c["psnr_crops"])))
    for r in public:
        if "curve" in r and r["modality"] == "audio":
            c = r["curve"]
            md += (f"\n### `{r['tokenizer']}`: quality vs number of residual codebooks decoded\n\n"
                   "| codebooks | bit/s | STOI | PESQ wb | PESQ nb |\n|---|---|---|---|---|\n"
                   + "".join(f"| {k} | {b:.0f} | {s_:.3f} | {p:.2f} | {pn:.2f} |\n" for k, b, s_, p, pn in
                             zip(c["n_q"], c["bits_per_s"], c["stoi"], c["pesq"], c["pesq_nb"])))
    if thumbs:
        md += ("\nBicubic thumbnails for comparison:\n\n| side | bits | PSNR dB | PSNR dB crops |\n|---|---|---|---|\n"
               + "".join(f"| {s}x{s} | {b} | {p:.2f} | {pc:.2f} |\n" for s, b, p, pc in
                         zip(thumbs["sides"], thumbs["bits"], thumbs["psnr"], thumbs["psnr_crops"])))
    return md


def _write_report_md(out: Path, device: str, table: str, verdict: list[str], curve_md: str) -> None:
    figures = "".join(f"\n![{f[:-4]}]({f})\n" for f in ("rate_distortion.png", "image_grid.png", "spectrograms.png")
                      if (out / f).is_file())
    (out / "report.md").write_text(
        "# Tokenizer Zoo demo\n\nHeld-out real photos (mate-backgrounds, scikit-image; `photo_split()`) and "
        "speech (fillets-ng Dutch + English; `speech_split()`), never seen in training. PSNR/SSIM on "
        "8-bit images (whole photos at 64x64, and 25 closer-up 64x64 crops); PESQ wb is P.862.2 at 16 kHz, PESQ nb "
        "is P.862 with reference and output resampled to 8 kHz; DNSMOS is P.835 OVRL (no reference needed). "
        "Classic codecs (plain names) code the same held-out items: thumbnails count 24 bits per pixel, "
        "JPEG / WebP / Opus count their whole files, Codec2 its nominal rate (file rate in brackets), "
        f"its output aligned for its fixed delay. Times are on this machine ({device}).\n\n" + table
        + "\n\n## Learned tokenizers vs the best classic codec that uses no more bits\n\n" + "\n".join(verdict)
        + "\n" + ("\n## Quality vs number of tokens / codebooks\n" + curve_md if curve_md else "") + figures
        + "\nReconstructed speech: `audio/<clip>__<tokenizer or codec>.wav` next to `audio/<clip>__original.wav`.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zoo demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--only", nargs="+", default=None, help="registry names to evaluate (default: every *.demo)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the baselines (dMel Griffin-Lim and the classic codecs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (faster)")
    args = p.parse_args(argv)
    run_demo(args.out, args.device, names=args.only, baselines=() if args.no_baselines else BASELINES,
             dnsmos=not args.no_dnsmos, classic=not args.no_baselines, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
