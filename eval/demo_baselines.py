"""The demo report's scoring protocol and its classic baselines at equal bits (``python -m zoo demo``).

Images (held-out photos at 64x64, whole and 25 closer-up crops): :func:`image_scores` (8-bit PSNR
and SSIM, ``eval.image``); :func:`image_baseline_rows`: bicubic thumbnails at the sides bracketing
each tokenizer's bits, the smallest JPEG and WebP files (``eval.baselines.image``);
:func:`thumbnail_curve`: thumbnails of several sides for the rate-distortion figure.

Speech (held-out utterances): :func:`speech_scores`: STOI, wide-band PESQ (16 kHz), narrow-band
PESQ at 8 kHz (reference and decoded resampled to 8 kHz: what Codec2 codes) and DNSMOS OVRL;
:func:`speech_baseline_rows`: Codec2 700C..3200 (delay removed) and Opus 6-12 kbit/s
(``eval.baselines.speech``), scored on the 16 kHz originals (Codec2's 8 kHz output is upsampled).

:func:`best_classic`: for a learned tokenizer, the best classic baseline that spends no more bits.
A row's rate is ``bits`` (image; ``bits_crops`` for the crop metrics) or ``rate_bits_per_s``
(speech: the measured file rate, except Codec2 whose nominal rate is used: its files pad each
700C frame to whole bytes).
"""
from __future__ import annotations

import torch

__all__ = ["image_scores", "image_baseline_rows", "thumbnail_curve", "speech_scores", "speech_baseline_rows",
           "best_classic", "SPEECH_RATE", "THUMBNAIL_CURVE_SIDES"]

#: rate of the originals the speech baselines code and are scored against
SPEECH_RATE = 16000
#: thumbnail sides drawn as the classic curve of the image rate-distortion panel
THUMBNAIL_CURVE_SIDES = (2, 3, 4, 5, 6, 7, 8, 10, 12)


# ----------------------------------------------------------------------------- images
def image_scores(recon: torch.Tensor, x: torch.Tensor) -> dict:
    """``[N, 3, H, W]`` reconstructions vs originals in [0, 1] -> mean ``psnr`` / ``ssim`` and ``psnr_each``."""
    from eval.image import ImageFidelity

    fid = ImageFidelity(("psnr", "ssim"))
    fid.update(recon.detach().float().clamp(0, 1).cpu(), x.detach().float().cpu())
    per = fid.per_image()
    return {"psnr": float(per["psnr"].mean()), "ssim": float(per["ssim"].mean()), "psnr_each": per["psnr"].tolist()}


def _image_row(name: str, code, whole: torch.Tensor, crops: torch.Tensor, names: list[str]) -> dict:
    w, c = code(whole), code(crops)
    ws, cs = image_scores(w.images, whole), image_scores(c.images, crops)
    return {"tokenizer": name, "baseline": True, "classic": True, "modality": "image", "items": len(whole),
            "input": f"{whole.shape[-2]}x{whole.shape[-1]}", "bits": w.mean_bits, "bits_crops": c.mean_bits,
            "psnr": ws["psnr"], "ssim": ws["ssim"], "psnr_per_image": dict(zip(names, ws["psnr_each"])),
            "psnr_crops": cs["psnr"], "ssim_crops": cs["ssim"], "crops": len(crops)}


def image_baseline_rows(whole: torch.Tensor, crops: torch.Tensor, names: list[str],
                        budgets: list[float]) -> list[dict]:
    """Thumbnails bracketing every bit budget, the smallest JPEG and WebP: one report row each."""
    from eval.baselines.image import bracketing_sides, jpeg, thumbnail, webp

    sides = sorted({s for b in budgets for s in bracketing_sides(b)})
    rows = [_image_row(f"bicubic thumbnail {s}x{s}", lambda t, s=s: thumbnail(t, s), whole, crops, names)
            for s in sides]
    rows.append(_image_row("JPEG quality 1 (smallest file)", lambda t: jpeg(t, 1), whole, crops, names))
    rows.append(_image_row("WebP quality 0 (smallest file)", lambda t: webp(t, 0), whole, crops, names))
    return rows


def thumbnail_curve(whole: torch.Tensor, crops: torch.Tensor, sides=THUMBNAIL_CURVE_SIDES) -> dict:
    """Bits and PSNR (whole photos and crops) of bicubic thumbnails of each side."""
    from eval.baselines.image import thumbnail, thumbnail_bits

    return {"sides": list(sides), "bits": [thumbnail_bits(s) for s in sides],
            "psnr": [image_scores(thumbnail(whole, s).images, whole)["psnr"] for s in sides],
            "psnr_crops": [image_scores(thumbnail(crops, s).images, crops)["psnr"] for s in sides]}


