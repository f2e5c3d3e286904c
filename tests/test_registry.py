"""Registry-driven tests: every registered tokenizer builds untrained and round-trips real data.

Every architecture is built on the ``meta`` device (cheap) and its metadata checked; the ones
up to ``ROUND_TRIP_MAX_PARAMS`` parameters are also built for real and round-trip a real photo,
speech clip or photo-pan clip at their published size (set ``ZOO_TEST_LARGE=1`` to include the
larger ones too: minutes and GBs per model on a CPU).
"""
from __future__ import annotations

import inspect
import os

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.registry import get_info


def _unique_architectures() -> list[str]:
    """One registry name per distinct (builder, kwargs): tags sharing an architecture build once."""
    seen, names = set(), []
    for name in zoo.list_tokenizers():
        info = get_info(name)
        key = (info.builder, repr(sorted(info.kwargs.items())))
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


ARCHS = _unique_architectures()
ROUND_TRIP_MAX_PARAMS = float("inf") if os.environ.get("ZOO_TEST_LARGE") else 100e6
SAVE_MAX_PARAMS = float("inf") if os.environ.get("ZOO_TEST_LARGE") else 30e6


def num_params(name: str) -> int:
    with torch.device("meta"):
        tok = zoo.create_tokenizer(name, pretrained=False)
    return sum(p.numel() for p in tok.parameters())


PARAMS = {name: num_params(name) for name in ARCHS}


def _smallest_per_class() -> list[str]:
    """The smallest registered architecture of every Tokenizer class."""
    best: dict[type, str] = {}
    for name in ARCHS:
        with torch.device("meta"):
            cls = type(zoo.create_tokenizer(name, pretrained=False))
        if cls not in best or PARAMS[name] < PARAMS[best[cls]]:
            best[cls] = name
    return sorted(best.values())


SMALLEST = _smallest_per_class()
ROUND_TRIP = [n for n in ARCHS if PARAMS[n] <= ROUND_TRIP_MAX_PARAMS]
SAVE = [n for n in ARCHS if PARAMS[n] <= SAVE_MAX_PARAMS]


def real_input(info, tok) -> torch.Tensor:
    """A real photo, speech clip or photo-pan clip at the entry's input size."""
    from zoo.data.offline import load_photo, load_speech, speech_paths

    if info.modality == "image":
        h, w = info.input_size or (256, 256)
        return load_photo("astronaut", (h, w))[None]
    if info.modality == "audio":
        return load_speech(speech_paths("alsa")[1], tok.sample_rate, max_seconds=1.0)[None]
    t, h, w = info.input_size or (16, 128, 128)
    photo = load_photo("coffee", (h + 2 * t, w + 2 * t))
    frames = [photo[:, i:i + h, 2 * i:2 * i + w] for i in range(t)]  # a diagonal pan
    return torch.stack(frames, dim=1)[None]


def decode_kwargs(tok) -> dict:
    params = inspect.signature(tok._decode).parameters
    return {"steps": 2} if "steps" in params else {}


def test_registry_metadata_is_complete():
    assert ARCHS, "no tokenizer is registered"
    for name in zoo.list_tokenizers():
        info = get_info(name)
        assert info.modality in ("image", "video", "audio") and info.family
        assert info.codebook_size is not None, name
        if info.pretrained:
            src = info.source
            assert src.hf_repo or src.packaged, name
            if src.files:
                assert src.files.get("weights"), f"{name}: weight file name missing"
            else:  # weight-free (e.g. dMel): the converter builds the official configuration alone
                assert src.converter, f"{name}: no files and no converter"
                assert isinstance(zoo.create_tokenizer(name, pretrained=True), zoo.Tokenizer)
            assert info.license, f"{name}: licence missing"
        if info.modality == "audio":
            assert info.sample_rate, name


def test_list_filters_and_default_tags():
    allnames = zoo.list_tokenizers()
    for modality in ("image", "video", "audio"):
        sub = zoo.list_tokenizers(modality=modality)
        assert all(get_info(n).modality == modality for n in sub)
    assert set(zoo.list_tokenizers(pretrained=True)) | set(zoo.list_tokenizers(pretrained=False)) == set(allnames)
    for name in allnames:
        assert get_info(name.split(".")[0]).arch == name.split(".")[0]
    with pytest.raises(KeyError, match="unknown tokenizer"):
        zoo.create_tokenizer("no_such_tokenizer")


@pytest.mark.parametrize("name", zoo.list_tokenizers())
def test_every_entry_builds_at_published_size(name):
    """Construction on the meta device: every entry's architecture, codebook and token shape."""
    info = get_info(name)
    with torch.device("meta"):
        tok = zoo.create_tokenizer(name, pretrained=False)
    assert isinstance(tok, zoo.Tokenizer) and tok.modality == info.modality
    assert tok.codebook_size == info.codebook_size or tuple(tok.codebook_size) == tuple(info.codebook_size)
    if info.modality == "audio":
        assert tok.sample_rate == info.sample_rate and tok.tokens_per_second > 0
        if info.token_shape is not None:
            assert tuple(tok.token_shape((info.sample_rate,))) == tuple(info.token_shape)
    elif info.token_shape is not None and info.input_size is not None:
        shape = (3, *info.input_size)
        assert tuple(tok.token_shape(shape)) == tuple(info.token_shape), name


