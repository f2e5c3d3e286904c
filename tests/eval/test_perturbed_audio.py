"""Perturbed audio metrics (eval.pfid): RobusTok's latent perturbation on audio tokenizers.

WavTokenizer (EMA VQ) whose codebook is k-means-initialised on real speech (one training-mode
forward on offline speech), and dMel (scalar bins per mel channel, the packaged weights). The
changed-token fraction, the candidate sets and the seeding are checked against the definition;
alpha=0 reproduces the clean metrics exactly; dMel (whose Griffin-Lim decoder is meaningful
without training) shows that perturbation degrades the metrics.
"""
from __future__ import annotations

import math

import pytest
import torch

import zoo
from eval.audio import PESQ, STOI, MelDistance
from eval.pfid import (changed_fraction, effective_delta, expected_changed_fraction, perturbation_protocol,
                       perturbed_label, perturbed_tokens, supports_pfid)
from zoo.data.offline import load_speech, speech_paths
from zoo.quant.perturb import leaf_quantizers, topk_candidates


def _chunks(sample_rate: int, seconds: float = 1.28, en: int = 3) -> torch.Tensor:
    """Real speech (alsa clips + a few fillets-ng utterances) cut into equal chunks ``[N, T]``."""
    seg = int(seconds * sample_rate)
    out = []
    for p in speech_paths("alsa") + speech_paths("en")[:en]:
        w = load_speech(p, sample_rate)
        out += [w[s: s + seg] for s in range(0, w.numel() - seg + 1, seg)]
    return torch.stack(out)


@pytest.fixture(scope="module")
def wavtok():
    """wavtokenizer_tiny_75.scratch with its codebook k-means-initialised on real speech."""
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("wavtokenizer_tiny_75.scratch")
    x = _chunks(tok.sample_rate)
    assert x.shape[0] * 96 >= tok.codebook_size  # enough frames for 1024 distinct k-means seeds
    tok.train()
    with torch.no_grad():
        tok(x)  # the first training forward runs the k-means initialisation
    tok.eval()
    (q,) = leaf_quantizers(tok)
    assert bool(q.inited.item())
    return tok, x


@pytest.fixture(scope="module")
def clean_encoding(wavtok):
    """(speech [8, T], clean tokens, encoder output at the quantizer input)."""
    tok, x = wavtok
    (q,) = leaf_quantizers(tok)
    seen = {}
    h = q.register_forward_hook(lambda m, i, o: seen.update(z=i[0].detach().clone()))
    xe = x[:8]
    try:
        clean = tok.encode(xe)
    finally:
        h.remove()
    return xe, clean, seen["z"]


def _metrics(recon: torch.Tensor, x: torch.Tensor, sr: int) -> dict[str, float]:
    out = {}
    for name, cls in (("stoi", STOI), ("pesq", PESQ), ("mel_distance", MelDistance)):
        m = cls(sample_rate=sr)
        m.update(recon, x)
        out[name] = float(m.compute())
    return out


def _recon(tok, tokens, x, **kw):
    return tok.decode(tokens, **kw).reshape(x.shape[0], -1)[:, : x.shape[-1]].clamp(-1, 1)


def test_wavtokenizer_alpha_zero_is_clean(wavtok):
    tok, x = wavtok
    xe = x[:3]
    assert supports_pfid(tok) == (True, "")
    clean = tok.encode(xe)
    same = perturbed_tokens(tok, xe, alpha=0.0, delta=100, seed=3)
    assert torch.equal(same.ids, clean.ids)
    rc, r0 = _recon(tok, clean, xe), _recon(tok, same, xe)
    assert torch.equal(rc, r0)
    assert _metrics(r0, xe, tok.sample_rate) == _metrics(rc, xe, tok.sample_rate)


@pytest.mark.parametrize("alpha,delta", [(0.5, 100), (1.0, 4), pytest.param(0.3, 2, marks=pytest.mark.slow)])
def test_wavtokenizer_changed_fraction_and_candidates(wavtok, clean_encoding, alpha, delta):
    """P(token changes) = alpha (1 - 1/delta); every new code is among the delta codes nearest to
    the encoder output; at alpha=1 the pick is uniform over the delta candidates."""
    tok, _ = wavtok
    (q,) = leaf_quantizers(tok)
    x, clean, z = clean_encoding
    pert = perturbed_tokens(tok, x, alpha, delta, seed=0)
    n = clean.ids.numel()
    assert n >= 700
    frac = float(changed_fraction(clean.ids, pert.ids))
    p = expected_changed_fraction(alpha, delta)
    assert p == pytest.approx(alpha * (1 - 1 / delta))
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9, (frac, p)

    query = z.movedim(q.channel_dim, -1).reshape(-1, q.dim)
    cands, _ = topk_candidates(query, q.codebook, delta)
    hit = cands == pert.ids.reshape(-1, 1)
    assert hit.any(1).all()  # every perturbed code is one of the delta nearest
    assert (cands == clean.ids.reshape(-1, 1)).any(1).all()  # and the clean code is among them
    if alpha == 1.0:  # uniform over candidates: each rank ~ 1/delta (rank of the pick among the candidates)
        ranks = torch.where(pert.ids.reshape(-1) == clean.ids.reshape(-1), 0, hit.float().argmax(1))
        share = torch.bincount(ranks, minlength=delta).float() / n
        tol = 4 * math.sqrt((1 / delta) * (1 - 1 / delta) / n)
        assert (share - 1 / delta).abs().max() < tol, share