# ----------------------------------------------------------------------------- speech
def speech_scores(pairs: list[tuple[torch.Tensor, torch.Tensor]], sample_rate: int, dnsmos: bool = True) -> dict:
    """``(reference [T], decoded [T])`` pairs at ``sample_rate`` -> mean ``stoi``, ``pesq`` (wide-band),
    ``pesq_nb`` (narrow-band, both resampled to 8 kHz) and ``dnsmos_ovrl`` (decoded only)."""
    from eval.audio import DNSMOS, PESQ, STOI
    from zoo.audio import resample

    stoi, pesq, pesq_nb = STOI(sample_rate), PESQ(sample_rate), PESQ(8000, mode="nb")
    dns = DNSMOS(sample_rate) if dnsmos else None
    for x, y in pairs:
        x, y = x.reshape(1, -1).float().cpu(), y.reshape(1, -1).float().cpu()
        if x.shape != y.shape:
            raise ValueError(f"reference {tuple(x.shape)} and decoded {tuple(y.shape)} differ in length")
        stoi.update(y, x)
        pesq.update(y, x)
        pesq_nb.update(resample(y, sample_rate, 8000).clamp(-1, 1), resample(x, sample_rate, 8000).clamp(-1, 1))
        if dns is not None:
            dns.update(y)
    out = {"stoi": float(stoi.compute()), "pesq": float(pesq.compute()), "pesq_nb": float(pesq_nb.compute())}
    if dns is not None:
        out["dnsmos_ovrl"] = float(dns.compute()["ovrl"])
    return out


def speech_baseline_rows(names: list[str], clips: list[torch.Tensor], dnsmos: bool = True,
                         progress=None) -> tuple[list[dict], dict[str, list[torch.Tensor]]]:
    """Codec2 (every mode) and Opus (every bit rate of ``OPUS_BITRATES_KBPS``) on ``clips`` (``[T]`` at
    :data:`SPEECH_RATE`): report rows and the decoded clips at :data:`SPEECH_RATE` (by row name).
    ``progress``: optional callable(str) told when each codec is done."""
    from eval.baselines.speech import CODEC2_MODES, OPUS_BITRATES_KBPS, codec2, opus
    from zoo.audio import resample

    codecs = [(f"Codec2 {m}", (lambda x, m=m: codec2(x, SPEECH_RATE, m)), float(r)) for m, r in CODEC2_MODES.items()]
    codecs += [(f"Opus {k} kbit/s", (lambda x, k=k: opus(x, SPEECH_RATE, k)), None) for k in OPUS_BITRATES_KBPS]
    rows, decoded = [], {}
    for name, code, nominal in codecs:
        outs = [code(x) for x in clips]
        waves = [o.wave if o.sample_rate == SPEECH_RATE
                 else resample(o.wave[None], o.sample_rate, SPEECH_RATE)[0, : x.numel()].clamp(-1, 1)
                 for o, x in zip(outs, clips)]
        file_rate = sum(o.bits for o in outs) / sum(o.seconds for o in outs)
        row = {"tokenizer": name, "baseline": True, "classic": True, "modality": "audio", "items": len(clips),
               "input": f"{outs[0].sample_rate} Hz", "bits_per_s": file_rate,
               "rate_bits_per_s": nominal if nominal is not None else file_rate,
               **speech_scores(list(zip(clips, waves)), SPEECH_RATE, dnsmos=dnsmos)}
        if nominal is not None:
            row["nominal_bits_per_s"] = nominal
        rows.append(row)
        decoded[name] = waves
        if progress is not None:
            progress(name)
    return rows, decoded


# ----------------------------------------------------------------------------- comparison
def _rate(row: dict, metric: str) -> float:
    if row["modality"] == "image":
        return row["bits_crops"] if metric.endswith("_crops") and "bits_crops" in row else row["bits"]
    return row.get("rate_bits_per_s", row["bits_per_s"])


def best_classic(learned: dict, rows: list[dict], metric: str) -> dict | None:
    """The classic row of the same modality with the highest ``metric`` among those whose rate is at most
    the learned row's (None when no classic codec spends that few bits)."""
    budget = _rate(learned, metric)
    fits = [r for r in rows if r.get("classic") and r["modality"] == learned["modality"] and metric in r
            and _rate(r, metric) <= budget]
    return max(fits, key=lambda r: r[metric], default=None)
