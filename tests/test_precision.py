"""Per-stage precision: ``encode(x, dtype=...)`` / ``decode(t, dtype=...)`` / ``set_precision``.

Bounds, where reduced precision changes numbers (bf16 keeps 8 significant bits, a relative
rounding of 2^-9 = 0.2 % per op; fp16 keeps 11 bits, 2^-12 = 0.02 %):
- decode of the same ids: the output differs from the fp32 decode by a few roundings of each
  activation; an RMS error of 1 % of the signal range (40 dB PSNR) is several times what bf16
  rounding propagates through these decoders (measured 57-78 dB) and far below what a broken
  path gives (a decoder in the wrong dtype or range: < 30 dB). fp16: 8x finer, bound 55 dB.
- encode: an id changes only where the latent's two nearest codes are closer than the latent's
  bf16 error. The share of such near-ties depends on the model and the data, so the bounds are
  shares measured on these real inputs (98 % TiTok demo, 90 % WavTokenizer demo on speech) less
  a margin of 8-10 points for other CPUs' summation orders; computing the nearest-code distances in
  bf16 (the cancellation this module avoids) gives 78 % on the same speech, below the bound.
"""
import pytest
import torch

import zoo
from eval.precision import id_agreement, seeded_decode_kwargs, signal_psnr
from zoo.precision import precision_context, resolve_precision, to_float32

TINY = ["titok_tiny.untrained", "onedpiece_tiny.untrained", "flextok_tiny.untrained", "fqgan_tiny.untrained",
        "tokenflow_tiny.untrained", "video1d_tiny.untrained", "causal3d_tiny.untrained",
        "wavtokenizer_tiny_75.scratch", "dmel_vocos_tiny.scratch", "dmel.official"]


def _input(tok, name):
    from eval.benchmark import make_input

    return make_input(tok, zoo.get_info(name), 2, None)


def _decode_kw(tok):
    """Two FlexTok sampler steps; a generator seeded alike for every sampler (FlexTok, Griffin-Lim)."""
    return seeded_decode_kwargs(tok, {"steps": 2})()


@pytest.mark.parametrize("value,expected", [("fp32", torch.float32), ("BF16", torch.bfloat16),
                                            ("float16", torch.float16), (torch.bfloat16, torch.bfloat16),
                                            (None, None)])
def test_resolve_precision_accepts_names_and_dtypes(value, expected):
    assert resolve_precision(value) == expected


@pytest.mark.parametrize("value,error", [("int8", ValueError), ("fp8", ValueError), (torch.float64, ValueError),
                                         (torch.int64, ValueError), (16, TypeError), (1.5, TypeError)])
def test_resolve_precision_rejects_everything_else(value, error):
    with pytest.raises(error, match="precision must be"):
        resolve_precision(value)


def test_bad_precision_is_a_clear_error_on_every_entry_point(photo_batch):
    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    x = photo_batch[:1]
    with pytest.raises(ValueError, match="precision must be one of"):
        tok.encode(x, dtype="int8")
    ids = tok.encode(x).ids
    with pytest.raises(ValueError, match="precision must be"):
        tok.decode(ids, dtype=torch.float64)
    with pytest.raises(TypeError, match="precision must be"):
        tok.set_precision(encode=32)
    assert tok.precision == {"encode": None, "decode": None}  # a rejected setting changes nothing


def test_to_float32_casts_nested_floats_only():
    out = to_float32({"a": torch.ones(2, dtype=torch.bfloat16), "b": [torch.ones(1, dtype=torch.float16), 3],
                      "c": torch.ones(1, dtype=torch.long)})
    assert out["a"].dtype == torch.float32 and out["b"][0].dtype == torch.float32 and out["b"][1] == 3
    assert out["c"].dtype == torch.long


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_every_family_runs_in_each_precision(name):
    """Each family encodes and decodes under bf16 and fp16 autocast: int64 ids of the fp32 shape, a
    float32 output of the fp32 shape, finite; explicit "fp32" is the default path bit for bit."""
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name, pretrained=zoo.get_info(name).source is not None).eval()
    x = _input(tok, name)
    ref = tok.encode(x)
    ref_out = tok.decode(ref, **_decode_kw(tok))
    fp32 = tok.encode(x, dtype="fp32")
    assert torch.equal(fp32.ids, ref.ids)
    assert torch.equal(tok.decode(ref, dtype=torch.float32, **_decode_kw(tok)), ref_out)
    for dtype in ("bf16", "fp16"):
        tokens = tok.encode(x, dtype=dtype)
        assert tokens.ids.dtype == torch.long and tokens.ids.shape == ref.ids.shape
        out = tok.decode(ref, dtype=dtype, **_decode_kw(tok))
        assert out.dtype == torch.float32 and out.shape == ref_out.shape
        assert torch.isfinite(out).all()