def test_wavtokenizer_seeded_and_metrics_move(wavtok):
    tok, x = wavtok
    xe = x[:3]
    a = perturbed_tokens(tok, xe, 0.5, 100, seed=7)
    b = perturbed_tokens(tok, xe, 0.5, 100, seed=7)
    c = perturbed_tokens(tok, xe, 0.5, 100, seed=8)
    assert torch.equal(a.ids, b.ids) and not torch.equal(a.ids, c.ids)
    ma = _metrics(_recon(tok, a, xe), xe, tok.sample_rate)
    assert ma == _metrics(_recon(tok, b, xe), xe, tok.sample_rate)  # same seed -> identical numbers
    clean = _metrics(_recon(tok, tok.encode(xe), xe), xe, tok.sample_rate)
    assert all(math.isfinite(v) for v in ma.values())
    # an untrained decoder gives no meaningful direction here (see the dMel test), but the numbers move
    assert ma["pesq"] != clean["pesq"] and ma["mel_distance"] != clean["mel_distance"]


def test_dmel_scalar_bins_follow_the_definition_and_degrade():
    """dMel: each (frame, channel) id is a token with the 16 bin centres as its 1-D codebook."""
    if "dmel.official" not in zoo.list_tokenizers(pretrained=True):
        pytest.skip("dmel.official is not registered")
    tok = zoo.create_tokenizer("dmel.official", pretrained=True).eval()
    sr = tok.sample_rate
    x = torch.stack([load_speech(p, sr)[: int(1.28 * sr)] for p in speech_paths("alsa")[:3]])
    assert supports_pfid(tok)[0] and effective_delta(tok, 100) == 16
    clean = tok.encode(x)
    assert torch.equal(perturbed_tokens(tok, x, 0.0, 4, seed=0).ids, clean.ids)
    n = clean.ids.numel()
    log_mel = tok.log_mel(x).double()
    for alpha, delta in ((0.5, 2), (1.0, 4)):
        pert = perturbed_tokens(tok, x, alpha, delta, seed=1)
        p = expected_changed_fraction(alpha, delta)
        assert abs(float(changed_fraction(clean.ids, pert.ids)) - p) < 4 * math.sqrt(p * (1 - p) / n)
        # the new bin is one of the delta centres nearest to the log-mel value (distance rank < delta)
        d = (log_mel[..., None] - tok.centers.double()).abs()
        mine = d.gather(-1, pert.ids[..., None].long())
        assert ((d < mine).sum(-1) < delta).all()
        assert torch.equal(perturbed_tokens(tok, x, alpha, delta, seed=1).ids, pert.ids)
    with pytest.raises(ValueError, match="delta"):
        perturbed_tokens(tok, x, 0.5, 17, seed=0)

    def metrics(tokens):
        recon = tok.decode(tokens, griffin_lim_iters=16, generator=torch.Generator().manual_seed(0))
        return _metrics(recon[:, : x.shape[-1]].clamp(-1, 1), x, sr)

    m0 = metrics(clean)
    m1 = metrics(perturbed_tokens(tok, x, 0.5, 4, seed=0))
    assert m1["mel_distance"] > m0["mel_distance"] and m1["stoi"] < m0["stoi"] and m1["pesq"] < m0["pesq"]


def test_labels_and_protocol_carry_the_parameters():
    assert perturbed_label("stoi", 0.5, 100, 0) == "p_stoi(alpha=0.5, delta=100, seed=0)"
    proto = perturbation_protocol(0.25, 8, 3, unit="clip")
    assert (proto["alpha"], proto["delta"], proto["seed"]) == (0.25, 8, 3)
    assert proto["expected_changed_fraction"] == pytest.approx(0.25 * 7 / 8)
    assert "clip" in proto["perturbation"]


def test_rejects_bad_parameters(wavtok):
    tok, x = wavtok
    with pytest.raises(ValueError, match="alpha"):
        perturbed_tokens(tok, x[:1], 1.5, 4, seed=0)
    with pytest.raises(ValueError, match="delta"):
        perturbed_tokens(tok, x[:1], 0.5, 0, seed=0)
    with pytest.raises(ValueError, match="mode"):
        perturbed_tokens(tok, x[:1], 0.5, 4, seed=0, mode="nope")