@pytest.mark.parametrize("name", SMALLEST)
def test_decode_keywords_are_uniform(name):
    """Every tokenizer: decode takes clamp (default: the output clipped to input_range; False: the raw
    decoder output) and raises TypeError for an unknown keyword; so does encode."""
    info = get_info(name)
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name, pretrained=False).eval()
    x = real_input(info, tok)
    tokens = tok.encode(x)
    params = inspect.signature(tok._decode).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values()), "_decode must name its keywords"

    def decode(**kw):  # samplers get the same seed on every call
        if "generator" in params:
            kw["generator"] = torch.Generator().manual_seed(0)
        return tok.decode(tokens, **decode_kwargs(tok), **kw)

    with pytest.raises(TypeError, match=r"unexpected keyword argument.*'no_such_option'.*clamp"):
        decode(no_such_option=1)
    with pytest.raises(TypeError, match="no_such_option"):
        tok.encode(x, no_such_option=1)
    raw, default = decode(clamp=False), decode()
    lo, hi = tok.input_range
    # the same decoder run twice on the same ids (identical kernels, identical data): exact
    assert torch.equal(default, raw.clamp(lo, hi))
    assert torch.equal(decode(clamp=True), default)
    assert float(default.min()) >= lo and float(default.max()) <= hi


@pytest.mark.slow
@pytest.mark.parametrize("name", ROUND_TRIP)
def test_untrained_round_trip_on_real_data(name):
    info = get_info(name)
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name, pretrained=False).eval()
    assert tok.modality == info.modality
    x = real_input(info, tok)
    tokens = tok.encode(x)
    ids = tokens.ids
    assert ids.dtype == torch.long and ids.shape[0] == 1
    expected_shape = tuple(tok.token_shape(tuple(x.shape[1:])))
    assert tuple(ids.shape[1:]) == expected_shape
    if info.token_shape is not None and info.modality != "audio":
        assert tuple(ids.shape[1:]) == tuple(info.token_shape)
    sizes = tok.codebook_size
    if isinstance(sizes, (tuple, list)):
        assert ids.shape[-1] == len(sizes)
        assert all(int(ids[..., g].max()) < s for g, s in enumerate(sizes))
    else:
        assert 0 <= int(ids.min()) and int(ids.max()) < sizes
    assert torch.equal(tok.encode(x).ids, ids), "encode is not deterministic"
    kw = decode_kwargs(tok)
    if "generator" in inspect.signature(tok._decode).parameters:
        kw["generator"] = torch.Generator().manual_seed(0)
    y = tok.decode(tokens, **kw)
    assert torch.isfinite(y).all()
    if info.modality == "audio":
        assert y.shape[-1] == x.shape[-1], "decode must restore the number of samples"
    else:
        assert y.shape == x.shape
    lo, hi = tok.input_range
    assert float(y.min()) >= lo - 1e-4 and float(y.max()) <= hi + 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", SAVE)
def test_save_pretrained_round_trip(name, tmp_path):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name, pretrained=False).eval()
    tok.save_pretrained(tmp_path)
    loaded = zoo.from_pretrained(tmp_path)
    assert type(loaded) is type(tok)
    sd, sd2 = tok.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)


def test_derived_fields_are_built_once_on_first_use(monkeypatch):
    """token_shape / codebook_size / sample_rate are not written in an entry: they come from its kwargs
    built on the meta device, only when first asked for, and are cached."""
    import zoo.registry as registry
    from zoo.models.titok import TiTok

    info = get_info("titok_tiny.untrained")
    calls = []

    def counting_builder(**kwargs):
        calls.append(kwargs)
        return TiTok(**kwargs)

    entry = registry.TokenizerInfo(name="titok_counted.test", builder=counting_builder, modality="image",
                                   family="titok", kwargs={**info.kwargs, "num_tokens": 12}, input_size=(64, 64))
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    assert "titok_counted.test" in zoo.list_tokenizers() and not calls  # listing builds nothing
    assert entry.token_shape == (12,) and entry.codebook_size == info.codebook_size and entry.sample_rate is None
    assert entry.describe().startswith("titok_counted.test") and len(calls) == 1
    with pytest.raises(TypeError):  # named fields only
        registry.TokenizerInfo("x.y", counting_builder, "image", "titok")
    with pytest.raises(ValueError, match="builder makes a tokenizer of modality image"):
        _ = registry.TokenizerInfo(name="titok_bad.test", builder=TiTok, modality="audio", family="titok",
                                   kwargs=info.kwargs).codebook_size