def test_fp32_overrides_an_enclosing_autocast_and_set_precision_is_the_default(photo_batch):
    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    x = photo_batch
    ref = tok.encode(x)
    ref_out = tok.decode(ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inner_fp32 = tok.decode(ref, dtype="fp32")  # autocast disabled inside: exactly the fp32 path
        inner_default = tok.decode(ref)              # no dtype: the enclosing autocast applies
    assert torch.equal(inner_fp32, ref_out)
    assert inner_default.dtype == torch.float32 and not torch.equal(inner_default, ref_out)
    assert torch.equal(inner_default, tok.decode(ref, dtype="bf16"))

    tok.set_precision(decode="bf16")  # encode stays fp32, decode defaults to bf16
    assert tok.precision == {"encode": None, "decode": torch.bfloat16}
    assert torch.equal(tok.encode(x).ids, ref.ids)
    assert torch.equal(tok.decode(ref), inner_default)
    assert torch.equal(tok.decode(ref, dtype="fp32"), ref_out)  # the call's dtype wins
    assert torch.equal(tok.reconstruct(x, decode_dtype="fp32"), ref_out)


def test_precision_context_kinds():
    with precision_context("cpu", torch.bfloat16):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        with precision_context("cpu", torch.float32):
            assert not torch.is_autocast_enabled("cpu")
        with precision_context("cpu", None):
            assert torch.is_autocast_enabled("cpu")


def test_nearest_code_search_stays_float32_under_autocast():
    from zoo.quant.vq import squared_distances

    g = torch.Generator().manual_seed(0)
    z, codes = torch.randn(64, 16, generator=g), torch.randn(512, 16, generator=g)
    ref = squared_distances(z, codes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = squared_distances(z, codes)
    assert d.dtype == torch.float32 and torch.equal(d, ref)


@pytest.mark.slow
def test_dmel_ids_identical_in_every_precision(speech_clip):
    """dMel's STFT, mel filterbank and thresholds run in float32 with autocast disabled: the ids are
    the fp32 ids by construction (same kernels on the same data)."""
    tok = zoo.create_tokenizer("dmel.official", pretrained=True)
    x = speech_clip(16000, 1.5)
    ref = tok.encode(x).ids
    for dtype in ("bf16", "fp16"):
        assert torch.equal(tok.encode(x, dtype=dtype).ids, ref)


def _check_stage_bounds(tok, x, data_range: float, bounds) -> None:
    """For each (dtype, id share, PSNR dB): encode agreement and decode PSNR against fp32."""
    ref = tok.encode(x)
    ref_out = tok.decode(ref)
    for dtype, share, db in bounds:
        assert id_agreement(tok.encode(x, dtype=dtype).ids, ref.ids) >= share, dtype
        psnr = signal_psnr(tok.decode(ref, dtype=dtype), ref_out, data_range)
        assert psnr.min() >= db, (dtype, psnr)


@pytest.mark.slow
def test_titok_demo_precision_on_real_photos(photo_batch):
    tok = zoo.create_tokenizer("titok_demo64.demo", pretrained=True).eval()
    _check_stage_bounds(tok, photo_batch, 1.0, [("bf16", 0.90, 40.0), ("fp16", 0.95, 55.0)])


@pytest.mark.slow
def test_wavtokenizer_demo_precision_on_real_speech():
    from zoo.data.offline import load_speech, speech_paths

    tok = zoo.create_tokenizer("wavtokenizer_demo75.demo", pretrained=True).eval()
    clips = [load_speech(p, tok.sample_rate, max_seconds=1.3) for p in speech_paths("alsa")]
    x = torch.stack([c[: int(1.3 * tok.sample_rate)] for c in clips])  # 9 utterances, ~880 ids
    _check_stage_bounds(tok, x, 2.0, [("bf16", 0.80, 40.0), ("fp16", 0.90, 55.0)])


@pytest.mark.slow
def test_mel_rvq_demo_ids_identical_in_every_precision(speech_clip):
    """The mel residual-VQ codec's front end is dMel's and its id search (beam search over the levels)
    runs in float32: bf16 / fp16 encodes give the fp32 ids; its decode in bf16 stays near lossless."""
    tok = zoo.create_tokenizer("mel_rvq_demo.demo", pretrained=True).eval()
    assert tok.searches_jointly
    x = speech_clip(16000, 2.0)
    _check_stage_bounds(tok, x, 2.0, [("bf16", 1.0, 45.0), ("fp16", 1.0, 60.0)])
