"""The evaluation metric protocol: the registry by name and modality, each metric fed what it
measures (the reconstruction or, for ``p_<metric>``, the perturbed one; audio lengths), protocols
and labels, and the real-image features computed once per batch for every FID of a run."""
from __future__ import annotations

import pytest
import torch

import zoo
from eval.metric import EvalConfig, MetricContext
from eval.metric_registry import DEFAULTS, METRICS, build_metric


def test_names_by_modality():
    assert METRICS["image"] == ("psnr", "ssim", "ms_ssim", "lpips", "rfid", "pfid", "usage",
                                "p_psnr", "p_ssim", "p_ms_ssim", "p_lpips")
    assert METRICS["video"] == ("psnr", "ssim", "lpips", "fvd", "usage", "p_psnr", "p_ssim", "p_lpips", "p_fvd")
    assert METRICS["audio"] == ("si_sdr", "mel_distance", "pesq", "stoi", "utmos", "dnsmos", "usage",
                                "p_si_sdr", "p_mel_distance", "p_pesq", "p_stoi", "p_utmos", "p_dnsmos")
    assert DEFAULTS == {"image": ("psnr", "ssim", "ms_ssim", "lpips", "rfid", "usage"),
                        "video": ("psnr", "ssim", "lpips", "fvd", "usage"),
                        "audio": ("si_sdr", "mel_distance", "pesq", "stoi", "usage")}


def _image_run(photo_batch, **config):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    x = photo_batch[:2]
    ctx = MetricContext(tok, tuple(x.shape[-2:]), torch.device("cpu"), EvalConfig(**config))
    tokens = tok.encode(x)
    return tok, x, ctx, tokens, tok.modality.fit(tok.decode(tokens), x)


def test_each_metric_gets_its_reconstruction(photo_batch):
    from eval.image import ImageFidelity
    from eval.pfid import perturbed_tokens
    from eval.usage import CodebookUsage

    tok, x, ctx, tokens, recon = _image_run(photo_batch, perturb_alpha=1.0, perturb_delta=4, perturb_seed=2)
    metrics = {n: build_metric(n, ctx) for n in ("psnr", "p_psnr", "usage")}
    for m in metrics.values():
        m.update(x, recon, tokens, batch=5)
    values = {n: m.compute() for n, m in metrics.items()}
    # the same computations done by hand (same kernels on the same data: equal to the bit)
    clean = ImageFidelity(("psnr",))
    clean.update(recon, x)
    pert = ImageFidelity(("psnr",))
    pt = perturbed_tokens(tok, x, 1.0, 4, seed=2 + 5)  # perturbation seed + global batch index
    pert.update(tok.decode(pt).clamp(0, 1), x)
    usage = CodebookUsage(tok.codebook_size, num_positions=tokens.ids.shape[1])
    usage.update(tokens.ids)
    assert values["psnr"] == clean.compute()["psnr"] and values["p_psnr"] == pert.compute()["psnr"]
    assert values["p_psnr"] != values["psnr"]
    expected = usage.compute()
    assert set(values["usage"]) == set(expected)
    assert all(torch.equal(values["usage"][k], v) for k, v in expected.items())
    p = metrics["p_psnr"]
    assert p.label == "p_psnr(alpha=1, delta=4, seed=2)"
    assert (p.protocol["alpha"], p.protocol["delta"], p.protocol["seed"]) == (1.0, 4, 2)
    assert p.protocol["compared_with"] == "the original input, as psnr" and "VectorQuantizer" in p.protocol["token"]
    # 64 ids: the fraction and its id-weighted mean are exact binary fractions
    assert p.protocol["measured_changed_fraction"] == float((pt.ids != tokens.ids).float().mean())
    assert p.protocol["definition"] == metrics["psnr"].protocol["definition"]
    assert metrics["psnr"].label is None and "measured_changed_fraction" not in metrics["psnr"].protocol


def test_refusals_name_the_reason(photo_batch):
    _, _, ctx, _, _ = _image_run(photo_batch, perturb_alpha=2.0)
    with pytest.raises(ValueError, match="not available for image"):
        build_metric("pesq", ctx)
    with pytest.raises(ValueError, match="perturb-alpha"):
        build_metric("p_psnr", ctx)
    vae = zoo.create_tokenizer("titok_tiny.untrained", quantizer="vae", codebook_size=None)
    ctx = MetricContext(vae, (64, 64), torch.device("cpu"), EvalConfig())
    with pytest.raises(ValueError, match="p_ssim: latent perturbation unavailable"):
        build_metric("p_ssim", ctx)


def test_audio_metrics_see_the_clip_lengths():
    from eval.audio import SISDR
    from zoo.data.offline import load_speech, speech_paths

    torch.manual_seed(0)
    tok = zoo.create_tokenizer("wavtokenizer_tiny_40.scratch").eval()
    clips = [load_speech(p, tok.sample_rate, max_seconds=s) for p, s in zip(speech_paths("alsa")[:2], (0.6, 0.35))]
    x, lengths = tok.modality.collate(clips)
    tokens = tok.encode(x)
    recon = tok.modality.fit(tok.decode(tokens), x)
    ctx = MetricContext(tok, (), torch.device("cpu"), EvalConfig())
    metric = build_metric("si_sdr", ctx)
    metric.update(x, recon, tokens, lengths=lengths)
    ref = SISDR(tok.sample_rate)
    ref.update(recon, x, lengths=lengths)  # padding excluded: each clip scored on its own samples
    assert metric.compute() == ref.compute()
    padded = SISDR(tok.sample_rate)
    padded.update(recon, x)
    assert metric.compute() != padded.compute()
    assert metric.protocol["sample_rate"] == tok.sample_rate and "SDR" in metric.protocol["definition"]


@pytest.mark.slow
def test_real_features_are_computed_once_per_batch(photo_batch, tmp_path):
    """rFID, pFID and two token-count sweep FIDs share one Inception network and one forward of the
    real batch: 1 real + 4 reconstruction forwards per batch."""
    from eval.fid import InceptionFeatures

    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.manual_seed(0)
    torch.save(InceptionFeatures(weights=False).state_dict(), weights)
    tok, x, ctx, tokens, recon = _image_run(photo_batch, inception_weights=str(weights), perturb_delta=4)
    rfid, pfid = build_metric("rfid", ctx), build_metric("pfid", ctx)
    sweep = [build_metric("rfid", ctx) for _ in range(2)]
    calls = []
    ctx.inception().register_forward_hook(lambda *a: calls.append(1))
    for m in (rfid, pfid, *sweep):
        m.update(x, recon, tokens)
    assert len(calls) == 5
    assert rfid.fid.net is pfid.metric.fid.net is sweep[0].fid.net
    torch.testing.assert_close(rfid.fid.real_sum, pfid.metric.fid.real_sum, rtol=0, atol=0)
    assert pfid.label == "pFID(alpha=0.5, delta=4, seed=0)" and pfid.frechet and rfid.frechet
